/**
 * Outbound EDUs (spec: server-server API, "EDUs", "Typing Notifications", "Receipts", "Presence",
 * "Device Management", "End-to-End Encryption", "Send-to-device messaging"): what local users do,
 * queued in the durable outbound queues for the servers concerned.
 *
 * Callers that already hold the write lock stage EDUs in their own batch (`stageEdu`), so the local
 * change and its EDUs commit together; others use `queueEdu`. Device list and signing key updates are
 * derived from the `device_list_changes` stream by `DeviceListOutbox`, which compares each changed local
 * user's devices with what it last sent: whoever changes a device (login, logout, rename, key upload)
 * only has to record the change.
 */
import type { JsonObject } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import type { WriteBatch } from '../store/store.ts';
import { localDeviceList, stableJson } from '../services/keys.ts';
import { randomId, serverOf } from '../util/ids.ts';
import { roomServers } from './join.ts';

export type EduType = 'm.typing' | 'm.receipt' | 'm.presence' | 'm.device_list_update' | 'm.signing_key_update' | 'm.direct_to_device';

/** Servers (ours excluded) sharing a joined room with a user. */
export async function serversSharingRoomWith(hs: Homeserver, userId: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const m of await hs.store.rooms.membershipsOfUser(userId)) {
    if (m.membership !== 'join') continue;
    for (const s of await roomServers(hs, m.roomId)) out.add(s);
  }
  return out;
}

/** Stage one EDU for some destinations in a batch (under the write lock); kick the returned ones after commit. */
export function stageEdu(hs: Homeserver, b: WriteBatch, destinations: Iterable<string>, eduType: EduType, content: JsonObject): string[] {
  const dests = [...destinations].filter((d) => d && d !== hs.serverName);
  if (!dests.length || !hs.federation.enabled) return [];
  return hs.federation.enqueue(b, dests, 'edu', { edu_type: eduType, content }, b.nextStream());
}

/** Send queued traffic to these destinations now. */
export function kickAll(hs: Homeserver, destinations: Iterable<string>): void {
  for (const d of new Set(destinations)) hs.federation.kick(d);
}

/** Queue one EDU for some destinations (takes the write lock: not for callers holding it). */
export async function queueEdu(hs: Homeserver, destinations: Iterable<string>, eduType: EduType, content: JsonObject): Promise<void> {
  const dests = [...destinations];
  if (!dests.length || !hs.federation.enabled) return;
  const queued = await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    const out = stageEdu(hs, b, dests, eduType, content);
    if (out.length) await b.commit();
    return out;
  });
  kickAll(hs, queued);
}

// --- typing ----------------------------------------------------------------------------------------

/** `m.typing` for a local user, to the room's other servers. */
export async function sendTyping(hs: Homeserver, roomId: string, userId: string, typing: boolean): Promise<void> {
  if (!hs.federation.enabled) return;
  const servers = await roomServers(hs, roomId);
  if (!servers.size) return;
  await queueEdu(hs, servers, 'm.typing', { room_id: roomId, user_id: userId, typing });
}

// --- receipts --------------------------------------------------------------------------------------

/** Stage `m.receipt` for a local user's public read receipt, to the room's other servers. */
export async function stageReceipt(
  hs: Homeserver, b: WriteBatch, r: { roomId: string; receiptType: string; userId: string; eventId: string; threadId: string; ts: number },
): Promise<string[]> {
  if (!hs.federation.enabled || r.receiptType !== 'm.read' || !hs.isLocal(r.userId)) return [];
  const servers = await roomServers(hs, r.roomId);
  if (!servers.size) return [];
  const data: JsonObject = { ts: r.ts };
  if (r.threadId) data.thread_id = r.threadId;
  return stageEdu(hs, b, servers, 'm.receipt', { [r.roomId]: { 'm.read': { [r.userId]: { event_ids: [r.eventId], data } } } });
}

// --- presence --------------------------------------------------------------------------------------

/** Stage `m.presence` for a local user's new presence, to the servers sharing a room with them. */
export async function stagePresence(
  hs: Homeserver, b: WriteBatch, p: { userId: string; presence: string; statusMsg?: string; lastActiveTs: number },
): Promise<string[]> {
  if (!hs.federation.enabled || !hs.isLocal(p.userId)) return [];
  const servers = await serversSharingRoomWith(hs, p.userId);
  if (!servers.size) return [];
  const ago = Math.max(0, hs.clock() - p.lastActiveTs);
  const push: JsonObject = { user_id: p.userId, presence: p.presence, last_active_ago: ago, currently_active: p.presence === 'online' };
  if (p.statusMsg !== undefined) push.status_msg = p.statusMsg;
  return stageEdu(hs, b, servers, 'm.presence', { push: [push] });
}

// --- device lists ----------------------------------------------------------------------------------

/** What was last announced of a local user's devices: the last `stream_id`, and a fingerprint per device and of the signing keys. */
export interface DeviceListSent {
  stream: number;
  devices: Record<string, string>;
  signing: string;
}
const SENT_KEY = (userId: string) => `devlist_out:${userId}`;
const CURSOR_KEY = 'devlist_out_cursor';

/** The `stream_id` of a local user's device list as last announced (0 before any). */
export async function deviceListStreamId(hs: Homeserver, userId: string): Promise<number> {
  return (await hs.store.getMeta<DeviceListSent>(SENT_KEY(userId)))?.stream ?? 0;
}

const outboxes = new WeakMap<Homeserver, DeviceListOutbox>();

/** The device list outbox of a homeserver (created on first use). */
export function deviceListOutbox(hs: Homeserver): DeviceListOutbox {
  let o = outboxes.get(hs);
  if (!o) outboxes.set(hs, (o = new DeviceListOutbox(hs)));
  return o;
}

