/** Typing notifications: ephemeral, in memory only (the issue allows it), with their own serial for sync tokens. */
import type { Homeserver } from '../homeserver.ts';

export class TypingService {
  /** roomId → userId → expiry (ms since epoch). */
  private typing = new Map<string, Map<string, number>>();
  /** Bumped on every change; sync tokens carry it. */
  serial = 0;
  private roomSerial = new Map<string, number>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly hs: Homeserver) {}

  set(roomId: string, userId: string, typing: boolean, timeoutMs: number): void {
    let room = this.typing.get(roomId);
    if (!room) this.typing.set(roomId, (room = new Map()));
    const had = room.has(userId);
    if (typing) room.set(userId, this.hs.clock() + Math.min(Math.max(timeoutMs, 0), 120_000));
    else room.delete(userId);
    if (had !== typing || typing) this.bump(roomId);
    this.schedule();
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
    let next = Infinity;
    for (const room of this.typing.values()) for (const exp of room.values()) next = Math.min(next, exp);
    if (next === Infinity) return;
    this.timer = setTimeout(() => {
      const now = this.hs.clock();
      for (const [roomId, room] of this.typing) {
        let changed = false;
        for (const [u, exp] of room) if (exp <= now) (room.delete(u), (changed = true));
        if (changed) this.bump(roomId);
      }
      this.schedule();
    }, Math.max(0, next - this.hs.clock()) + 5);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
