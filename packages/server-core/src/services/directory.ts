/**
 * Room aliases and the published room directory (spec: client-server API, "Room aliases",
 * "Published room directory"). `publicRoomsChunk` and `localPublicRooms` are shared with the
 * federation `/publicRooms` endpoint.
 */
import { MatrixError, forbidden, invalidParam, notFound } from '../api/errors.ts';
import { namedLevel, currentPowerLevels, userPowerLevel } from '../kernel/auth/index.ts';
import { roomVersion } from '../kernel/room-versions.ts';
import type { JsonObject, PDU } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import type { AliasRecord } from '../store/rooms.ts';
import { isRoomAlias, serverOf } from '../util/ids.ts';

/** One entry of a `/publicRooms` response (spec: PublishedRoomsChunk). */
export interface PublicRoomsChunk {
  room_id: string;
  num_joined_members: number;
  world_readable: boolean;
  guest_can_join: boolean;
  name?: string;
  topic?: string;
  canonical_alias?: string;
  avatar_url?: string;
  join_rule?: string;
  room_type?: string;
}

export interface PublicRoomsResponse {
  chunk: PublicRoomsChunk[];
  next_batch?: string;
  prev_batch?: string;
  total_room_count_estimate: number;
}

export interface PublicRoomsQuery {
  /** Rooms per page; absent or 0 = all. */
  limit?: number;
  /** A `next_batch` or `prev_batch` token. */
  since?: string;
  /** Case-insensitive substring of name, topic, canonical alias (or alt alias) or room id. */
  searchTerm?: string;
  /** Room types to include (`null` = rooms without a type); absent = all. */
  roomTypes?: (string | null)[];
}

const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);

/** The plain-text topic of `m.room.topic` content: `topic`, else a `text/plain` entry of `m.topic`. */
function plainTopic(content: JsonObject | undefined): string | undefined {
  if (!content) return undefined;
  const t = str(content.topic);
  if (t !== undefined) return t;
  const rich = (content['m.topic'] as JsonObject | undefined)?.['m.text'] ?? content['m.topic'];
  if (Array.isArray(rich)) {
    for (const r of rich) {
      if (r && typeof r === 'object' && !Array.isArray(r) && ((r as JsonObject).mimetype ?? 'text/plain') === 'text/plain' && typeof (r as JsonObject).body === 'string') {
        return (r as JsonObject).body as string;
      }
    }
  }
  return undefined;
}

/** Directory entries for rooms, from each room's current state (in the given order; unknown rooms are skipped). */
export async function publicRoomsChunk(hs: Homeserver, roomIds: readonly string[]): Promise<PublicRoomsChunk[]> {
  const rooms = hs.store.rooms;
  const out: PublicRoomsChunk[] = [];
  for (const roomId of roomIds) {
    const content = async (type: string) => (await rooms.stateEvent(roomId, type, ''))?.pdu.content as JsonObject | undefined;
    const [create, name, topic, alias, avatar, joinRules, hv, guest, members] = await Promise.all([
      content('m.room.create'), content('m.room.name'), content('m.room.topic'), content('m.room.canonical_alias'), content('m.room.avatar'),
      content('m.room.join_rules'), content('m.room.history_visibility'), content('m.room.guest_access'), rooms.membersOfRoom(roomId, 'join'),
    ]);
    if (!create) continue;
    const entry: PublicRoomsChunk = {
      room_id: roomId,
      num_joined_members: members.length,
      world_readable: hv?.history_visibility === 'world_readable',
      guest_can_join: guest?.guest_access === 'can_join',
    };
    const n = str(name?.name);
    if (n) entry.name = n;
    const t = plainTopic(topic);
    if (t) entry.topic = t;
    const a = str(alias?.alias);
    if (a && isRoomAlias(a)) entry.canonical_alias = a;
    const av = str(avatar?.url);
    if (av) entry.avatar_url = av;
    const jr = str(joinRules?.join_rule);
    if (jr) entry.join_rule = jr;
    const rt = str(create.type);
    if (rt) entry.room_type = rt;
    out.push(entry);
  }
  return out;
}

/** Join rules under which a published room is listed (as Synapse: rooms nobody could join or peek into are left out). */
const LISTED_JOIN_RULES = new Set(['public', 'knock', 'knock_restricted']);

function matches(entry: PublicRoomsChunk, alt: string[], term: string): boolean {
  const t = term.toLowerCase();
  return [entry.name, entry.topic, entry.canonical_alias, entry.room_id, ...alt].some((s) => s !== undefined && s.toLowerCase().includes(t));
}