/**
 * Turns changes of local users' device lists (rows of `device_list_changes`) into `m.device_list_update`
 * and `m.signing_key_update` EDUs for the servers sharing a room with them. Durable: a cursor over the
 * change stream and what was last sent per user are stored with the queued EDUs, in one batch.
 */
export class DeviceListOutbox {
  private running = false;
  private again = false;
  private stopped = false;
  private started = false;
  private cursor: number | undefined;

  constructor(private readonly hs: Homeserver) {}

  /** Process pending changes now and after every commit the notifier announces (until `stop`). */
  start(): void {
    if (this.started || this.stopped || !this.hs.federation.enabled) return;
    this.started = true;
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
  }

  /** Look for new changes now (after a local device or key change). */
  poke(): Promise<void> {
    if (this.stopped || !this.hs.federation.enabled) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return Promise.resolve();
    }
    return this.run();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const pos = this.hs.store.stream;
      await this.poke();
      if (this.stopped) break;
      await this.hs.notifier.wait(pos, 30_000);
    }
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      do {
        this.again = false;
        await this.processOnce();
      } while (this.again && !this.stopped);
    } catch (e) {
      if (!this.stopped) this.hs.log(e);
    } finally {
      this.running = false;
    }
  }

  private async processOnce(): Promise<void> {
    const hs = this.hs;
    this.cursor ??= (await hs.store.getMeta<number>(CURSOR_KEY)) ?? 0;
    const upTo = hs.store.stream;
    if (upTo <= this.cursor) return;
    const changed = await hs.store.keys.deviceListChangesSince(this.cursor, upTo);
    if (changed.size === 0) {
      this.cursor = upTo; // nothing to write: the next run starts here (re-read from the Store after a restart)
      return;
    }
    const kicks = await hs.writeLock.run(async () => {
      const b = hs.store.batch();
      const dests = new Set<string>();
      for (const userId of changed) {
        if (!hs.isLocal(userId)) continue;
        for (const d of await this.stageUser(b, userId)) dests.add(d);
      }
      b.put('meta', { key: CURSOR_KEY, value: upTo });
      await b.commit();
      return dests;
    });
    this.cursor = upTo;
    kickAll(hs, kicks);
  }

  /** Stage the EDUs announcing what changed in one local user's devices and signing keys. */
  private async stageUser(b: WriteBatch, userId: string): Promise<string[]> {
    const hs = this.hs;
    const sent: DeviceListSent = (await hs.store.getMeta<DeviceListSent>(SENT_KEY(userId))) ?? { stream: 0, devices: {}, signing: '' };
    const now = await localDeviceList(hs, userId);
    const servers = await serversSharingRoomWith(hs, userId);
    const out: string[] = [];
    const next: DeviceListSent = { stream: sent.stream, devices: {}, signing: sent.signing };
    const announce = (content: JsonObject) => {
      const streamId = b.nextStream();
      content.stream_id = streamId;
      content.prev_id = next.stream ? [next.stream] : [];
      next.stream = streamId;
      if (servers.size) out.push(...hs.federation.enqueue(b, servers, 'edu', { edu_type: 'm.device_list_update', content }, streamId));
    };
    // Devices without keys are not announced (they are useless to other servers until they upload keys,
    // which announces them); nor is their deletion, then.
    for (const d of now.devices) {
      if (!d.keys) continue;
      const fp = stableJson({ keys: d.keys ?? null, name: d.device_display_name ?? null });
      next.devices[d.device_id] = fp;
      if (sent.devices[d.device_id] === fp) continue;
      const content: JsonObject = { user_id: userId, device_id: d.device_id, deleted: false, keys: d.keys };
      if (d.device_display_name !== undefined) content.device_display_name = d.device_display_name;
      announce(content);
    }
    for (const deviceId of Object.keys(sent.devices)) {
      if (deviceId in next.devices) continue;
      announce({ user_id: userId, device_id: deviceId, deleted: true });
    }
    const signing = stableJson({ master: now.master_key ?? null, self: now.self_signing_key ?? null });
    if (signing !== sent.signing && (now.master_key || now.self_signing_key || sent.signing)) {
      next.signing = signing;
      if (servers.size) {
        const content: JsonObject = { user_id: userId };
        if (now.master_key) content.master_key = now.master_key;
        if (now.self_signing_key) content.self_signing_key = now.self_signing_key;
        out.push(...hs.federation.enqueue(b, servers, 'edu', { edu_type: 'm.signing_key_update', content }, b.nextStream()));
      }
    }
    b.put('meta', { key: SENT_KEY(userId), value: next });
    return out;
  }
}

// --- to-device -------------------------------------------------------------------------------------

/**
 * Stage `m.direct_to_device` EDUs for the remote recipients of a sendToDevice call: one per server,
 * with the messages for that server's users. Returns the destinations to kick after commit.
 */
export function stageToDevice(
  hs: Homeserver, b: WriteBatch, sender: string, type: string, remote: Record<string, Record<string, JsonObject>>,
): string[] {
  if (!hs.federation.enabled) return [];
  const byServer = new Map<string, Record<string, Record<string, JsonObject>>>();
  for (const [userId, byDevice] of Object.entries(remote)) {
    const server = serverOf(userId);
    if (!server || server === hs.serverName) continue;
    let m = byServer.get(server);
    if (!m) byServer.set(server, (m = {}));
    m[userId] = byDevice;
  }
  const out: string[] = [];
  for (const [server, messages] of byServer) {
    out.push(...stageEdu(hs, b, [server], 'm.direct_to_device', { sender, type, message_id: randomId(16), messages: messages as unknown as JsonObject }));
  }
  return out;
}
