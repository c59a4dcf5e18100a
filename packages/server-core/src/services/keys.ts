/**
 * End-to-end encryption support (spec: client-server API, "End-to-End Encryption", "Send-to-Device
 * messaging", "Server-side key backups"): device keys, one-time and fallback keys, cross-signing keys and
 * signatures, device list changes, to-device inboxes, key backup, and the e2ee part of `/sync`.
 *
 * Remote users: key queries and claims are proxied to their servers (grouped per server, unreachable
 * servers listed in `failures`; a cache of remote device lists, kept up to date by `m.device_list_update`
 * EDUs, answers for servers that cannot be reached), and to-device messages for them go out as
 * `m.direct_to_device` EDUs. A node without federation leaves remote users out.
 */
import { MatrixError, forbidden, invalidParam, missingParam, notFound } from '../api/errors.ts';
import { deviceListOutbox, kickAll, stageToDevice } from '../federation/edus-out.ts';
import { FederationError } from '../federation/service.ts';
import { decodeBase64 } from '../kernel/base64.ts';
import { signedPart, verifyJson } from '../kernel/signing.ts';
import type { JsonObject } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import { isUserId, serverOf } from '../util/ids.ts';
import type { CrossSigningKeyRecord, FallbackKeyRecord, KeySignatureRecord, OneTimeKeyRecord, RoomKeyRecord, RoomKeyVersionRecord } from '../store/keys.ts';

export interface E2eeUser {
  userId: string;
  deviceId: string;
}

type Signatures = Record<string, Record<string, string>>;
type KeyObject = JsonObject | string;