/** `f<offset>`: the page starting at offset; `b<offset>`: the page ending before offset. */
function parseSince(since: string | undefined): { dir: 'f' | 'b'; offset: number } {
  if (since === undefined || since === '') return { dir: 'f', offset: 0 };
  const m = /^([fb])(\d{1,9})$/.exec(since);
  if (!m) throw invalidParam('Unknown pagination token');
  return { dir: m[1] as 'f' | 'b', offset: Number(m[2]) };
}

/**
 * This server's published room directory: rooms published with `visibility: public` that have joined
 * members and a join rule (or history visibility) that lets outsiders in, largest first.
 */
export async function localPublicRooms(hs: Homeserver, q: PublicRoomsQuery = {}): Promise<PublicRoomsResponse> {
  const { dir, offset } = parseSince(q.since);
  const published = await hs.store.rooms.publishedRooms();
  let entries = (await publicRoomsChunk(hs, published.map((r) => r.roomId))).filter(
    (e) => e.num_joined_members > 0 && (LISTED_JOIN_RULES.has(e.join_rule ?? 'public') || e.world_readable),
  );
  if (q.roomTypes) {
    const types = q.roomTypes;
    entries = entries.filter((e) => types.includes(e.room_type ?? null));
  }
  if (q.searchTerm) {
    const term = q.searchTerm;
    const kept: PublicRoomsChunk[] = [];
    for (const e of entries) {
      let alt: string[] = [];
      const ca = (await hs.store.rooms.stateEvent(e.room_id, 'm.room.canonical_alias', ''))?.pdu.content as JsonObject | undefined;
      if (Array.isArray(ca?.alt_aliases)) alt = ca.alt_aliases.filter((x): x is string => typeof x === 'string');
      if (matches(e, alt, term)) kept.push(e);
    }
    entries = kept;
  }
  entries.sort((a, b) => b.num_joined_members - a.num_joined_members || (a.room_id < b.room_id ? -1 : a.room_id > b.room_id ? 1 : 0));

  const total = entries.length;
  const limit = q.limit && q.limit > 0 ? q.limit : undefined;
  let start: number;
  let end: number;
  if (limit === undefined) {
    start = dir === 'f' ? Math.min(offset, total) : 0;
    end = dir === 'f' ? total : Math.min(offset, total);
  } else if (dir === 'f') {
    start = Math.min(offset, total);
    end = Math.min(start + limit, total);
  } else {
    end = Math.min(offset, total);
    start = Math.max(0, end - limit);
  }
  const res: PublicRoomsResponse = { chunk: entries.slice(start, end), total_room_count_estimate: total };
  if (end < total) res.next_batch = `f${end}`;
  if (start > 0) res.prev_batch = `b${start}`;
  return res;
}

/** A room alias: `#localpart:server`, at most 255 characters, no whitespace or control characters (400 M_INVALID_PARAM otherwise). */
export function checkAliasSyntax(alias: string): void {
  if (!isRoomAlias(alias) || /[\s\x00-\x1f\x7f]/.test(alias)) throw invalidParam('Room alias invalid');
}

/** A local alias as a client may create it: a valid alias on this server. */
export function checkLocalAlias(hs: Homeserver, alias: string): void {
  checkAliasSyntax(alias);
  if (serverOf(alias) !== hs.serverName) throw invalidParam('Room aliases can only be created on this server');
}

/** A user's power level in a room and the level needed to send `eventType` as a state event. */
export async function statePower(hs: Homeserver, roomId: string, userId: string, eventType: string): Promise<{ mine: number; needed: number }> {
  const room = await hs.store.rooms.room(roomId);
  const rules = room && roomVersion(room.version);
  if (!room || !rules) throw notFound('Room not found');
  const [create, pl] = await Promise.all([hs.store.rooms.stateEvent(roomId, 'm.room.create', ''), hs.store.rooms.stateEvent(roomId, 'm.room.power_levels', '')]);
  const state = new Map<string, PDU>();
  if (create) state.set('m.room.create', create.pdu);
  if (pl) state.set('m.room.power_levels', pl.pdu);
  const lookup = (type: string, key: string) => (key === '' ? state.get(type) : undefined);
  const levels = currentPowerLevels(lookup, rules);
  const needed = levels?.events.get(eventType) ?? namedLevel(levels, 'state_default');
  return { mine: userPowerLevel(userId, lookup, rules), needed };
}

