/**
 * Inbound EDUs (spec: server-server API, "EDUs"): typing, receipts, presence, device list and signing key
 * updates, and to-device messages, from the `/send` transactions of `origin`.
 *
 * EDUs are best effort: a malformed one, or one about users that do not belong to its origin, is ignored
 * (whole or in part) and never fails the transaction. Each changes what `/sync` shows: typing in memory,
 * receipts, presence, device list changes and to-device messages in the Store at new stream positions.
 */
import type { JsonObject } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import type { PresenceRecord } from '../store/user-data.ts';
import { recordRemoteDeviceChange, remoteDeviceCache, remoteDeviceEntry, resyncRemoteDevices, type RemoteDeviceCache } from '../services/keys.ts';
import { isRoomId, isUserId, serverOf } from '../util/ids.ts';

const PRESENCE_STATES = new Set(['online', 'offline', 'unavailable']);
/** Bounds on what one EDU may make us do. */
const MAX_ITEMS = 1000;
/** How many recent `message_id`s of to-device EDUs are remembered per origin (a retried transaction is not delivered twice). */
const SEEN_TO_DEVICE = 1000;

const isObject = (x: unknown): x is JsonObject => !!x && typeof x === 'object' && !Array.isArray(x);
const isSafeInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x);

/** Handle one EDU from `origin`; never throws for bad input (EDUs are best effort). */
export async function handleEdu(hs: Homeserver, origin: string, edu: unknown): Promise<void> {
  if (!isObject(edu) || typeof edu.edu_type !== 'string' || !isObject(edu.content)) return;
  const c = edu.content;
  switch (edu.edu_type) {
    case 'm.typing':
      return onTyping(hs, origin, c);
    case 'm.receipt':
      return onReceipt(hs, origin, c);
    case 'm.presence':
      return onPresence(hs, origin, c);
    case 'm.device_list_update':
      return onDeviceListUpdate(hs, origin, c);
    case 'm.signing_key_update':
      return onSigningKeyUpdate(hs, origin, c);
    case 'm.direct_to_device':
      return onDirectToDevice(hs, origin, c);
    default:
      return; // unknown EDU types are ignored
  }
}

/** A user of `origin` (the spec: receiving servers verify the user belongs to the sending server). */
function userOf(origin: string, x: unknown): x is string {
  return isUserId(x) && serverOf(x) === origin;
}

async function isJoined(hs: Homeserver, roomId: string, userId: string): Promise<boolean> {
  return (await hs.store.rooms.membership(roomId, userId))?.membership === 'join';
}

/** Whether a remote user shares a joined room with one of our users (whose device lists we then follow). */
async function sharesRoomWithLocalUser(hs: Homeserver, userId: string): Promise<boolean> {
  for (const m of await hs.store.rooms.membershipsOfUser(userId)) {
    if (m.membership !== 'join') continue;
    if ((await hs.store.rooms.membersOfRoom(m.roomId, 'join')).some((x) => hs.isLocal(x.userId))) return true;
  }
  return false;
}

// --- typing ----------------------------------------------------------------------------------------

async function onTyping(hs: Homeserver, origin: string, c: JsonObject): Promise<void> {
  const { room_id: roomId, user_id: userId, typing } = c;
  if (!isRoomId(roomId) || !userOf(origin, userId) || typeof typing !== 'boolean') return;
  if (!(await isJoined(hs, roomId, userId))) return;
  hs.typing.receive(roomId, userId, typing);
}

// --- receipts --------------------------------------------------------------------------------------

async function onReceipt(hs: Homeserver, origin: string, c: JsonObject): Promise<void> {
  const receipts: { roomId: string; userId: string; eventId: string; threadId: string; ts: number }[] = [];
  for (const [roomId, byType] of Object.entries(c).slice(0, MAX_ITEMS)) {
    if (!isRoomId(roomId) || !isObject(byType) || !(await hs.store.rooms.room(roomId))) continue;
    // Only public read receipts travel between servers (m.read.private never does).
    const read = byType['m.read'];
    if (!isObject(read)) continue;
    for (const [userId, r] of Object.entries(read).slice(0, MAX_ITEMS)) {
      if (!userOf(origin, userId) || !isObject(r) || !Array.isArray(r.event_ids) || r.event_ids.length === 0) continue;
      const eventId = r.event_ids[r.event_ids.length - 1];
      if (typeof eventId !== 'string' || !eventId.startsWith('$') || eventId.length > 255) continue;
      const data = isObject(r.data) ? r.data : {};
      const threadId = typeof data.thread_id === 'string' && data.thread_id.length <= 255 ? data.thread_id : '';
      const ts = isSafeInt(data.ts) && data.ts >= 0 ? data.ts : hs.clock();
      if (!(await isJoined(hs, roomId, userId))) continue;
      receipts.push({ roomId, userId, eventId, threadId, ts });
    }
  }
  if (!receipts.length) return;
  await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    for (const r of receipts) b.put('receipts', { roomId: r.roomId, receiptType: 'm.read', userId: r.userId, threadId: r.threadId, eventId: r.eventId, ts: r.ts, stream: b.nextStream() });
    hs.notifier.notify(await b.commit());
  });
}

// --- presence --------------------------------------------------------------------------------------