/** A stable serialisation (keys sorted) for equality checks; never throws, unlike canonical JSON on floats. */
export function stableJson(x: unknown): string {
  return stable(x);
}
function stable(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(stable).join(',')}]`;
  if (x && typeof x === 'object') {
    return `{${Object.keys(x)
      .sort()
      .filter((k) => (x as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stable((x as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(x) ?? 'null';
}
const sameJson = (a: unknown, b: unknown) => stable(a) === stable(b);

/** `<algorithm>:<key id>` → its parts (split at the first colon). */
function splitKeyName(name: string): [string, string] {
  const i = name.indexOf(':');
  if (i <= 0 || i === name.length - 1) throw invalidParam(`Key name ${name} is not <algorithm>:<key_id>`);
  return [name.slice(0, i), name.slice(i + 1)];
}

function withoutUnsigned(obj: JsonObject): JsonObject {
  const { unsigned: _u, ...rest } = obj;
  return rest;
}

/** Merge extra signatures into an object's `signatures`. */
function mergeSignatures(obj: JsonObject, extra: KeySignatureRecord[]): JsonObject {
  if (extra.length === 0) return obj;
  const sigs: Signatures = {};
  for (const [u, m] of Object.entries((obj.signatures ?? {}) as Signatures)) sigs[u] = { ...m };
  for (const s of extra) (sigs[s.signerUserId] ??= {})[s.signerKeyId] = s.signature;
  return { ...obj, signatures: sigs as JsonObject };
}

/** Users with whom a signature on `userId`'s key is visible: self-signatures to all, others' only to the signer. */
const visibleTo = (requester: string, owner: string) => (s: KeySignatureRecord) => s.signerUserId === owner || s.signerUserId === requester;

// --- keys/upload -------------------------------------------------------------------------------------

export interface UploadKeysRequest {
  device_keys?: JsonObject | null;
  one_time_keys?: Record<string, KeyObject> | null;
  fallback_keys?: Record<string, KeyObject> | null;
}

export async function uploadKeys(hs: Homeserver, user: E2eeUser, req: UploadKeysRequest): Promise<{ one_time_key_counts: Record<string, number> }> {
  const { userId, deviceId } = user;
  const deviceKeys = req.device_keys ? withoutUnsigned(req.device_keys) : undefined;
  if (deviceKeys && (deviceKeys.user_id !== userId || deviceKeys.device_id !== deviceId)) {
    throw invalidParam('device_keys.user_id and device_id must be those of the device uploading them');
  }
  const otks = Object.entries(req.one_time_keys ?? {}).map(([name, key]) => [...splitKeyName(name), key] as const);
  const fallbacks = new Map<string, { keyId: string; key: KeyObject }>();
  for (const [name, key] of Object.entries(req.fallback_keys ?? {})) {
    const [algorithm, keyId] = splitKeyName(name);
    fallbacks.set(algorithm, { keyId, key }); // at most one per algorithm: the last wins
  }

  await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    let changed = false;
    if (deviceKeys) {
      const [existing] = await hs.store.keys.deviceKeys(userId, deviceId);
      if (!existing || !sameJson(existing.keys, deviceKeys)) {
        const stream = b.nextStream();
        b.put('device_keys', { userId, deviceId, keys: deviceKeys, stream });
        b.put('device_list_changes', { stream, userId });
        // Signatures others uploaded on the old keys do not cover new ones.
        if (existing && !sameJson(signedPart(existing.keys), signedPart(deviceKeys))) {
          b.add({ op: 'deleteRange', store: 'key_signatures', range: { lower: [userId, deviceId], upper: [userId, deviceId, []] } });
        }
        changed = true;
      }
    }
    const order = hs.clock();
    for (const [algorithm, keyId, key] of otks) {
      const existing = await hs.store.keys.oneTimeKey(userId, deviceId, algorithm, keyId);
      if (existing) {
        if (sameJson(existing.key, key)) continue;
        throw invalidParam(`One time key ${algorithm}:${keyId} already exists`);
      }
      const rec: OneTimeKeyRecord & { order: number } = { userId, deviceId, algorithm, keyId, key, order };
      b.put('one_time_keys', rec);
    }
    for (const [algorithm, { keyId, key }] of fallbacks) {
      const existing = await hs.store.keys.fallbackKey(userId, deviceId, algorithm);
      // Re-uploading the same fallback key keeps its `used` flag (as Synapse does).
      if (existing && existing.keyId === keyId && sameJson(existing.key, key)) continue;
      const rec: FallbackKeyRecord = { userId, deviceId, algorithm, keyId, key, used: false };
      b.put('fallback_keys', rec);
    }
    if (b.ops.length === 0) return;
    const pos = await b.commit();
    if (changed) hs.notifier.notify(pos);
  });
  void deviceListOutbox(hs).poke();
  return { one_time_key_counts: await oneTimeKeyCounts(hs, userId, deviceId) };
}

async function oneTimeKeyCounts(hs: Homeserver, userId: string, deviceId: string): Promise<Record<string, number>> {
  return { signed_curve25519: 0, ...(await hs.store.keys.oneTimeKeyCounts(userId, deviceId)) };
}

// --- keys/query --------------------------------------------------------------------------------------

export interface QueryKeysResult {
  device_keys: Record<string, Record<string, JsonObject>>;
  master_keys: Record<string, JsonObject>;
  self_signing_keys: Record<string, JsonObject>;
  user_signing_keys: Record<string, JsonObject>;
  failures: Record<string, JsonObject>;
}

/** How long a client's key query or claim waits for remote servers by default (spec: `timeout`, 10 seconds). */
export const DEFAULT_REMOTE_KEYS_TIMEOUT_MS = 10_000;

/**
 * keys/query: local users from the Store, remote users from their servers (one request per server, in
 * parallel). `requester` decides which signatures and user-signing keys are visible (`''` for a server).
 */
export async function queryKeys(hs: Homeserver, requester: string, query: Record<string, string[]>, timeoutMs = DEFAULT_REMOTE_KEYS_TIMEOUT_MS): Promise<QueryKeysResult> {
  const out = await queryLocalKeys(hs, requester, query);
  if (!hs.federation.enabled) return out;
  const byServer = new Map<string, Record<string, string[]>>();
  for (const [userId, wanted] of Object.entries(query)) {
    if (hs.isLocal(userId) || !isUserId(userId)) continue;
    const server = serverOf(userId);
    let m = byServer.get(server);
    if (!m) byServer.set(server, (m = {}));
    m[userId] = wanted;
  }
  await Promise.all([...byServer].map(async ([server, users]) => {
    let res: JsonObject;
    try {
      res = await hs.federation.request(server, 'POST', '/_matrix/federation/v1/user/keys/query', { device_keys: users }, { timeoutMs: clampTimeout(timeoutMs) });
    } catch (e) {
      // Unreachable: answer from the device lists we keep for users sharing a room, if any.
      let missing = false;
      for (const [userId, wanted] of Object.entries(users)) {
        const cached = await remoteDeviceCache(hs, userId);
        if (!cached) {
          missing = true;
          continue;
        }
        out.device_keys[userId] = Object.fromEntries(Object.entries(cached.devices).filter(([d]) => wanted.length === 0 || wanted.includes(d)));
        if (cached.master_key) out.master_keys[userId] = await withOwnSignatures(hs, requester, userId, cached.master_key);
        if (cached.self_signing_key) out.self_signing_keys[userId] = cached.self_signing_key;
      }
      if (missing) out.failures[server] = failureOf(e);
      return;
    }
    const dk = asObject(res.device_keys);
    for (const [userId, wanted] of Object.entries(users)) {
      const devices = asObject(dk?.[userId]);
      if (devices) {
        const kept: Record<string, JsonObject> = {};
        for (const [deviceId, keys] of Object.entries(devices)) {
          const k = asObject(keys);
          if (!k || k.user_id !== userId || k.device_id !== deviceId) continue;
          if (wanted.length && !wanted.includes(deviceId)) continue;
          kept[deviceId] = k;
        }
        out.device_keys[userId] = kept;
      }
      const master = crossSigningKeyOf(asObject(res.master_keys)?.[userId], userId, 'master');
      if (master) out.master_keys[userId] = await withOwnSignatures(hs, requester, userId, master);
      const self = crossSigningKeyOf(asObject(res.self_signing_keys)?.[userId], userId, 'self_signing');
      if (self) out.self_signing_keys[userId] = self;
    }
  }));
  return out;
}

/** keys/query for this server's users only (the federation endpoint, and the local part of a client query). */
export async function queryLocalKeys(hs: Homeserver, requester: string, query: Record<string, string[]>): Promise<QueryKeysResult> {
  const out: QueryKeysResult = { device_keys: {}, master_keys: {}, self_signing_keys: {}, user_signing_keys: {}, failures: {} };
  for (const [userId, wanted] of Object.entries(query)) {
    if (!hs.isLocal(userId)) continue;
    const [records, devices, crossSigning, signatures] = await Promise.all([
      hs.store.keys.deviceKeys(userId),
      hs.store.accounts.devices(userId),
      hs.store.keys.crossSigningKeys(userId),
      hs.store.keys.signatures(userId),
    ]);
    const visible = signatures.filter(visibleTo(requester, userId));
    const sigsOf = (keyId: string) => visible.filter((s) => s.keyId === keyId);
    const names = new Map(devices.map((d) => [d.deviceId, d.displayName]));
    const byDevice: Record<string, JsonObject> = {};
    for (const r of records) {
      if (wanted.length > 0 && !wanted.includes(r.deviceId)) continue;
      if (!names.has(r.deviceId)) continue; // keys of a device being deleted
      const name = names.get(r.deviceId);
      byDevice[r.deviceId] = { ...mergeSignatures(r.keys, sigsOf(r.deviceId)), unsigned: name !== undefined ? { device_display_name: name } : {} };
    }
    out.device_keys[userId] = byDevice;
    for (const k of crossSigning) {
      const pub = publicKeyOf(k.key);
      const key = pub ? mergeSignatures(k.key, sigsOf(pub)) : k.key;
      if (k.keyType === 'master') out.master_keys[userId] = key;
      else if (k.keyType === 'self_signing') out.self_signing_keys[userId] = key;
      else if (k.keyType === 'user_signing' && userId === requester) out.user_signing_keys[userId] = key;
    }
  }
  return out;
}

/** A local user's devices as other servers see them (`GET /user/devices`, `m.device_list_update`). */
export interface LocalDeviceList {
  devices: { device_id: string; keys?: JsonObject; device_display_name?: string }[];
  master_key?: JsonObject;
  self_signing_key?: JsonObject;
}

export async function localDeviceList(hs: Homeserver, userId: string): Promise<LocalDeviceList> {
  const [devices, q] = await Promise.all([hs.store.accounts.devices(userId), queryLocalKeys(hs, '', { [userId]: [] })]);
  const keys = q.device_keys[userId] ?? {};
  const out: LocalDeviceList = {
    devices: devices.map((d) => {
      const entry: LocalDeviceList['devices'][number] = { device_id: d.deviceId };
      const k = keys[d.deviceId];
      if (k) entry.keys = withoutUnsigned(k);
      if (d.displayName !== undefined && d.displayName !== null) entry.device_display_name = d.displayName;
      return entry;
    }),
  };
  if (q.master_keys[userId]) out.master_key = q.master_keys[userId];
  if (q.self_signing_keys[userId]) out.self_signing_key = q.self_signing_keys[userId];
  return out;
}

/** A remote user's master key with the signatures `requester` made on it here (they stay on this server). */
async function withOwnSignatures(hs: Homeserver, requester: string, userId: string, master: JsonObject): Promise<JsonObject> {
  const pub = publicKeyOf(master);
  if (!pub || !requester) return master;
  const mine = (await hs.store.keys.signatures(userId, pub)).filter((s) => s.signerUserId === requester);
  return mergeSignatures(master, mine);
}

/** The public key (unpadded base64, without `ed25519:`) of a stored cross-signing key. */
function publicKeyOf(key: JsonObject): string | undefined {
  const keys = key.keys;
  if (!keys || typeof keys !== 'object' || Array.isArray(keys)) return undefined;
  const ids = Object.keys(keys);
  return ids.length === 1 && ids[0].startsWith('ed25519:') ? ids[0].slice('ed25519:'.length) : undefined;
}

function clampTimeout(ms: number): number {
  return Math.min(Math.max(Number.isFinite(ms) ? ms : DEFAULT_REMOTE_KEYS_TIMEOUT_MS, 1_000), 60_000);
}

function failureOf(e: unknown): JsonObject {
  if (e instanceof FederationError) return { status: e.status || 503, message: e.message };
  return { status: 503, message: 'Unreachable' };
}

function asObject(x: unknown): JsonObject | undefined {
  return x && typeof x === 'object' && !Array.isArray(x) ? (x as JsonObject) : undefined;
}

/** A remote cross-signing key, when it is one of the user's of the given usage. */
function crossSigningKeyOf(x: unknown, userId: string, usage: string): JsonObject | undefined {
  const k = asObject(x);
  if (!k || k.user_id !== userId || !Array.isArray(k.usage) || !k.usage.includes(usage) || !asObject(k.keys)) return undefined;
  return k;
}

// --- remote device lists -----------------------------------------------------------------------------

/**
 * What we know of a remote user's devices (spec: "Device Management"): filled by `GET /user/devices` and
 * kept current by `m.device_list_update` / `m.signing_key_update` EDUs; used when their server is unreachable.
 * Devices are stored as keys/query returns them (with `unsigned.device_display_name`).
 */
export interface RemoteDeviceCache {
  stream: number;
  devices: Record<string, JsonObject>;
  master_key?: JsonObject;
  self_signing_key?: JsonObject;
}
const REMOTE_CACHE_KEY = (userId: string) => `remote_devices:${userId}`;

export function remoteDeviceCache(hs: Homeserver, userId: string): Promise<RemoteDeviceCache | undefined> {
  return hs.store.getMeta<RemoteDeviceCache>(REMOTE_CACHE_KEY(userId));
}

/** Record that a remote user's devices changed (sync's `device_lists.changed`), updating the cache with `update` when given. */
export async function recordRemoteDeviceChange(
  hs: Homeserver, userId: string, update?: (cache: RemoteDeviceCache | undefined) => RemoteDeviceCache | undefined | null,
): Promise<void> {
  await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    if (update) {
      const next = update(await remoteDeviceCache(hs, userId));
      if (next === null) b.delete('meta', REMOTE_CACHE_KEY(userId));
      else if (next) b.put('meta', { key: REMOTE_CACHE_KEY(userId), value: next });
    }
    b.put('device_list_changes', { stream: b.nextStream(), userId });
    hs.notifier.notify(await b.commit());
  });
}

const resyncing = new WeakMap<Homeserver, Set<string>>();

/** Fetch a remote user's whole device list (`GET /user/devices/{userId}`) into the cache; false when it fails. */
export async function resyncRemoteDevices(hs: Homeserver, userId: string): Promise<boolean> {
  let busy = resyncing.get(hs);
  if (!busy) resyncing.set(hs, (busy = new Set()));
  if (busy.has(userId)) return false;
  busy.add(userId);
  try {
    const res = await hs.federation.request(serverOf(userId), 'GET', `/_matrix/federation/v1/user/devices/${encodeURIComponent(userId)}`);
    if (res.user_id !== userId || typeof res.stream_id !== 'number' || !Array.isArray(res.devices)) return false;
    const cache: RemoteDeviceCache = { stream: res.stream_id, devices: {} };
    for (const d of res.devices) {
      const dev = asObject(d);
      const keys = asObject(dev?.keys);
      if (!dev || typeof dev.device_id !== 'string' || !keys || keys.user_id !== userId || keys.device_id !== dev.device_id) continue;
      cache.devices[dev.device_id] = remoteDeviceEntry(keys, dev.device_display_name);
    }
    const master = crossSigningKeyOf(res.master_key, userId, 'master');
    if (master) cache.master_key = master;
    const self = crossSigningKeyOf(res.self_signing_key, userId, 'self_signing');
    if (self) cache.self_signing_key = self;
    await recordRemoteDeviceChange(hs, userId, () => cache);
    return true;
  } catch (e) {
    if (!(e instanceof FederationError)) hs.log(e);
    return false;
  } finally {
    busy.delete(userId);
  }
}

/** A cached remote device: its keys with the display name in `unsigned`, as keys/query answers. */
export function remoteDeviceEntry(keys: JsonObject, displayName: unknown): JsonObject {
  return { ...withoutUnsigned(keys), unsigned: typeof displayName === 'string' ? { device_display_name: displayName } : {} };
}

// --- keys/claim --------------------------------------------------------------------------------------

type ClaimResult = { one_time_keys: Record<string, Record<string, Record<string, KeyObject>>>; failures: Record<string, JsonObject> };

/** keys/claim: local users from the Store, remote users from their servers (one request per server). */
export async function claimKeys(hs: Homeserver, query: Record<string, Record<string, string>>, timeoutMs = DEFAULT_REMOTE_KEYS_TIMEOUT_MS): Promise<ClaimResult> {
  const out = await claimLocalKeys(hs, query);
  if (!hs.federation.enabled) return out;
  const byServer = new Map<string, Record<string, Record<string, string>>>();
  for (const [userId, devices] of Object.entries(query)) {
    if (hs.isLocal(userId) || !isUserId(userId)) continue;
    const server = serverOf(userId);
    let m = byServer.get(server);
    if (!m) byServer.set(server, (m = {}));
    m[userId] = devices;
  }
  await Promise.all([...byServer].map(async ([server, users]) => {
    try {
      const res = await hs.federation.request(server, 'POST', '/_matrix/federation/v1/user/keys/claim', { one_time_keys: users }, { timeoutMs: clampTimeout(timeoutMs) });
      const otks = asObject(res.one_time_keys);
      for (const [userId, devices] of Object.entries(users)) {
        const byDevice = asObject(otks?.[userId]);
        if (!byDevice) continue;
        for (const deviceId of Object.keys(devices)) {
          const keys = asObject(byDevice[deviceId]);
          if (!keys) continue;
          const kept = Object.fromEntries(Object.entries(keys).filter(([, k]) => typeof k === 'string' || asObject(k))) as Record<string, KeyObject>;
          if (Object.keys(kept).length) ((out.one_time_keys[userId] ??= {})[deviceId] = kept);
        }
      }
    } catch (e) {
      out.failures[server] = failureOf(e);
    }
  }));
  return out;
}

/** keys/claim for this server's users only. */
export async function claimLocalKeys(hs: Homeserver, query: Record<string, Record<string, string>>): Promise<ClaimResult> {
  const result: Record<string, Record<string, Record<string, KeyObject>>> = {};
  await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    for (const [userId, devices] of Object.entries(query)) {
      if (!hs.isLocal(userId)) continue;
      for (const [deviceId, algorithm] of Object.entries(devices)) {
        if (typeof algorithm !== 'string') continue;
        const otks = (await hs.store.keys.oneTimeKeys(userId, deviceId, algorithm)) as (OneTimeKeyRecord & { order?: number })[];
        let claimed: [string, KeyObject] | undefined;
        if (otks.length > 0) {
          // Oldest upload first (keys of one upload are equivalent; ties by key id).
          const first = otks.reduce((a, k) => ((k.order ?? 0) < (a.order ?? 0) ? k : a));
          b.delete('one_time_keys', [userId, deviceId, algorithm, first.keyId]);
          claimed = [`${algorithm}:${first.keyId}`, first.key];
        } else {
          const fb = await hs.store.keys.fallbackKey(userId, deviceId, algorithm);
          if (fb) {
            if (!fb.used) b.put('fallback_keys', { ...fb, used: true });
            claimed = [`${algorithm}:${fb.keyId}`, fb.key];
          }
        }
        if (claimed) ((result[userId] ??= {})[deviceId] ??= {})[claimed[0]] = claimed[1];
      }
    }
    if (b.ops.length) await b.commit();
  });
  return { one_time_keys: result, failures: {} };
}

