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
 * Checking is split so that a receiver can drop what it does not need before the expensive part:
 * `parseAnnouncement` does the cheap checks (shape, limits, age) and tells the origin and `ts`;
 * `verifyAnnouncement` then checks the signature. `checkAnnouncement` does both.
 *
 * Pure functions: the clock and the key lookup are passed in; a rejection is a result with a reason.
 */
import { hasSpaceOrControl, isRoomAlias, isRoomId, serverOf } from '../util/ids.ts';
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
/** Longest `name` of an announced room, in UTF-16 code units. */
export const MAX_ANNOUNCED_NAME = 1024;
/** Longest `topic` of an announced room, in UTF-16 code units. */
export const MAX_ANNOUNCED_TOPIC = 4096;
/** Longest identifier-like field (room id, alias, `join_rule`, `room_type`). */
const MAX_ID = 255;
/** Longest `avatar_url`. */
const MAX_AVATAR_URL = 1024;

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
  /**
   * When the origin made it (ms since the epoch, the origin's clock): it orders the announcements of
   * one origin (a newer one replaces an older one), nothing else, since the origin chooses it.
   */
  ts: number;
  rooms: AnnouncedRoom[];
  signatures?: Record<string, Record<string, string>>;
}

export interface AnnouncementCheckOptions {
  /** The receiver's clock (ms since the epoch). */
  now: number;
  /** Announcements dated further in the past are refused (clock skew allowance, and a bound on replays). */
  maxAgeMs: number;
  /** Announcements dated further in the future are refused (clock skew allowance). */
  maxFutureMs: number;
  /** The ed25519 public key a server name stands for (undefined: not a valid node name). */
  publicKeyOf: (serverName: string) => Uint8Array | undefined;
}

/**
 * An announcement that passed the cheap checks, its signature not yet verified. `announcement` keeps
 * the known fields only (no signatures); `raw` is the object as signed and `bytes` its canonical JSON
 * (to pass on unchanged: the signature covers fields this version does not know).
 */
export interface ParsedAnnouncement {
  ok: true;
  announcement: DirectoryAnnouncement;
  raw: JsonObject;
  bytes: Uint8Array;
  /** The origin's public key, as its name says. */
  key: Uint8Array;
}
export type AnnouncementParse = ParsedAnnouncement | { ok: false; reason: string };

/** The verdict on a received announcement: as parsed, once its signature is verified; or why it is refused. */
export type AnnouncementVerdict = { ok: true; announcement: DirectoryAnnouncement; raw: JsonObject; bytes: Uint8Array } | { ok: false; reason: string };

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
/** A room alias (`#localpart:server`, at most 255 characters) without whitespace or control characters. */
const isAlias = (x: unknown): x is string => isRoomAlias(x) && !hasSpaceOrControl(x);
/** `!opaque[:server]` without whitespace or control characters (v12 room ids have no server part). */
const isCleanRoomId = (x: unknown): x is string => isRoomId(x) && !hasSpaceOrControl(x);
const isAvatarUrl = (x: unknown): x is string => typeof x === 'string' && x.startsWith('mxc://') && x.length <= MAX_AVATAR_URL;

/**
 * Why a room entry cannot be announced by `origin` (undefined when it can). A receiver refuses an
 * announcement with any such room; a sender drops or cleans those rooms first (`sanitizeAnnouncedRoom`).
 */
export function announcedRoomProblem(r: unknown, origin: string): string | undefined {
  if (!isObject(r)) return 'a room is not an object';
  if (!isCleanRoomId(r.room_id)) return 'a room has an invalid room_id';
  if (!Array.isArray(r.aliases) || r.aliases.length > MAX_ANNOUNCED_ALIASES) return `room ${r.room_id}: aliases must be a list of at most ${MAX_ANNOUNCED_ALIASES}`;
  for (const a of r.aliases) {
    if (!isAlias(a)) return `room ${r.room_id}: invalid alias`;
    // A node publishes aliases on itself only: it cannot announce another node's aliases.
    if (serverOf(a) !== origin) return `room ${r.room_id}: alias ${a} is not on the announcing server`;
  }
  if (r.canonical_alias !== undefined && !isAlias(r.canonical_alias)) return `room ${r.room_id}: invalid canonical_alias`;
  if (!optString(r.name, MAX_ANNOUNCED_NAME) || !optString(r.topic, MAX_ANNOUNCED_TOPIC) || !optString(r.room_type, MAX_ID)) return `room ${r.room_id}: invalid name, topic or room_type`;
  if (r.avatar_url !== undefined && !isAvatarUrl(r.avatar_url)) return `room ${r.room_id}: invalid avatar_url`;
  if (!isNonNegInt(r.num_joined_members)) return `room ${r.room_id}: invalid num_joined_members`;
  if (typeof r.join_rule !== 'string' || r.join_rule.length > MAX_ID) return `room ${r.room_id}: invalid join_rule`;
  if (typeof r.guest_can_join !== 'boolean' || typeof r.world_readable !== 'boolean') return `room ${r.room_id}: invalid guest_can_join or world_readable`;
  return undefined;
}

/** Clip a string to `max` UTF-16 units without splitting a surrogate pair. */
function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  const cut = s.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

