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
import { hasSpaceOrControl, isRoomAlias, randomId, serverOf } from '../util/ids.ts';
import { lookupRemoteAlias } from '../federation/queries.ts';

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
  const since = parseSince(q.since);
  const published = await hs.store.rooms.publishedRooms();
  const entries = (await publicRoomsChunk(hs, published.map((r) => r.roomId))).filter(isListable);
  const kept = await filterEntries(entries, q, (e) => altAliasesOf(hs, e.room_id));
  return paginate(kept, q.limit, since);
}

/** Whether a directory entry is shown: joined members and a join rule (or history visibility) that lets outsiders in. */
function isListable(e: PublicRoomsChunk): boolean {
  return e.num_joined_members > 0 && (LISTED_JOIN_RULES.has(e.join_rule ?? 'public') || e.world_readable);
}

async function altAliasesOf(hs: Homeserver, roomId: string): Promise<string[]> {
  const ca = (await hs.store.rooms.stateEvent(roomId, 'm.room.canonical_alias', ''))?.pdu.content as JsonObject | undefined;
  return Array.isArray(ca?.alt_aliases) ? ca.alt_aliases.filter((x): x is string => typeof x === 'string') : [];
}

/** The entries of a room type and matching the search term (over their fields and `extra` aliases), largest first. */
async function filterEntries<E extends PublicRoomsChunk>(entries: E[], q: PublicRoomsQuery, extra: (e: E) => Promise<string[]> | string[]): Promise<E[]> {
  if (q.roomTypes) {
    const types = q.roomTypes;
    entries = entries.filter((e) => types.includes(e.room_type ?? null));
  }
  if (q.searchTerm) {
    const term = q.searchTerm;
    const kept: E[] = [];
    for (const e of entries) if (matches(e, await extra(e), term)) kept.push(e);
    entries = kept;
  }
  return entries.sort((a, b) => b.num_joined_members - a.num_joined_members || (a.room_id < b.room_id ? -1 : a.room_id > b.room_id ? 1 : 0));
}

/** One page of sorted entries, with `next_batch` / `prev_batch` offset tokens (see `parseSince`). */
function paginate<E extends PublicRoomsChunk>(entries: E[], limitParam: number | undefined, { dir, offset }: { dir: 'f' | 'b'; offset: number }): PublicRoomsResponse & { chunk: E[] } {
  const total = entries.length;
  const limit = limitParam && limitParam > 0 ? limitParam : undefined;
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
  const res: PublicRoomsResponse & { chunk: E[] } = { chunk: entries.slice(start, end), total_room_count_estimate: total };
  if (end < total) res.next_batch = `f${end}`;
  if (start > 0) res.prev_batch = `b${start}`;
  return res;
}

/** A room of the aggregated directory as a client sees it: the spec fields, plus the aliases and the nodes to join through. */
export type AggregatedPublicRoomsChunk = PublicRoomsChunk & { 'org.matrix_p2p.aliases': string[]; 'org.matrix_p2p.servers': string[] };

/** Whether a local user is joined to the room. */
async function hasLocalMember(hs: Homeserver, roomId: string): Promise<boolean> {
  if (!(await hs.store.rooms.room(roomId))) return false;
  return (await hs.store.rooms.membersOfRoom(roomId, 'join')).some((m) => hs.isLocal(m.userId));
}

/**
 * The directory of every active node (issue #7): our published rooms and those other nodes announce
 * (services/peer-directory.ts), one entry per room. A room we publish or a local user is in is
 * described from our own state (name, topic, canonical alias, member count...: what other nodes say
 * of it is not needed, and may be made up); the others as the peer directory merges them. Filtered,
 * ordered and paginated as the local directory (spec: client-server API, "Published room directory":
 * the server chooses the order; largest first, as before v1.19).
 */