// --- keys/device_signing/upload ----------------------------------------------------------------------

export interface CrossSigningUpload {
  master_key?: JsonObject;
  self_signing_key?: JsonObject;
  user_signing_key?: JsonObject;
}

const KEY_FIELDS = [
  ['master_key', 'master'],
  ['self_signing_key', 'self_signing'],
  ['user_signing_key', 'user_signing'],
] as const;

interface ParsedKey {
  keyId: string;
  pub: string;
  bytes: Uint8Array;
}

function parseCrossSigningKey(key: JsonObject, userId: string, usage: string): ParsedKey {
  if (key.user_id !== userId) throw invalidParam(`The ${usage} key must belong to ${userId}`);
  if (!Array.isArray(key.usage) || !key.usage.includes(usage)) throw invalidParam(`The ${usage} key must have usage ${usage}`);
  const keys = key.keys;
  if (!keys || typeof keys !== 'object' || Array.isArray(keys)) throw invalidParam(`The ${usage} key has no keys`);
  const entries = Object.entries(keys);
  if (entries.length !== 1) throw invalidParam(`The ${usage} key must have exactly one public key`);
  const [keyId, value] = entries[0];
  if (!keyId.startsWith('ed25519:') || typeof value !== 'string') throw invalidParam(`The ${usage} key must be an ed25519 key`);
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(value);
  } catch {
    throw invalidParam(`The ${usage} key is not valid base64`);
  }
  if (bytes.length !== 32) throw invalidParam(`The ${usage} key is not an ed25519 public key`);
  return { keyId, pub: keyId.slice('ed25519:'.length), bytes };
}

