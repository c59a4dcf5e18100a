/**
 * Directory announcements (matrix-p2p, not in the Matrix spec): a node's signed list of the rooms it
 * publishes in its room directory, gossiped to every node so that rooms stay findable through whoever
 * is in them (issue #7). The gossip relays messages, so the sender of a message is not known: the
 * origin's signature is the only authentication. The origin's server name is the hex of its ed25519
 * key (docs/ARCHITECTURE.md, Identity), so the signature is checked without fetching a key.
 *
 * Signing follows the spec's JSON signing (appendices, "Signing JSON"): canonical JSON of the object
 * without `signatures` and `unsigned`, signature under `signatures[origin][keyId]`.
 *
 * Pure functions: the clock and the key lookup are passed in; a rejection is a result with a reason.
 */
import { canonicalJsonBytes, parseJson } from './canonical-json.ts';
import { verifyJson } from './signing.ts';
import type { JsonObject, JsonValue } from './types.ts';

/** The value of an announcement's `type` field. */
export const DIRECTORY_ANNOUNCEMENT_TYPE = 'org.matrix_p2p.directory';
/** The format version this code reads and writes. */
export const DIRECTORY_ANNOUNCEMENT_VERSION = 1;
/** Largest announcement, in bytes of canonical JSON (a gossip message must stay small). */
export const MAX_ANNOUNCEMENT_BYTES = 64 * 1024;
/** Most rooms one announcement may list. */
export const MAX_ANNOUNCED_ROOMS = 200;
/** Most aliases of one room one announcement may list. */
export const MAX_ANNOUNCED_ALIASES = 16;

/** One room of an announcement: the fields of a spec PublishedRoomsChunk, plus the origin's own aliases of it. */
export interface AnnouncedRoom {
  room_id: string;
  /** The origin's local aliases of the room (each `#x:<origin>`), possibly none. */
  aliases: string[];
  /** The room's canonical alias (any server's: a claim about the room's state, not checked here). */
  canonical_alias?: string;
  name?: string;
  topic?: string;
  avatar_url?: string;
  num_joined_members: number;
  join_rule: string;
  guest_can_join: boolean;
  world_readable: boolean;
  room_type?: string;
}

export interface DirectoryAnnouncement {
  type: typeof DIRECTORY_ANNOUNCEMENT_TYPE;
  version: typeof DIRECTORY_ANNOUNCEMENT_VERSION;
  /** The announcing node's server name. */
  origin: string;
  /** When the origin made it (ms since the epoch, the origin's clock). */
  ts: number;
  rooms: AnnouncedRoom[];
  signatures?: Record<string, Record<string, string>>;
}

export interface AnnouncementCheckOptions {
  /** The receiver's clock (ms since the epoch). */
  now: number;
  /** Older announcements (by `ts`) are stale. */
  maxAgeMs: number;
  /** Announcements dated further in the future are refused (clock skew allowance). */
  maxFutureMs: number;
  /** The ed25519 public key a server name stands for (undefined: not a valid node name). */
  publicKeyOf: (serverName: string) => Uint8Array | undefined;
}

/**
 * The verdict on a received announcement. `raw` is the object as signed (to pass on unchanged: the
 * signature covers fields this version does not know); `announcement` keeps the known fields only.
 */
export type AnnouncementVerdict = { ok: true; announcement: DirectoryAnnouncement; raw: JsonObject } | { ok: false; reason: string };

/** The unsigned announcement of `rooms` by `origin` at `ts` (sign it with `signJson(a, origin, key)`). */
export function directoryAnnouncement(origin: string, ts: number, rooms: AnnouncedRoom[]): DirectoryAnnouncement {
  return { type: DIRECTORY_ANNOUNCEMENT_TYPE, version: DIRECTORY_ANNOUNCEMENT_VERSION, origin, ts, rooms };
}

/** The bytes of an announcement as it travels (UTF-8 canonical JSON). */
export function encodeAnnouncement(a: DirectoryAnnouncement): Uint8Array {
  return canonicalJsonBytes(a);
}

const isObject = (x: unknown): x is JsonObject => typeof x === 'object' && x !== null && !Array.isArray(x);
const isNonNegInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const optString = (x: unknown, max: number) => x === undefined || (typeof x === 'string' && x.length <= max);
/** `#localpart:server`, no whitespace or control characters, at most 255 characters (appendices, "Room Aliases"). */
const isAlias = (x: unknown): x is string => typeof x === 'string' && x.length <= 255 && /^#[^:\s\x00-\x1f\x7f]+:[^\s\x00-\x1f\x7f]+$/.test(x);
/** `!opaque[:server]` (appendices, "Room IDs"; v12 room ids have no server part). */
const isRoomId = (x: unknown): x is string => typeof x === 'string' && x.length > 1 && x.length <= 255 && /^![^\s\x00-\x1f\x7f]+$/.test(x);