/**
 * A room as `origin` can announce it: name and topic clipped to the limits, optional fields that would
 * be refused left out, aliases kept when valid and on `origin` (at most `MAX_ANNOUNCED_ALIASES`).
 * Undefined when a required field cannot be announced (room id, member count, join rule...): the
 * sender leaves that room out rather than have receivers refuse its whole announcement.
 */
export function sanitizeAnnouncedRoom(r: AnnouncedRoom, origin: string): AnnouncedRoom | undefined {
  const out: AnnouncedRoom = {
    room_id: r.room_id,
    aliases: [...new Set(r.aliases)].filter((a) => isAlias(a) && serverOf(a) === origin).slice(0, MAX_ANNOUNCED_ALIASES),
    num_joined_members: r.num_joined_members,
    join_rule: r.join_rule,
    guest_can_join: r.guest_can_join,
    world_readable: r.world_readable,
  };
  if (isAlias(r.canonical_alias)) out.canonical_alias = r.canonical_alias;
  if (typeof r.name === 'string') out.name = clip(r.name, MAX_ANNOUNCED_NAME);
  if (typeof r.topic === 'string') out.topic = clip(r.topic, MAX_ANNOUNCED_TOPIC);
  if (isAvatarUrl(r.avatar_url)) out.avatar_url = r.avatar_url;
  if (typeof r.room_type === 'string' && r.room_type.length <= MAX_ID) out.room_type = r.room_type;
  return announcedRoomProblem(out, origin) === undefined ? out : undefined;
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
 * The cheap checks of a received announcement: its shape, limits (size, rooms, aliases), age (not more
 * than `maxAgeMs` behind the receiver's clock nor `maxFutureMs` ahead), every alias on the origin.
 * Returns the announcement (room entries reduced to known fields) for `verifyAnnouncement`, or why it
 * is refused. The signature is not looked at.
 */
export function parseAnnouncement(raw: unknown, opts: AnnouncementCheckOptions): AnnouncementParse {
  const no = (reason: string) => ({ ok: false as const, reason });
  if (!isObject(raw)) return no('not a JSON object');
  if (raw.type !== DIRECTORY_ANNOUNCEMENT_TYPE) return no('not a directory announcement');
  if (raw.version !== DIRECTORY_ANNOUNCEMENT_VERSION) return no(`unsupported version ${JSON.stringify(raw.version)}`);
  let bytes: Uint8Array;
  try {
    bytes = canonicalJsonBytes(raw);
  } catch {
    return no('not encodable as canonical JSON');
  }
  if (bytes.length > MAX_ANNOUNCEMENT_BYTES) return no(`larger than ${MAX_ANNOUNCEMENT_BYTES} bytes`);
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
    const p = announcedRoomProblem(r, origin);
    if (p) return no(p);
    const id = (r as JsonObject).room_id as string;
    if (seen.has(id)) return no(`room ${id} listed twice`);
    seen.add(id);
  }
  return {
    ok: true,
    announcement: directoryAnnouncement(origin, raw.ts, (raw.rooms as JsonObject[]).map(knownFields)),
    raw,
    bytes,
    key,
  };
}

/**
 * The expensive check: the origin's signature. Any ed25519 key id of the origin may sign (ours is
 * `ed25519:p2p`); the key itself is the one the origin's name stands for.
 */
export async function verifyAnnouncement(p: ParsedAnnouncement): Promise<AnnouncementVerdict> {
  const origin = p.announcement.origin;
  const sigs = isObject(p.raw.signatures) ? p.raw.signatures[origin] : undefined;
  const keyIds = isObject(sigs) ? Object.keys(sigs).filter((k) => k.startsWith('ed25519:')).slice(0, 4) : [];
  let signed = false;
  for (const keyId of keyIds) if ((signed = await verifyJson(p.raw, origin, keyId, p.key))) break;
  if (!signed) return { ok: false, reason: 'no valid signature by the origin' };
  return { ok: true, announcement: p.announcement, raw: p.raw, bytes: p.bytes };
}

/** Check a received announcement: `parseAnnouncement`, then `verifyAnnouncement`. */
export async function checkAnnouncement(raw: unknown, opts: AnnouncementCheckOptions): Promise<AnnouncementVerdict> {
  const p = parseAnnouncement(raw, opts);
  return p.ok ? verifyAnnouncement(p) : p;
}

/** `parseAnnouncement` of an announcement as received in bytes (gossip): size first, then UTF-8 JSON. */
export function parseAnnouncementBytes(bytes: Uint8Array, opts: AnnouncementCheckOptions): AnnouncementParse {
  // Canonical JSON is the encoding we send; a little slack for other encoders of the same object.
  if (bytes.length > MAX_ANNOUNCEMENT_BYTES + 1024) return { ok: false, reason: `larger than ${MAX_ANNOUNCEMENT_BYTES} bytes` };
  let parsed: JsonValue;
  try {
    parsed = parseJson(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  return parseAnnouncement(parsed, opts);
}

/** Check an announcement as received in bytes (gossip): `parseAnnouncementBytes`, then `verifyAnnouncement`. */
export async function checkAnnouncementBytes(bytes: Uint8Array, opts: AnnouncementCheckOptions): Promise<AnnouncementVerdict> {
  const p = parseAnnouncementBytes(bytes, opts);
  return p.ok ? verifyAnnouncement(p) : p;
}