/** Whether an upload changes anything: UIA is needed only when it does and a master key already exists (spec, clients.md). */
function crossSigningNeedsUia(req: CrossSigningUpload, existing: CrossSigningKeyRecord[]): boolean {
  const byType = new Map(existing.map((k) => [k.keyType, k.key]));
  if (!byType.has('master')) return false;
  return KEY_FIELDS.some(([field, type]) => req[field] !== undefined && !sameJson(req[field], byType.get(type)));
}

/** Check an upload against the user's current keys; returns the records to write. */
async function checkCrossSigningUpload(hs: Homeserver, userId: string, req: CrossSigningUpload, existing: CrossSigningKeyRecord[]): Promise<CrossSigningKeyRecord[]> {
  const out: CrossSigningKeyRecord[] = [];
  const parsed = new Map<string, ParsedKey>();
  for (const [field, type] of KEY_FIELDS) {
    const key = req[field];
    if (key === undefined) continue;
    parsed.set(type, parseCrossSigningKey(key, userId, type));
    out.push({ userId, keyType: type, key });
  }
  const storedMaster = existing.find((k) => k.keyType === 'master');
  const master = parsed.get('master') ?? (storedMaster ? safeParse(storedMaster.key, userId) : undefined);
  for (const type of ['self_signing', 'user_signing'] as const) {
    const field = type === 'self_signing' ? 'self_signing_key' : 'user_signing_key';
    const key = req[field];
    if (key === undefined) continue;
    if (!master) throw missingParam('No master signing key is available');
    if (!(await verifyJson(key, userId, master.keyId, master.bytes))) throw new MatrixError(400, 'M_INVALID_SIGNATURE', `The ${type} key is not signed by the master key`);
  }
  if (parsed.size > 0) {
    const deviceIds = new Set((await hs.store.accounts.devices(userId)).map((d) => d.deviceId));
    for (const p of parsed.values()) if (deviceIds.has(p.pub)) throw forbidden('Key ID in use');
  }
  return out;
}