async function onPresence(hs: Homeserver, origin: string, c: JsonObject): Promise<void> {
  if (!Array.isArray(c.push)) return;
  const now = hs.clock();
  const recs: Omit<PresenceRecord, 'stream'>[] = [];
  for (const p of c.push.slice(0, MAX_ITEMS)) {
    if (!isObject(p) || !userOf(origin, p.user_id) || typeof p.presence !== 'string' || !PRESENCE_STATES.has(p.presence)) continue;
    const ago = isSafeInt(p.last_active_ago) && p.last_active_ago >= 0 ? p.last_active_ago : 0;
    const rec: Omit<PresenceRecord, 'stream'> = { userId: p.user_id, presence: p.presence, lastActiveTs: now - ago };
    if (typeof p.status_msg === 'string') rec.statusMsg = p.status_msg.slice(0, 1024);
    // Only users our users can see (sharing a room) are kept (spec: servers send only what interests the receiver).
    if (!(await sharesRoomWithLocalUser(hs, p.user_id))) continue;
    recs.push(rec);
  }
  if (!recs.length) return;
  await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    for (const r of recs) b.put('presence', { ...r, stream: b.nextStream() } satisfies PresenceRecord);
    hs.notifier.notify(await b.commit());
  });
}

// --- device lists ----------------------------------------------------------------------------------

async function onDeviceListUpdate(hs: Homeserver, origin: string, c: JsonObject): Promise<void> {
  const { user_id: userId, device_id: deviceId, stream_id: streamId } = c;
  if (!userOf(origin, userId) || typeof deviceId !== 'string' || !deviceId || !isSafeInt(streamId)) return;
  const prev = Array.isArray(c.prev_id) ? c.prev_id : [];
  if (!prev.every(isSafeInt)) return;
  const keys = isObject(c.keys) && c.keys.user_id === userId && c.keys.device_id === deviceId ? c.keys : undefined;
  if (!(await sharesRoomWithLocalUser(hs, userId))) return; // we do not follow this user's devices
  let gap = false;
  await recordRemoteDeviceChange(hs, userId, (cache) => {
    // Apply the update to the cache when it follows what we have; otherwise resynchronise (spec: "Device Management").
    if (!cache || prev.some((p) => (p as number) > cache.stream)) {
      gap = true;
      return null;
    }
    if (streamId <= cache.stream) return undefined; // already applied
    const next: RemoteDeviceCache = { ...cache, stream: streamId, devices: { ...cache.devices } };
    if (c.deleted === true || !keys) delete next.devices[deviceId];
    else next.devices[deviceId] = remoteDeviceEntry(keys, c.device_display_name);
    return next;
  });
  if (gap) void resyncRemoteDevices(hs, userId);
}

async function onSigningKeyUpdate(hs: Homeserver, origin: string, c: JsonObject): Promise<void> {
  const userId = c.user_id;
  if (!userOf(origin, userId)) return;
  const keyOf = (k: unknown, usage: string) =>
    isObject(k) && k.user_id === userId && Array.isArray(k.usage) && k.usage.includes(usage) && isObject(k.keys) ? k : undefined;
  const master = keyOf(c.master_key, 'master');
  const self = keyOf(c.self_signing_key, 'self_signing');
  if (!master && !self) return;
  if (!(await sharesRoomWithLocalUser(hs, userId))) return;
  await recordRemoteDeviceChange(hs, userId, (cache) => {
    if (!cache) return undefined;
    const next = { ...cache };
    if (master) next.master_key = master;
    if (self) next.self_signing_key = self;
    return next;
  });
}

/** Whether a user's cached device list is up to date (tests, status). */
export async function remoteDeviceListKnown(hs: Homeserver, userId: string): Promise<boolean> {
  return !!(await remoteDeviceCache(hs, userId));
}

// --- to-device -------------------------------------------------------------------------------------

async function onDirectToDevice(hs: Homeserver, origin: string, c: JsonObject): Promise<void> {
  const { sender, type, message_id: messageId, messages } = c;
  if (!userOf(origin, sender) || typeof type !== 'string' || !type || type.length > 255 || !isObject(messages)) return;
  const seenKey = `todevice_in:${origin}`;
  await hs.writeLock.run(async () => {
    let seen: string[] = [];
    if (typeof messageId === 'string' && messageId) {
      seen = (await hs.store.getMeta<string[]>(seenKey)) ?? [];
      if (seen.includes(messageId)) return; // a retried transaction
    }
    const b = hs.store.batch();
    let delivered = 0;
    for (const [userId, byDevice] of Object.entries(messages).slice(0, MAX_ITEMS)) {
      if (!isUserId(userId) || !hs.isLocal(userId) || !isObject(byDevice)) continue;
      const devices = (await hs.store.accounts.devices(userId)).map((d) => d.deviceId);
      for (const [deviceId, content] of Object.entries(byDevice).slice(0, MAX_ITEMS)) {
        if (!isObject(content)) continue;
        const targets = deviceId === '*' ? devices : devices.includes(deviceId) ? [deviceId] : [];
        for (const d of targets) {
          b.put('to_device', { userId, deviceId: d, stream: b.nextStream(), message: { type, sender, content } });
          delivered++;
        }
      }
    }
    if (typeof messageId === 'string' && messageId) {
      seen.push(messageId);
      b.put('meta', { key: seenKey, value: seen.slice(-SEEN_TO_DEVICE) });
    }
    if (!delivered && !b.ops.length) return;
    hs.notifier.notify(await b.commit());
  });
}