export async function aggregatedPublicRooms(hs: Homeserver, q: PublicRoomsQuery = {}): Promise<PublicRoomsResponse> {
  const since = parseSince(q.since);
  const remote = hs.peerDirectory.remoteEntries();
  const published = new Set((await hs.store.rooms.publishedRooms()).map((r) => r.roomId));
  // Rooms other nodes list that a local user is in: our state describes them (and hides them if it makes them unlisted).
  const joined = new Set<string>();
  for (const id of remote.keys()) if (!published.has(id) && (await hasLocalMember(hs, id))) joined.add(id);
  const ours = [...published, ...joined];
  const merged = new Map<string, AggregatedPublicRoomsChunk>();
  const localAlt = new Map<string, string[]>();
  for (const e of (await publicRoomsChunk(hs, ours)).filter(isListable)) {
    const isPublished = published.has(e.room_id);
    const [aliases, local, alt] = await Promise.all([
      isPublished ? hs.store.rooms.aliasesOfRoom(e.room_id) : [], hasLocalMember(hs, e.room_id), altAliasesOf(hs, e.room_id),
    ]);
    const r = remote.get(e.room_id);
    const entry: AggregatedPublicRoomsChunk = {
      ...e,
      'org.matrix_p2p.aliases': [...new Set([...aliases.map((a) => a.alias).sort(), ...(r?.aliases ?? [])])],
      'org.matrix_p2p.servers': [...new Set([...(local ? [hs.serverName] : []), ...(r?.servers ?? [])])],
    };
    merged.set(e.room_id, entry);
    localAlt.set(e.room_id, alt);
  }
  for (const r of remote.values()) {
    if (merged.has(r.room_id) || joined.has(r.room_id)) continue;
    const { aliases, servers, ...chunk } = r;
    const entry: AggregatedPublicRoomsChunk = { ...chunk, 'org.matrix_p2p.aliases': aliases, 'org.matrix_p2p.servers': servers };
    if (isListable(entry)) merged.set(r.room_id, entry);
  }
  const kept = await filterEntries([...merged.values()], q, (e) => [...e['org.matrix_p2p.aliases'], ...(localAlt.get(e.room_id) ?? [])]);
  return paginate(kept, q.limit, since);
}

/** A room alias: `#localpart:server`, at most 255 characters, no whitespace or control characters (400 M_INVALID_PARAM otherwise). */
export function checkAliasSyntax(alias: string): void {
  if (!isRoomAlias(alias) || hasSpaceOrControl(alias)) throw invalidParam('Room alias invalid');
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
  hs.peerDirectory.localDirectoryChanged();
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
    // The auto alias deleted by a user: auto-publishing never makes one again for the room.
    const auto = await hs.store.getMeta<AutoPublished>(autoKey(cur.roomId));
    if (auto?.alias === alias) {
      const { alias: _gone, ...rest } = auto;
      putAuto(b, cur.roomId, auto, { ...rest, noAlias: true });
    }
    await b.commit();
  });
  hs.peerDirectory.localDirectoryChanged();
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
    const b = hs.store.batch();
    if ((room.published === 1) !== (visibility === 'public')) {
      const next = { ...room };
      if (visibility === 'public') next.published = 1;
      else delete next.published;
      b.put('rooms', next);
    }
    // A user's choice stands: unlisting opts the room out of auto-listing for good (even if it was not
    // listed yet); listing makes the listing the user's (it stays when our last user leaves).
    const auto = await hs.store.getMeta<AutoPublished>(autoKey(roomId));
    const { listed: _l, noListing: _n, ...rest } = auto ?? {};
    putAuto(b, roomId, auto, visibility === 'private' ? { ...rest, noListing: true } : rest);
    if (b.ops.length) await b.commit();
  });
  hs.peerDirectory.localDirectoryChanged();
}

// --- aliases through the peers (issue #7) --------------------------------------------------------------

/**
 * Resolve another server's alias: ask that server (`GET /query/directory`); when it cannot be reached
 * (502), answer from the aggregated directory of the nodes (services/peer-directory.ts) if a room
 * there carries the alias. A 404 from the alias's server is final: it is the authority on its aliases.
 */