function safeParse(key: JsonObject, userId: string): ParsedKey | undefined {
  try {
    return parseCrossSigningKey(key, userId, 'master');
  } catch {
    return undefined;
  }
}

/**
 * Store cross-signing keys. `authenticate` runs User-Interactive Authentication (it throws the 401 until
 * done); it is called only when the upload replaces an existing master key or changes the keys.
 */
export async function uploadCrossSigningKeys(hs: Homeserver, userId: string, req: CrossSigningUpload, authenticate: () => Promise<void>): Promise<void> {
  const before = await hs.store.keys.crossSigningKeys(userId);
  await checkCrossSigningUpload(hs, userId, req, before); // bad input is refused before asking for a password
  let authed = false;
  if (crossSigningNeedsUia(req, before)) {
    await authenticate();
    authed = true;
  }
  await hs.writeLock.run(async () => {
    const existing = await hs.store.keys.crossSigningKeys(userId);
    if (!authed && crossSigningNeedsUia(req, existing)) await authenticate(); // someone uploaded keys meanwhile
    const records = await checkCrossSigningUpload(hs, userId, req, existing);
    const byType = new Map(existing.map((k) => [k.keyType, k.key]));
    const changed = records.filter((r) => !sameJson(r.key, byType.get(r.keyType)));
    if (changed.length === 0) return;
    const b = hs.store.batch();
    for (const r of changed) b.put('cross_signing_keys', r);
    b.put('device_list_changes', { stream: b.nextStream(), userId });
    hs.notifier.notify(await b.commit());
  });
  void deviceListOutbox(hs).poke();
}

// --- keys/signatures/upload --------------------------------------------------------------------------

type Failure = { errcode: string; error: string };

export async function uploadSignatures(hs: Homeserver, requester: string, body: Record<string, Record<string, JsonObject>>): Promise<{ failures: Record<string, Record<string, Failure>> }> {
  const failures: Record<string, Record<string, Failure>> = {};
  // Other servers' users: their master keys are fetched first (not under the write lock), to check signatures against.
  const remoteMasters = new Map<string, JsonObject>();
  const remoteTargets = Object.keys(body).filter((t) => isUserId(t) && !hs.isLocal(t));
  if (remoteTargets.length && hs.federation.enabled) {
    const q = await queryKeys(hs, requester, Object.fromEntries(remoteTargets.map((t) => [t, []])));
    for (const t of remoteTargets) if (q.master_keys[t]) remoteMasters.set(t, q.master_keys[t]);
  }
  await hs.writeLock.run(async () => {
    const mine = await hs.store.keys.crossSigningKeys(requester);
    const myKey = (type: string) => {
      const k = mine.find((r) => r.keyType === type);
      return k ? safeParseAny(k.key, requester, type) : undefined;
    };
    const b = hs.store.batch();
    const changedUsers = new Set<string>();
    for (const [target, keys] of Object.entries(body)) {
      for (const [keyId, obj] of Object.entries(keys)) {
        try {
          const added = await checkSignatures(hs, requester, target, keyId, obj, myKey, remoteMasters);
          for (const s of added) b.put('key_signatures', s);
          if (added.length) changedUsers.add(target);
        } catch (e) {
          if (!(e instanceof MatrixError)) throw e;
          (failures[target] ??= {})[keyId] = { errcode: e.errcode, error: e.message };
        }
      }
    }
    if (changedUsers.size === 0) return;
    for (const u of changedUsers) b.put('device_list_changes', { stream: b.nextStream(), userId: u });
    hs.notifier.notify(await b.commit());
  });
  void deviceListOutbox(hs).poke();
  return { failures };
}