/** Whether the user may manage the room's aliases and directory listing: joined and able to send `m.room.canonical_alias`. */
export async function isRoomAliasAdmin(hs: Homeserver, roomId: string, userId: string): Promise<boolean> {
  const m = await hs.store.rooms.membership(roomId, userId);
  if (m?.membership !== 'join') return false;
  const { mine, needed } = await statePower(hs, roomId, userId, 'm.room.canonical_alias');
  return mine >= needed;
}

/** Map a local alias to a room (PUT /directory/room/{roomAlias}). */
export async function createAlias(hs: Homeserver, userId: string, alias: string, roomId: string): Promise<void> {
  checkLocalAlias(hs, alias);
  if (!(await hs.store.rooms.room(roomId))) throw notFound('Room not found');
  const m = await hs.store.rooms.membership(roomId, userId);
  if (m?.membership !== 'join') throw forbidden('You must be joined to the room to create an alias for it');
  await hs.writeLock.run(async () => {
    if (await hs.store.rooms.alias(alias)) throw new MatrixError(409, 'M_UNKNOWN', `Room alias ${alias} already exists.`);
    const rec: AliasRecord = { alias, roomId, creator: userId, servers: [hs.serverName] };
    const b = hs.store.batch();
    b.put('aliases', rec);
    await b.commit();
  });
}

/**
 * Remove a local alias (DELETE /directory/room/{roomAlias}): its creator or a room admin may. The
 * alias is then dropped from the room's `m.room.canonical_alias` when the user may send that event
 * (the spec recommends deleting the alias even if that update is not permitted).
 */
export async function deleteAlias(hs: Homeserver, userId: string, alias: string): Promise<void> {
  checkAliasSyntax(alias);
  const rec = await hs.store.rooms.alias(alias);
  if (!rec) throw notFound(`Room alias ${alias} not found.`);
  if (rec.creator !== userId && !(await isRoomAliasAdmin(hs, rec.roomId, userId))) throw forbidden('You may not delete this alias');
  await hs.writeLock.run(async () => {
    const cur = await hs.store.rooms.alias(alias);
    if (!cur) throw notFound(`Room alias ${alias} not found.`);
    const b = hs.store.batch();
    b.delete('aliases', alias);
    await b.commit();
  });
  await dropFromCanonicalAlias(hs, userId, rec.roomId, alias).catch(() => undefined);
}

async function dropFromCanonicalAlias(hs: Homeserver, userId: string, roomId: string, alias: string): Promise<void> {
  const ev = await hs.store.rooms.stateEvent(roomId, 'm.room.canonical_alias', '');
  const c = ev?.pdu.content as JsonObject | undefined;
  if (!c) return;
  const alt = Array.isArray(c.alt_aliases) ? c.alt_aliases : undefined;
  if (c.alias !== alias && !alt?.includes(alias)) return;
  if ((await hs.store.rooms.membership(roomId, userId))?.membership !== 'join') return;
  await hs.rooms.write(roomId, async (w) => {
    const cur = (await w.stateEvent('m.room.canonical_alias', ''))?.content as JsonObject | undefined;
    if (!cur) return;
    const next: JsonObject = { ...cur };
    if (next.alias === alias) delete next.alias;
    if (Array.isArray(next.alt_aliases)) next.alt_aliases = next.alt_aliases.filter((a) => a !== alias);
    await hs.rooms.append(w, { type: 'm.room.canonical_alias', sender: userId, stateKey: '', content: next });
  });
}

/** Publish or unpublish a room in the local directory (PUT /directory/list/room/{roomId}). */
export async function setRoomVisibility(hs: Homeserver, userId: string, roomId: string, visibility: 'public' | 'private'): Promise<void> {
  if (!(await hs.store.rooms.room(roomId))) throw notFound('Room not found');
  if (!(await isRoomAliasAdmin(hs, roomId, userId))) throw forbidden('You may not change the directory visibility of this room');
  await hs.writeLock.run(async () => {
    // Re-read under the lock: the room record also carries extremities that room writes update.
    const room = await hs.store.rooms.room(roomId);
    if (!room) throw notFound('Room not found');
    if ((room.published === 1) === (visibility === 'public')) return;
    const next = { ...room };
    if (visibility === 'public') next.published = 1;
    else delete next.published;
    const b = hs.store.batch();
    b.put('rooms', next);
    await b.commit();
  });
}