export async function resolveRemoteAlias(hs: Homeserver, alias: string): Promise<{ room_id: string; servers: string[] }> {
  try {
    return await lookupRemoteAlias(hs, alias);
  } catch (e) {
    if (e instanceof MatrixError && e.status === 502) {
      const found = hs.peerDirectory.resolveAlias(alias);
      if (found) return found;
    }
    throw e;
  }
}

// --- auto-publishing (issue #7) -------------------------------------------------------------------------

/**
 * What auto-publishing knows of a room (kept in `meta`, one record per room): what it added, so it can
 * be undone; the user's opt-outs, so it never redoes what a user undid; whether a local user was
 * joined when it last looked, so it acts on changes of that only (a display name change is no join).
 */
interface AutoPublished {
  /** Some local user was joined at the last reconciliation. */
  joined?: boolean;
  /** The alias we created. */
  alias?: string;
  /** Whether we set the room's directory visibility to public. */
  listed?: boolean;
  /** A user set the room's visibility to private: never list it. */
  noListing?: boolean;
  /** A user deleted the auto alias: never make one. */
  noAlias?: boolean;
}
const autoKey = (roomId: string) => `directory_auto:${roomId}`;

/** Stage the auto-publishing record of a room going from `cur` to `next` (deleted when empty; nothing when unchanged). */
function putAuto(b: ReturnType<Homeserver['store']['batch']>, roomId: string, cur: AutoPublished | undefined, next: AutoPublished): void {
  const clean = Object.fromEntries(Object.entries(next).filter(([, v]) => v !== undefined && v !== false)) as AutoPublished;
  if (JSON.stringify(clean) === JSON.stringify(cur ?? {})) return;
  if (Object.keys(clean).length) b.put('meta', { key: autoKey(roomId), value: clean });
  else if (cur) b.delete('meta', autoKey(roomId));
}

export interface ReconcileResult {
  /** An alias or the listing was added or removed, or the room entered or left our announcement. */
  changed: boolean;
  /** Our users are in the public room but nobody lists it yet: try again when a node does. */
  waiting: boolean;
  /** The room is in our published directory and we are in it. */
  listed: boolean;
}

/**
 * Auto-publishing of a room after a local membership change (issue #7). It acts when local
 * joined-ness changes (some local user joined ⇄ none), or with `listed` when a room it was waiting
 * for got listed: when a local user joins a room whose join rule is `public` and that is listed (in
 * our directory, or by another node), the room gets a local alias `#<name>:<us>` and a place in our
 * published directory, so it can be found and joined through us; when our last user leaves, what was
 * added here is removed (a listing or alias a user made stays). What a user undid (unlisting the room,
 * deleting the auto alias) is never redone for that room. The spec leaves directory policy to servers
 * (client-server API, "Published room directory": servers MAY apply additional filters; aliases: "Room aliases").
 */