function safeParseAny(key: JsonObject, userId: string, usage: string): ParsedKey | undefined {
  try {
    return parseCrossSigningKey(key, userId, usage);
  } catch {
    return undefined;
  }
}

const invalidSignature = (msg: string) => new MatrixError(400, 'M_INVALID_SIGNATURE', msg);

/**
 * The new signatures by `requester` on one key, checked: the object must be the stored key; a user signs
 * their own devices with their self-signing key, their own master key with a device key, and other users'
 * master keys with their user-signing key.
 */
async function checkSignatures(
  hs: Homeserver,
  requester: string,
  target: string,
  keyId: string,
  obj: JsonObject,
  myKey: (type: string) => ParsedKey | undefined,
  remoteMasters: Map<string, JsonObject>,
): Promise<KeySignatureRecord[]> {
  let stored: JsonObject | undefined;
  let isMaster = false;
  // A remote user's master key, as their server just gave it (only master keys of others can be signed).
  const remote = !hs.isLocal(target);
  const [device] = remote ? [] : await hs.store.keys.deviceKeys(target, keyId);
  if (remote) {
    const m = remoteMasters.get(target);
    if (m && publicKeyOf(m) === keyId) (stored = m), (isMaster = true);
  } else if (device) stored = device.keys;
  else {
    for (const k of await hs.store.keys.crossSigningKeys(target)) {
      if (publicKeyOf(k.key) === keyId) {
        stored = k.key;
        isMaster = k.keyType === 'master';
      }
    }
  }
  if (!stored) throw notFound('Unknown key');
  if (!sameJson(signedPart(withoutUnsigned(obj)), signedPart(stored))) throw invalidSignature('The signed object does not match the stored key');
  const sigs = (obj.signatures as Signatures | undefined)?.[requester];
  if (!sigs || typeof sigs !== 'object') throw invalidSignature(`No signature by ${requester}`);
  const have = new Map((await hs.store.keys.signatures(target, keyId)).filter((s) => s.signerUserId === requester).map((s) => [s.signerKeyId, s.signature]));
  const storedSigs = ((stored.signatures as Signatures | undefined) ?? {})[requester] ?? {};

  // Which key of the requester may sign this one.
  let signer: ParsedKey | undefined;
  if (target !== requester) {
    if (!isMaster) throw invalidSignature("Only other users' master keys can be signed");
    signer = myKey('user_signing');
  } else if (device) {
    signer = myKey('self_signing');
  } else if (isMaster) {
    signer = undefined; // a device key: resolved per signature below
  } else {
    throw invalidSignature('Self-signing and user-signing keys are signed by the master key at upload');
  }

  const out: KeySignatureRecord[] = [];
  for (const [signerKeyId, signature] of Object.entries(sigs)) {
    if (typeof signature !== 'string') throw invalidSignature('Signatures are strings');
    if (storedSigs[signerKeyId] === signature || have.get(signerKeyId) === signature) continue;
    let pubKey: Uint8Array | undefined;
    if (signer) {
      if (signer.keyId === signerKeyId) pubKey = signer.bytes;
    } else if (signerKeyId.startsWith('ed25519:')) {
      const [dev] = await hs.store.keys.deviceKeys(requester, signerKeyId.slice('ed25519:'.length));
      const pub = (dev?.keys.keys as Record<string, unknown> | undefined)?.[signerKeyId];
      if (typeof pub === 'string') {
        try {
          pubKey = decodeBase64(pub);
        } catch {
          pubKey = undefined;
        }
      }
    }
    if (!pubKey) throw invalidSignature(`Unknown signing key ${signerKeyId}`);
    const single = { ...signedPart(stored), signatures: { [requester]: { [signerKeyId]: signature } } };
    if (!(await verifyJson(single, requester, signerKeyId, pubKey))) throw invalidSignature('Invalid signature');
    out.push({ userId: target, keyId, signerUserId: requester, signerKeyId, signature });
  }
  return out;
}

// --- device list changes -----------------------------------------------------------------------------

/**
 * Users whose device lists `userId` should re-fetch for (since, upTo]: those sharing a joined room (or the
 * user themselves) whose devices or cross-signing keys changed, and those who newly share a room.
 */
export async function deviceListChanges(hs: Homeserver, userId: string, since: number, upTo: number, joinedRoomIds: readonly string[]): Promise<string[]> {
  const changes = await hs.store.keys.deviceListChangesSince(since, upTo);
  const out = new Set<string>();
  if (changes.has(userId)) out.add(userId);
  const inRange = (s: number) => s > since && s <= upTo;
  for (const roomId of joinedRoomIds) {
    const members = await hs.store.rooms.membersOfRoom(roomId);
    const me = members.find((m) => m.userId === userId);
    const iJoined = me !== undefined && inRange(me.stream);
    for (const m of members) {
      if (m.userId === userId) continue;
      if (changes.has(m.userId) || iJoined || inRange(m.stream)) out.add(m.userId);
    }
  }
  return [...out].sort();
}

/** The stream position of a sync token (`s123`, `s123_4`; a bare number is accepted too). */
export function syncTokenStream(token: string): number {
  const m = /^s?(\d+)(?:_.*)?$/.exec(token);
  const n = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(n)) throw invalidParam(`Invalid sync token ${token}`);
  return n;
}

