/**
 * Typing notifications: ephemeral, in memory only (the issue allows it), with their own serial for sync tokens.
 *
 * Local users' changes go to the room's other servers as `m.typing` EDUs (spec: server-server API,
 * "Typing Notifications"): when a user starts or stops typing, again every `FEDERATION_PING_MS` while they
 * keep typing, and `typing: false` when their timeout passes. Remote users' notifications (`receive`) carry no
 * timeout: they expire after `REMOTE_TYPING_TIMEOUT_MS` unless refreshed (as Synapse does).
 */
import type { Homeserver } from '../homeserver.ts';
import { sendTyping } from '../federation/edus-out.ts';

/** How long a remote user stays typing after their server's last `m.typing: true`. */
export const REMOTE_TYPING_TIMEOUT_MS = 60_000;
/** While a local user keeps typing, remote servers are reminded this often (before their timeout passes). */
export const FEDERATION_PING_MS = 40_000;

export class TypingService {
  /** roomId → userId → expiry (ms since epoch). */
  private typing = new Map<string, Map<string, number>>();
  /** Bumped on every change; sync tokens carry it. */
  serial = 0;
  private roomSerial = new Map<string, number>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** What remote servers were last told of a local user in a room (`room\0user` → typing, when). */
  private sent = new Map<string, { typing: boolean; at: number }>();
  private stopped = false;

  constructor(private readonly hs: Homeserver) {}

  /** A local user's typing state (from the client API); remote servers in the room are told. */
  set(roomId: string, userId: string, typing: boolean, timeoutMs: number): void {
    this.apply(roomId, userId, typing, Math.min(Math.max(timeoutMs, 0), 120_000));
    if (this.hs.isLocal(userId)) this.federate(roomId, userId, typing);
  }

  /** A remote user's typing state, from an `m.typing` EDU (already checked by the caller). */
  receive(roomId: string, userId: string, typing: boolean): void {
    this.apply(roomId, userId, typing, REMOTE_TYPING_TIMEOUT_MS);
  }

  private apply(roomId: string, userId: string, typing: boolean, timeoutMs: number): void {
    let room = this.typing.get(roomId);
    if (!room) this.typing.set(roomId, (room = new Map()));
    const had = room.has(userId);
    if (typing) room.set(userId, this.hs.clock() + timeoutMs);
    else room.delete(userId);
    if (had !== typing || typing) this.bump(roomId);
    this.schedule();
  }

  /** Tell the room's other servers, when the state changed or a reminder is due. */
  private federate(roomId: string, userId: string, typing: boolean): void {
    if (!this.hs.federation.enabled || this.stopped) return;
    const key = `${roomId}\u0000${userId}`;
    const last = this.sent.get(key);
    const now = this.hs.clock();
    if (last && last.typing === typing && (!typing || now - last.at < FEDERATION_PING_MS)) return;
    if (!last && !typing) return;
    if (typing) this.sent.set(key, { typing, at: now });
    else this.sent.delete(key);
    sendTyping(this.hs, roomId, userId, typing).catch((e) => {
      if (!this.stopped) this.hs.log(e);
    });
  }

  /** User ids typing in a room now. */
  users(roomId: string): string[] {
    const room = this.typing.get(roomId);
    if (!room) return [];
    const now = this.hs.clock();
    return [...room].filter(([, exp]) => exp > now).map(([u]) => u);
  }

  /** Whether the room's typing set changed after `serial`. */
  changedSince(roomId: string, serial: number): boolean {
    return (this.roomSerial.get(roomId) ?? 0) > serial;
  }

  private bump(roomId: string): void {
    this.serial++;
    this.roomSerial.set(roomId, this.serial);
    this.hs.notifier.wakeAll();
  }

  /** Expire typing entries when their timeout passes. */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    let next = Infinity;
    for (const room of this.typing.values()) for (const exp of room.values()) next = Math.min(next, exp);
    if (next === Infinity) return;
    this.timer = setTimeout(() => {
      const now = this.hs.clock();
      for (const [roomId, room] of this.typing) {
        let changed = false;
        for (const [u, exp] of room) {
          if (exp > now) continue;
          room.delete(u);
          changed = true;
          if (this.hs.isLocal(u)) this.federate(roomId, u, false);
        }
        if (changed) this.bump(roomId);
        if (room.size === 0) this.typing.delete(roomId);
      }
      this.schedule();
    }, Math.max(0, next - this.hs.clock()) + 5);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