export async function reconcileAutoPublish(
  hs: Homeserver, roomId: string, listedByPeers: (roomId: string) => boolean, opts: { listed?: boolean } = {},
): Promise<ReconcileResult> {
  const none: ReconcileResult = { changed: false, waiting: false, listed: false };
  if (!(await hs.store.rooms.room(roomId))) return none;
  const locals = (await hs.store.rooms.membersOfRoom(roomId, 'join')).filter((m) => hs.isLocal(m.userId));
  const joined = locals.length > 0;
  const known = await hs.store.getMeta<AutoPublished>(autoKey(roomId));
  // (Records written before `joined` was kept exist only while a local user was joined.)
  const wasJoined = known?.joined ?? !!(known?.alias || known?.listed);
  if (joined === wasJoined && !(joined && opts.listed)) return none;

  if (!joined) {
    return hs.writeLock.run(async () => {
      const auto = (await hs.store.getMeta<AutoPublished>(autoKey(roomId))) ?? {};
      const cur = await hs.store.rooms.room(roomId);
      const b = hs.store.batch();
      if (auto.alias && (await hs.store.rooms.alias(auto.alias))?.roomId === roomId) b.delete('aliases', auto.alias);
      if (auto.listed && cur?.published === 1) {
        const next = { ...cur };
        delete next.published;
        b.put('rooms', next);
      }
      // The opt-outs stay: they are the room's, not the membership's.
      putAuto(b, roomId, auto, { noListing: auto.noListing, noAlias: auto.noAlias });
      const changed = b.ops.some((o) => o.store !== 'meta') || cur?.published === 1;
      if (b.ops.length) await b.commit();
      return { ...none, changed };
    });
  }

  const jr = (await hs.store.rooms.stateEvent(roomId, 'm.room.join_rules', ''))?.pdu.content as JsonObject | undefined;
  const publicRoom = jr?.join_rule === 'public';
  const base = publicRoom ? await autoAliasName(hs, roomId) : '';
  return hs.writeLock.run(async () => {
    // Re-read under the lock: the room record also carries extremities that room writes update, and a
    // user may have opted out meanwhile.
    const cur = await hs.store.rooms.room(roomId);
    if (!cur) return none;
    const auto: AutoPublished = { ...((await hs.store.getMeta<AutoPublished>(autoKey(roomId))) ?? {}) };
    const before = { ...auto };
    auto.joined = true;
    const b = hs.store.batch();
    const result = { ...none, changed: cur.published === 1 };
    if (publicRoom && cur.published !== 1 && !listedByPeers(roomId)) result.waiting = !auto.noListing || !auto.noAlias;
    else if (publicRoom) {
      if (!auto.noAlias && !(await hs.store.rooms.aliasesOfRoom(roomId)).some((a) => hs.isLocal(a.alias))) {
        const alias = await uniqueAlias(hs, base, roomId);
        b.put('aliases', { alias, roomId, creator: locals[0].userId, servers: [hs.serverName] } satisfies AliasRecord);
        auto.alias = alias;
        result.changed = true;
      }
      if (!auto.noListing && cur.published !== 1) {
        b.put('rooms', { ...cur, published: 1 });
        auto.listed = true;
        result.changed = true;
      }
      result.listed = cur.published === 1 || auto.listed === true;
    }
    putAuto(b, roomId, before, auto);
    if (b.ops.length) await b.commit();
    return result;
  });
}

/** A slug for an alias localpart: lower case letters, digits and `.`, `_`, `=`, `-`. */
function slug(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9._=-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 64)
    .replace(/[-.]+$/g, '');
}

/** The localpart of a room's auto alias: its canonical alias's, else a slug of its name, else from its id. */
export async function autoAliasName(hs: Homeserver, roomId: string): Promise<string> {
  const content = async (type: string) => (await hs.store.rooms.stateEvent(roomId, type, ''))?.pdu.content as JsonObject | undefined;
  const canonical = str((await content('m.room.canonical_alias'))?.alias);
  if (canonical && isRoomAlias(canonical)) {
    const local = canonical.slice(1, canonical.indexOf(':'));
    if (local.length <= 100 && !hasSpaceOrControl(local)) return local;
  }
  const name = slug(str((await content('m.room.name'))?.name) ?? '');
  if (name) return name;
  return `room-${slug(roomId.slice(1).split(':')[0]).slice(0, 12) || 'x'}`;
}

/** `#base:us`, or `#base-2:us`, `#base-3:us`... : the first not taken by another room. */
async function uniqueAlias(hs: Homeserver, base: string, roomId: string): Promise<string> {
  for (let n = 1; n < 1000; n++) {
    const alias = `#${n === 1 ? base : `${base}-${n}`}:${hs.serverName}`;
    const rec = await hs.store.rooms.alias(alias);
    if (!rec || rec.roomId === roomId) return alias;
  }
  return `#${base}-${randomId(6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}:${hs.serverName}`;
}