export async function keyChanges(hs: Homeserver, userId: string, from: string, to: string | undefined): Promise<{ changed: string[]; left: string[] }> {
  const since = syncTokenStream(from);
  const upTo = to === undefined || to === '' ? hs.store.stream : syncTokenStream(to);
  if (upTo <= since) return { changed: [], left: [] };
  const joined = (await hs.store.rooms.membershipsOfUser(userId)).filter((m) => m.membership === 'join').map((m) => m.roomId);
  return { changed: await deviceListChanges(hs, userId, since, upTo, joined), left: [] };
}

// --- sendToDevice ------------------------------------------------------------------------------------

const txnKey = (user: E2eeUser, txnId: string) => `todevice_txn:${JSON.stringify([user.userId, user.deviceId, txnId])}`;

export async function sendToDevice(hs: Homeserver, sender: E2eeUser, type: string, txnId: string, messages: Record<string, Record<string, JsonObject>>): Promise<void> {
  await hs.writeLock.run(async () => {
    const key = txnKey(sender, txnId);
    if ((await hs.store.getMeta(key)) !== undefined) return; // already sent
    const b = hs.store.batch();
    const remote: Record<string, Record<string, JsonObject>> = {};
    for (const [userId, byDevice] of Object.entries(messages)) {
      if (!hs.isLocal(userId)) {
        if (isUserId(userId)) remote[userId] = byDevice;
        continue;
      }
      const devices = (await hs.store.accounts.devices(userId)).map((d) => d.deviceId);
      for (const [deviceId, content] of Object.entries(byDevice)) {
        const targets = deviceId === '*' ? devices : devices.includes(deviceId) ? [deviceId] : [];
        for (const d of targets) {
          b.put('to_device', { userId, deviceId: d, stream: b.nextStream(), message: { type, sender: sender.userId, content } });
        }
      }
    }
    const dests = stageToDevice(hs, b, sender.userId, type, remote);
    b.put('meta', { key, value: hs.clock() });
    hs.notifier.notify(await b.commit());
    kickAll(hs, dests);
  });
}

// --- /sync -------------------------------------------------------------------------------------------

const TO_DEVICE_LIMIT = 100;
/** Set when a sync returned only part of a device's inbox: the last message sent, and the upTo of that sync. */
const limitedKey = (user: E2eeUser) => `todevice_limited:${JSON.stringify([user.userId, user.deviceId])}`;

/**
 * The e2ee part of a `/sync` response for one device (called by the sync endpoint).
 *
 * to_device: messages for the device in (since, upTo], at most 100; messages at or before `since` were
 * acknowledged by the client and are deleted. When a response holds only part of the inbox, the position of
 * its last message is remembered, so a next `since` ≥ that response's `upTo` acknowledges only what was sent.
 */
export async function syncE2ee(
  hs: Homeserver,
  user: { userId: string; deviceId: string },
  since: number | undefined,
  upTo: number,
  joinedRoomIdsNow: string[],
): Promise<{
  to_device: { events: { type: string; sender: string; content: unknown }[] };
  device_lists: { changed: string[]; left: string[] };
  device_one_time_keys_count: Record<string, number>;
  device_unused_fallback_key_types: string[];
}> {
  const { userId, deviceId } = user;
  const kstore = hs.store.keys;

  // Acknowledge, then read the inbox.
  const limited = await hs.store.getMeta<{ upTo: number; last: number }>(limitedKey(user));
  let ack = since;
  if (since !== undefined && limited && since >= limited.upTo) ack = Math.min(since, limited.last);
  const from = ack ?? -Infinity;
  if (ack !== undefined && (await kstore.toDeviceCountUpTo(userId, deviceId, ack)) > 0) {
    await hs.writeLock.run(async () => {
      await hs.store
        .batch()
        .add({ op: 'deleteRange', store: 'to_device', range: { lower: [userId, deviceId, -Infinity], upper: [userId, deviceId, ack] } })
        .commit();
    });
  }
  const rows = await kstore.toDeviceBetween(userId, deviceId, from, upTo, TO_DEVICE_LIMIT + 1);
  const sent = rows.slice(0, TO_DEVICE_LIMIT);
  const nowLimited = rows.length > TO_DEVICE_LIMIT ? { upTo, last: sent[sent.length - 1].stream } : undefined;
  const consumed = limited && since !== undefined && since >= limited.upTo;
  if (nowLimited && !sameJson(nowLimited, limited)) {
    await hs.writeLock.run(() => hs.store.batch().put('meta', { key: limitedKey(user), value: nowLimited }).commit());
  } else if (!nowLimited && consumed) {
    await hs.writeLock.run(() => hs.store.batch().delete('meta', limitedKey(user)).commit());
  }

  const [changed, counts, fallbacks] = await Promise.all([
    since === undefined ? Promise.resolve([]) : deviceListChanges(hs, userId, since, upTo, joinedRoomIdsNow),
    oneTimeKeyCounts(hs, userId, deviceId),
    kstore.fallbackKeys(userId, deviceId),
  ]);
  return {
    to_device: { events: sent.map((r) => ({ type: r.message.type, sender: r.message.sender, content: r.message.content })) },
    device_lists: { changed, left: [] },
    device_one_time_keys_count: counts,
    device_unused_fallback_key_types: fallbacks.filter((f) => !f.used).map((f) => f.algorithm),
  };
}

// --- key backup --------------------------------------------------------------------------------------

export interface BackupInfo {
  algorithm: string;
  auth_data: JsonObject;
  count: number;
  etag: string;
  version: string;
}
export interface KeyBackupData {
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  session_data: JsonObject;
}

const noBackup = () => notFound('No current backup version');
const unknownVersion = () => notFound('Unknown backup version');