/** Why a room entry is malformed for `origin` (undefined when it is fine). */
function roomProblem(r: unknown, origin: string): string | undefined {
  if (!isObject(r)) return 'a room is not an object';
  if (!isRoomId(r.room_id)) return 'a room has an invalid room_id';
  if (!Array.isArray(r.aliases) || r.aliases.length > MAX_ANNOUNCED_ALIASES) return `room ${r.room_id}: aliases must be a list of at most ${MAX_ANNOUNCED_ALIASES}`;
  for (const a of r.aliases) {
    if (!isAlias(a)) return `room ${r.room_id}: invalid alias`;
    // A node publishes aliases on itself only: it cannot announce another node's aliases.
    if (!a.endsWith(':' + origin)) return `room ${r.room_id}: alias ${a} is not on the announcing server`;
  }
  if (r.canonical_alias !== undefined && !isAlias(r.canonical_alias)) return `room ${r.room_id}: invalid canonical_alias`;
  if (!optString(r.name, 1024) || !optString(r.topic, 4096) || !optString(r.room_type, 255)) return `room ${r.room_id}: invalid name, topic or room_type`;
  if (r.avatar_url !== undefined && !(typeof r.avatar_url === 'string' && r.avatar_url.startsWith('mxc://') && r.avatar_url.length <= 1024)) {
    return `room ${r.room_id}: invalid avatar_url`;
  }
  if (!isNonNegInt(r.num_joined_members)) return `room ${r.room_id}: invalid num_joined_members`;
  if (typeof r.join_rule !== 'string' || r.join_rule.length > 255) return `room ${r.room_id}: invalid join_rule`;
  if (typeof r.guest_can_join !== 'boolean' || typeof r.world_readable !== 'boolean') return `room ${r.room_id}: invalid guest_can_join or world_readable`;
  return undefined;
}

/** A room entry with only the fields this version knows (unknown ones are signed but not kept). */
function knownFields(r: JsonObject): AnnouncedRoom {
  const out: AnnouncedRoom = {
    room_id: r.room_id as string,
    aliases: [...new Set(r.aliases as string[])],
    num_joined_members: r.num_joined_members as number,
    join_rule: r.join_rule as string,
    guest_can_join: r.guest_can_join as boolean,
    world_readable: r.world_readable as boolean,
  };
  for (const k of ['canonical_alias', 'name', 'topic', 'avatar_url', 'room_type'] as const) if (typeof r[k] === 'string') out[k] = r[k] as string;
  return out;
}

/**
 * Check a received announcement: its shape, limits (size, rooms, aliases), age (not older than
 * `maxAgeMs`, not more than `maxFutureMs` ahead), every alias on the origin, and the origin's
 * signature. Returns the announcement (room entries reduced to known fields) or why it is refused.
 */
export async function checkAnnouncement(raw: unknown, opts: AnnouncementCheckOptions): Promise<AnnouncementVerdict> {
  const no = (reason: string): AnnouncementVerdict => ({ ok: false, reason });
  if (!isObject(raw)) return no('not a JSON object');
  if (raw.type !== DIRECTORY_ANNOUNCEMENT_TYPE) return no('not a directory announcement');
  if (raw.version !== DIRECTORY_ANNOUNCEMENT_VERSION) return no(`unsupported version ${JSON.stringify(raw.version)}`);
  let size: number;
  try {
    size = canonicalJsonBytes(raw).length;
  } catch {
    return no('not encodable as canonical JSON');
  }
  if (size > MAX_ANNOUNCEMENT_BYTES) return no(`larger than ${MAX_ANNOUNCEMENT_BYTES} bytes`);
  const origin = raw.origin;
  if (typeof origin !== 'string') return no('no origin');
  const key = opts.publicKeyOf(origin);
  if (!key) return no('the origin is not a node name');
  if (!isNonNegInt(raw.ts)) return no('invalid ts');
  if (raw.ts > opts.now + opts.maxFutureMs) return no('dated in the future');
  if (raw.ts < opts.now - opts.maxAgeMs) return no('too old');
  if (!Array.isArray(raw.rooms)) return no('rooms is not a list');
  if (raw.rooms.length > MAX_ANNOUNCED_ROOMS) return no(`more than ${MAX_ANNOUNCED_ROOMS} rooms`);
  const seen = new Set<string>();
  for (const r of raw.rooms) {
    const p = roomProblem(r, origin);
    if (p) return no(p);
    const id = (r as JsonObject).room_id as string;
    if (seen.has(id)) return no(`room ${id} listed twice`);
    seen.add(id);
  }
  // The signature last: it is the expensive check. Any ed25519 key id of the origin may sign (ours is
  // `ed25519:p2p`); the key itself is the one the origin's name stands for.
  const sigs = isObject(raw.signatures) ? raw.signatures[origin] : undefined;
  const keyIds = isObject(sigs) ? Object.keys(sigs).filter((k) => k.startsWith('ed25519:')).slice(0, 4) : [];
  let signed = false;
  for (const keyId of keyIds) if ((signed = await verifyJson(raw, origin, keyId, key))) break;
  if (!signed) return no('no valid signature by the origin');
  return {
    ok: true,
    announcement: {
      type: DIRECTORY_ANNOUNCEMENT_TYPE,
      version: DIRECTORY_ANNOUNCEMENT_VERSION,
      origin,
      ts: raw.ts,
      rooms: (raw.rooms as JsonObject[]).map(knownFields),
      signatures: raw.signatures as Record<string, Record<string, string>>,
    },
    raw,
  };
}

/** Check an announcement as received in bytes (gossip): size first, then UTF-8 JSON, then `checkAnnouncement`. */
export async function checkAnnouncementBytes(bytes: Uint8Array, opts: AnnouncementCheckOptions): Promise<AnnouncementVerdict> {
  // Canonical JSON is the encoding we send; a little slack for other encoders of the same object.
  if (bytes.length > MAX_ANNOUNCEMENT_BYTES + 1024) return { ok: false, reason: `larger than ${MAX_ANNOUNCEMENT_BYTES} bytes` };
  let parsed: JsonValue;
  try {
    parsed = parseJson(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  return checkAnnouncement(parsed, opts);
}