async function liveVersion(hs: Homeserver, userId: string, version: string | undefined): Promise<RoomKeyVersionRecord> {
  if (version === undefined) {
    const cur = await hs.store.keys.currentBackup(userId);
    if (!cur) throw noBackup();
    return cur;
  }
  const v = await hs.store.keys.backupVersion(userId, version);
  if (!v || v.deleted) throw unknownVersion();
  return v;
}

export async function createBackup(hs: Homeserver, userId: string, algorithm: string, authData: JsonObject): Promise<{ version: string }> {
  return hs.writeLock.run(async () => {
    const all = await hs.store.keys.backupVersions(userId);
    const next = all.reduce((m, v) => Math.max(m, Number(v.version) || 0), 0) + 1;
    const rec: RoomKeyVersionRecord = { userId, version: String(next), algorithm, authData, etag: '0' };
    await hs.store.batch().put('room_key_versions', rec).commit();
    return { version: rec.version };
  });
}

export async function getBackup(hs: Homeserver, userId: string, version?: string): Promise<BackupInfo> {
  const v = await liveVersion(hs, userId, version);
  return { algorithm: v.algorithm, auth_data: v.authData, count: await hs.store.keys.roomKeyCount(userId, v.version), etag: v.etag, version: v.version };
}

export async function updateBackup(hs: Homeserver, userId: string, version: string, req: { algorithm: string; auth_data: JsonObject; version?: string }): Promise<void> {
  if (req.version !== undefined && req.version !== version) throw invalidParam('version in body does not match the path');
  await hs.writeLock.run(async () => {
    const v = await liveVersion(hs, userId, version);
    if (req.algorithm !== v.algorithm) throw invalidParam('Algorithm does not match');
    await hs.store.batch().put('room_key_versions', { ...v, authData: req.auth_data }).commit();
  });
}

/** Delete a backup version and its keys; deleting an already deleted version succeeds. */
export async function deleteBackup(hs: Homeserver, userId: string, version: string | undefined): Promise<void> {
  await hs.writeLock.run(async () => {
    let v: RoomKeyVersionRecord | undefined;
    if (version === undefined) {
      v = await hs.store.keys.currentBackup(userId);
      if (!v) throw noBackup();
    } else {
      v = await hs.store.keys.backupVersion(userId, version);
      if (!v) throw unknownVersion();
      if (v.deleted) return;
    }
    await hs.store
      .batch()
      .put('room_key_versions', { ...v, deleted: true })
      .add({ op: 'deleteRange', store: 'room_keys', range: { lower: [userId, v.version], upper: [userId, v.version, []] } })
      .commit();
  });
}

/** Whether `n` should replace `o` (spec: "Server-side key backups"). */
export function isBetterRoomKey(n: KeyBackupData, o: KeyBackupData | undefined): boolean {
  if (!o) return true;
  if (n.is_verified !== o.is_verified) return n.is_verified;
  if (n.first_message_index !== o.first_message_index) return n.first_message_index < o.first_message_index;
  return n.forwarded_count < o.forwarded_count;
}

/** Store keys into the current backup version: `rooms` maps room id → session id → key data. */
export async function putRoomKeys(hs: Homeserver, userId: string, version: string | undefined, rooms: Record<string, Record<string, KeyBackupData>>): Promise<{ etag: string; count: number }> {
  if (version === undefined) throw missingParam('version is required');
  return hs.writeLock.run(async () => {
    const cur = await hs.store.keys.currentBackup(userId);
    if (!cur) throw noBackup();
    if (cur.version !== version) throw new MatrixError(403, 'M_WRONG_ROOM_KEYS_VERSION', 'Wrong backup version.', { current_version: cur.version });
    const b = hs.store.batch();
    for (const [roomId, sessions] of Object.entries(rooms)) {
      const existing = new Map((await hs.store.keys.roomKeys(userId, version, roomId)).map((k) => [k.sessionId, k.data]));
      for (const [sessionId, data] of Object.entries(sessions)) {
        if (!isBetterRoomKey(data, existing.get(sessionId))) continue;
        const rec: RoomKeyRecord = {
          userId, version, roomId, sessionId,
          data: { first_message_index: data.first_message_index, forwarded_count: data.forwarded_count, is_verified: data.is_verified, session_data: data.session_data },
        };
        b.put('room_keys', rec);
      }
    }
    let etag = cur.etag;
    if (b.ops.length > 0) {
      etag = String((Number(cur.etag) || 0) + 1);
      b.put('room_key_versions', { ...cur, etag });
      await b.commit();
    }
    return { etag, count: await hs.store.keys.roomKeyCount(userId, version) };
  });
}

export async function getRoomKeys(hs: Homeserver, userId: string, version: string | undefined, roomId?: string, sessionId?: string): Promise<RoomKeyRecord[]> {
  const v = await liveVersion(hs, userId, version);
  return hs.store.keys.roomKeys(userId, v.version, roomId, sessionId);
}

export async function deleteRoomKeys(hs: Homeserver, userId: string, version: string | undefined, roomId?: string, sessionId?: string): Promise<{ etag: string; count: number }> {
  return hs.writeLock.run(async () => {
    const v = await liveVersion(hs, userId, version);
    const doomed = await hs.store.keys.roomKeys(userId, v.version, roomId, sessionId);
    let etag = v.etag;
    if (doomed.length > 0) {
      etag = String((Number(v.etag) || 0) + 1);
      const b = hs.store.batch();
      for (const k of doomed) b.delete('room_keys', [userId, v.version, k.roomId, k.sessionId]);
      b.put('room_key_versions', { ...v, etag });
      await b.commit();
    }
    return { etag, count: await hs.store.keys.roomKeyCount(userId, v.version) };
  });
}
