/**
 * Room history over federation (spec: server-server API, "Backfilling and retrieving missing events",
 * "Retrieving events", "Retrieving event authorisation information"), both sides:
 *  - serving `/event`, `/state`, `/state_ids`, `/event_auth`, `/get_missing_events` and `/backfill` to
 *    servers in the room, with history visibility applied (events a server may not see are served
 *    redacted, as Synapse does);
 *  - backfilling: when a client paginates past the first event this server has of a room it joined
 *    over federation, fetching the earlier events from a server in the room, checking them (signature,
 *    hash, auth events, state before them) and storing them at negative stream positions, below
 *    everything else, so they sort first in the room's timeline and never show in /sync (which only
 *    reads forward from a non-negative position).
 */
import { forbidden, notFound } from '../api/errors.ts';
import { authEventTypes, checkAuth, checkAuthEventsList } from '../kernel/auth/index.ts';
import { roomIdFromCreateEventId } from '../kernel/events.ts';
import { redactEvent } from '../kernel/redaction.ts';
import { roomVersion, type RoomVersionRules } from '../kernel/room-versions.ts';
import { refId, stateKey as sk, type JsonObject, type PDU, type StateMap } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import { derivedEventFields, type StoredEvent } from '../store/records.ts';
import { serverOf } from '../util/ids.ts';
import { verifyPdu } from './ingest.ts';
import { authChainOf, roomServers } from './join.ts';
import { kernelPdu, recordReplacedState, resolveStates, stageStateGroup } from './state.ts';

/** Most events one `/backfill` or `/get_missing_events` answer holds. */
export const MAX_HISTORY_EVENTS = 100;

/** The event as other servers see it: the stored federation PDU without our local `unsigned` additions. */
export function federationPdu(e: StoredEvent): PDU {
  const { unsigned: _u, ...rest } = e.pdu;
  return rest as PDU;
}

// --- who may read what --------------------------------------------------------------------------------

/** Whether any user of `server` has one of `memberships` in a state. */
async function serverHasMember(hs: Homeserver, state: StateMap, server: string, memberships: readonly string[]): Promise<boolean> {
  const ids: string[] = [];
  const suffix = ':' + server;
  for (const [k, id] of state) if (k.startsWith('m.room.member\u0000') && k.endsWith(suffix)) ids.push(id);
  if (!ids.length) return false;
  for (const e of (await hs.store.rooms.events(ids)).values()) if (e.membership && memberships.includes(e.membership)) return true;
  return false;
}

/**
 * Whether `origin` is in the room: a user of it is joined now, or was joined at one of `at` (lenient:
 * a server that left may still fill the gaps of the time it was in the room).
 */
export async function serverInRoom(hs: Homeserver, origin: string, roomId: string, at: StoredEvent[] = []): Promise<boolean> {
  for (const m of await hs.store.rooms.membersOfRoom(roomId, 'join')) if (serverOf(m.userId) === origin) return true;
  const groups = new Set<number>();
  for (const e of at.slice(0, 20)) {
    if (e.stateAfter) groups.add(e.stateAfter);
    if (e.stateBefore) groups.add(e.stateBefore);
  }
  for (const g of groups) if (await serverHasMember(hs, await hs.store.rooms.stateGroup(g), origin, ['join'])) return true;
  return false;
}

async function requireServerInRoom(hs: Homeserver, origin: string, roomId: string, at: StoredEvent[] = []): Promise<void> {
  if (!(await serverInRoom(hs, origin, roomId, at))) throw forbidden('Your server is not in this room');
}

/**
 * History visibility for a server (spec: client-server API, "History visibility", applied per server
 * as Synapse does): `shared` and `world_readable` events go out whole; `invited` / `joined` ones only to
 * servers with an invited or joined user at the event; the rest redacted.
 */
class ServerVisibility {
  private byGroup = new Map<number, boolean>();
  constructor(private readonly hs: Homeserver, private readonly origin: string, private readonly rules: RoomVersionRules) {}

  async visible(e: StoredEvent): Promise<boolean> {
    const group = e.stateBefore ?? e.stateAfter;
    if (group === undefined) return true;
    let ok = this.byGroup.get(group);
    if (ok === undefined) {
      const state = await this.hs.store.rooms.stateGroup(group);
      const hvId = state.get(sk('m.room.history_visibility', ''));
      const hv = hvId ? (await this.hs.store.rooms.event(hvId))?.pdu.content.history_visibility : undefined;
      if (hv === undefined || hv === 'shared' || hv === 'world_readable' || typeof hv !== 'string') ok = true;
      else if (hv === 'invited') ok = await serverHasMember(this.hs, state, this.origin, ['invite', 'join']);
      else ok = await serverHasMember(this.hs, state, this.origin, ['join']);
      this.byGroup.set(group, ok);
    }
    return ok;
  }

  async serve(e: StoredEvent): Promise<PDU> {
    const pdu = federationPdu(e);
    return (await this.visible(e)) ? pdu : redactEvent(pdu, this.rules);
  }
}

async function roomRules(hs: Homeserver, roomId: string): Promise<RoomVersionRules> {
  const room = await hs.store.rooms.room(roomId);
  const rules = room && roomVersion(room.version);
  if (!rules) throw notFound('Unknown room');
  return rules;
}

/** An event of the room (not rejected), or 404. */
async function eventInRoom(hs: Homeserver, roomId: string, eventId: string): Promise<StoredEvent> {
  const e = await hs.store.rooms.event(eventId);
  if (!e || e.roomId !== roomId || e.rejected) throw notFound('Unknown event');
  return e;
}

// --- serving ----------------------------------------------------------------------------------------------

/** GET /event/{eventId}. */
export async function serveEvent(hs: Homeserver, origin: string, eventId: string): Promise<JsonObject> {
  const e = await hs.store.rooms.event(eventId);
  if (!e || e.rejected) throw notFound('Unknown event');
  const rules = await roomRules(hs, e.roomId);
  await requireServerInRoom(hs, origin, e.roomId, [e]);
  const pdu = await new ServerVisibility(hs, origin, rules).serve(e);
  return { origin: hs.serverName, origin_server_ts: hs.clock(), pdus: [pdu as unknown as JsonObject] };
}

/** The state before an event (its `stateBefore` group; empty before the create event). */
async function stateBeforeEvent(hs: Homeserver, e: StoredEvent): Promise<StateMap> {
  if (e.stateBefore !== undefined) return hs.store.rooms.stateGroup(e.stateBefore);
  if (e.type === 'm.room.create' && e.stateKey === '') return new Map();
  throw notFound('The state at that event is not known here');
}

/** GET /state/{roomId}?event_id= and /state_ids: the state before the event and its auth chain. */
export async function serveState(hs: Homeserver, origin: string, roomId: string, eventId: string, idsOnly: boolean): Promise<JsonObject> {
  await roomRules(hs, roomId);
  const e = await eventInRoom(hs, roomId, eventId);
  await requireServerInRoom(hs, origin, roomId, [e]);
  const stateIds = [...(await stateBeforeEvent(hs, e)).values()];
  const chain = (await authChainOf(hs, stateIds)).filter((a) => !a.rejected);
  if (idsOnly) return { pdu_ids: stateIds, auth_chain_ids: chain.map((a) => a.eventId) };
  const state = await hs.store.rooms.events(stateIds);
  return {
    pdus: stateIds.map((id) => state.get(id)).filter((s): s is StoredEvent => !!s).map((s) => federationPdu(s)) as unknown as JsonObject[],
    auth_chain: chain.map((a) => federationPdu(a)) as unknown as JsonObject[],
  };
}

/** GET /event_auth/{roomId}/{eventId}: the event's whole auth chain. */
export async function serveEventAuth(hs: Homeserver, origin: string, roomId: string, eventId: string): Promise<JsonObject> {
  await roomRules(hs, roomId);
  const e = await hs.store.rooms.event(eventId);
  if (!e || e.roomId !== roomId) throw notFound('Unknown event');
  await requireServerInRoom(hs, origin, roomId, [e]);
  const chain = await authChainOf(hs, [eventId]);
  return { auth_chain: chain.map((a) => federationPdu(a)) as unknown as JsonObject[] };
}

export interface MissingEventsRequest {
  earliest_events: string[];
  latest_events: string[];
  limit?: number;
  min_depth?: number;
}

/** POST /get_missing_events/{roomId}: a breadth-first walk back from `latest_events`, oldest first. */
export async function serveMissingEvents(hs: Homeserver, origin: string, roomId: string, req: MissingEventsRequest): Promise<JsonObject> {
  const rules = await roomRules(hs, roomId);
  const limit = Math.max(0, Math.min(req.limit ?? 10, MAX_HISTORY_EVENTS));
  const minDepth = req.min_depth ?? 0;
  const latest = [...(await hs.store.rooms.events(req.latest_events.slice(0, 20))).values()].filter((e) => e.roomId === roomId && !e.rejected);
  await requireServerInRoom(hs, origin, roomId, latest);
  const seen = new Set<string>([...req.earliest_events, ...req.latest_events]);
  const out: StoredEvent[] = [];
  let frontier: string[] = [];
  const push = (e: StoredEvent) => {
    for (const r of e.pdu.prev_events ?? []) {
      const id = refId(r);
      if (!seen.has(id)) (seen.add(id), frontier.push(id));
    }
  };
  latest.forEach(push);
  while (frontier.length && out.length < limit) {
    const ids = frontier;
    frontier = [];
    const loaded = await hs.store.rooms.events(ids);
    for (const id of ids) {
      const e = loaded.get(id);
      if (!e || e.roomId !== roomId || e.rejected || e.depth < minDepth) continue;
      out.push(e);
      if (out.length >= limit) break;
      push(e);
    }
  }
  out.sort((a, b) => a.depth - b.depth);
  const vis = new ServerVisibility(hs, origin, rules);
  const events: PDU[] = [];
  for (const e of out) events.push(await vis.serve(e));
  return { events: events as unknown as JsonObject[] };
}

/** GET /backfill/{roomId}?v=&limit=: the `v` events and those before them, newest first. */
export async function serveBackfill(hs: Homeserver, origin: string, roomId: string, v: string[], limitIn: number): Promise<JsonObject> {
  const rules = await roomRules(hs, roomId);
  const limit = Math.max(0, Math.min(limitIn, MAX_HISTORY_EVENTS));
  const starts = [...(await hs.store.rooms.events(v.slice(0, 20))).values()].filter((e) => e.roomId === roomId && !e.rejected);
  await requireServerInRoom(hs, origin, roomId, starts);
  const seen = new Set<string>(starts.map((e) => e.eventId));
  const queue: StoredEvent[] = [...starts];
  const out: StoredEvent[] = [];
  // Breadth first by depth: always take the deepest event not yet taken.
  while (queue.length && out.length < limit) {
    let best = 0;
    for (let i = 1; i < queue.length; i++) if (queue[i].depth > queue[best].depth) best = i;
    const e = queue.splice(best, 1)[0];
    out.push(e);
    const prevIds = (e.pdu.prev_events ?? []).map(refId).filter((id) => !seen.has(id));
    prevIds.forEach((id) => seen.add(id));
    for (const p of (await hs.store.rooms.events(prevIds)).values()) if (p.roomId === roomId && !p.rejected) queue.push(p);
  }
  const vis = new ServerVisibility(hs, origin, rules);
  const pdus: PDU[] = [];
  for (const e of out) pdus.push(await vis.serve(e));
  return { origin: hs.serverName, origin_server_ts: hs.clock(), pdus: pdus as unknown as JsonObject[] };
}

// --- backfilling ------------------------------------------------------------------------------------------

const META_BACKFILL_STREAM = 'backfill_stream';
const inFlight = new WeakMap<Homeserver, Map<string, Promise<number>>>();

/**
 * Fetch the history before the earliest event this server has of a room, from a server in the room.
 * Returns how many events were added to the timeline (0 when there is nothing earlier to fetch, no
 * server answers, or this node does not federate). Concurrent calls for one room share the work.
 */
export function backfillRoom(hs: Homeserver, roomId: string, limit: number): Promise<number> {
  if (!hs.federation.enabled) return Promise.resolve(0);
  let rooms = inFlight.get(hs);
  if (!rooms) inFlight.set(hs, (rooms = new Map()));
  const running = rooms.get(roomId);
  if (running) return running;
  const p = doBackfill(hs, roomId, limit)
    .catch((e) => {
      hs.log(e);
      return 0;
    })
    .finally(() => rooms!.delete(roomId));
  rooms.set(roomId, p);
  return p;
}

/** The events the room's earliest timeline events point at but this server does not have in its timeline. */
async function backwardExtremities(hs: Homeserver, roomId: string): Promise<{ ids: string[]; earliest: StoredEvent[] }> {
  const earliest = await hs.store.rooms.timeline(roomId, { dir: 'f', limit: 20 });
  const prevIds = new Set<string>();
  for (const e of earliest) for (const r of e.pdu.prev_events ?? []) prevIds.add(refId(r));
  const known = await hs.store.rooms.events([...prevIds]);
  const ids = [...prevIds].filter((id) => {
    const k = known.get(id);
    return !k || (k.stream === undefined && !k.rejected && !k.softFailed);
  });
  return { ids: ids.slice(0, 20), earliest };
}

/** Servers to ask: the senders' servers of our earliest events first, then the room's other servers. */
async function backfillServers(hs: Homeserver, roomId: string, earliest: StoredEvent[]): Promise<string[]> {
  const inRoom = await roomServers(hs, roomId);
  const out: string[] = [];
  for (const e of earliest) {
    const s = serverOf(e.sender);
    if (inRoom.has(s) && !out.includes(s)) out.push(s);
  }
  for (const s of inRoom) if (!out.includes(s)) out.push(s);
  return out.slice(0, 5);
}

interface Candidate {
  eventId: string;
  pdu: PDU;
}

async function doBackfill(hs: Homeserver, roomId: string, limit: number): Promise<number> {
  const room = await hs.store.rooms.room(roomId);
  const rules = room && roomVersion(room.version);
  if (!room || !rules) return 0;
  const { ids, earliest } = await backwardExtremities(hs, roomId);
  if (!ids.length) return 0;
  const want = Math.max(10, Math.min(limit + ids.length, MAX_HISTORY_EVENTS));
  for (const server of await backfillServers(hs, roomId, earliest)) {
    let pdus: unknown[];
    try {
      const q = ids.map((id) => `v=${encodeURIComponent(id)}`).join('&');
      const r = await hs.federation.request<{ pdus?: unknown }>(server, 'GET', `/_matrix/federation/v1/backfill/${encodeURIComponent(roomId)}?${q}&limit=${want}`);
      pdus = Array.isArray(r.pdus) ? r.pdus.slice(0, MAX_HISTORY_EVENTS * 2) : [];
    } catch (e) {
      hs.log(e);
      continue;
    }
    const added = await storeBackfilled(hs, server, roomId, rules, pdus);
    if (added > 0) return added;
  }
  return 0;
}

/** Check and store backfilled events; returns how many entered the timeline. */
async function storeBackfilled(hs: Homeserver, server: string, roomId: string, rules: RoomVersionRules, raws: unknown[]): Promise<number> {
  // 1–3: format, signature, hash; the room; not already in the timeline.
  const byId = new Map<string, Candidate>();
  for (const raw of raws) {
    const v = await verifyPdu(raw, rules);
    if (!v.ok) continue;
    const isCreate = v.pdu.type === 'm.room.create' && v.pdu.state_key === '';
    const inRoom = v.pdu.room_id === roomId || (isCreate && rules.auth.roomIdFromCreateEvent && v.pdu.room_id === undefined && roomIdFromCreateEventId(v.eventId) === roomId);
    if (inRoom) byId.set(v.eventId, { eventId: v.eventId, pdu: v.pdu });
  }
  const existing = await hs.store.rooms.events([...byId.keys()]);
  const candidates = [...byId.values()]
    .filter((c) => {
      const e = existing.get(c.eventId);
      return !e || (e.stream === undefined && !e.rejected && !e.softFailed);
    })
    .sort((a, b) => (a.pdu.depth ?? 0) - (b.pdu.depth ?? 0) || (a.pdu.origin_server_ts ?? 0) - (b.pdu.origin_server_ts ?? 0));
  if (!candidates.length) return 0;
  const inBatch = new Set(candidates.map((c) => c.eventId));

  // Auth events we lack: fetch the auth chain of the events that need them (stored as outliers).
  for (const c of candidates) {
    const authIds = (c.pdu.auth_events ?? []).map(refId).filter((id) => !inBatch.has(id));
    const known = await hs.store.rooms.events(authIds);
    if (authIds.every((id) => known.has(id))) continue;
    try {
      const r = await hs.federation.request<{ auth_chain?: unknown }>(server, 'GET', `/_matrix/federation/v1/event_auth/${encodeURIComponent(roomId)}/${encodeURIComponent(c.eventId)}`);
      if (Array.isArray(r.auth_chain)) await hs.ingest.storeOutliers(roomId, rules, r.auth_chain);
    } catch (e) {
      hs.log(e);
    }
  }

  // The state before the events at the edge of what we have (prev events neither here nor stored with state).
  const edgeStates = new Map<string, StateMap>();
  for (const c of candidates) {
    const prevIds = (c.pdu.prev_events ?? []).map(refId);
    const prevs = await hs.store.rooms.events(prevIds.filter((id) => !inBatch.has(id)));
    const gap = prevIds.some((id) => !inBatch.has(id) && !prevs.get(id)?.stateAfter);
    if (!gap) continue;
    const state = await fetchStateBefore(hs, server, roomId, rules, c.eventId);
    if (state) edgeStates.set(c.eventId, state);
  }

  // Check and store, oldest first, at positions below everything stored so far.
  return hs.writeLock.run(async () => {
    const top = (await hs.store.getMeta<number>(META_BACKFILL_STREAM)) ?? 0;
    const base = top - candidates.length;
    await hs.store.putMeta(META_BACKFILL_STREAM, base);
    let added = 0;
    for (let i = 0; i < candidates.length; i++) {
      if (await storeOne(hs, roomId, rules, candidates[i], base + i, edgeStates.get(candidates[i].eventId))) added++;
    }
    return added;
  });
}

/** The state before an event, from `server` (`/state_ids`, then `/state` for what we lack). */
async function fetchStateBefore(hs: Homeserver, server: string, roomId: string, rules: RoomVersionRules, eventId: string): Promise<StateMap | undefined> {
  const path = (what: string) => `/_matrix/federation/v1/${what}/${encodeURIComponent(roomId)}?event_id=${encodeURIComponent(eventId)}`;
  try {
    const ids = await hs.federation.request<{ pdu_ids?: unknown }>(server, 'GET', path('state_ids'));
    const pduIds = Array.isArray(ids.pdu_ids) ? ids.pdu_ids.filter((x): x is string => typeof x === 'string') : [];
    let have = await hs.store.rooms.events(pduIds);
    if (pduIds.some((id) => !have.has(id))) {
      const st = await hs.federation.request<{ pdus?: unknown; auth_chain?: unknown }>(server, 'GET', path('state'));
      await hs.ingest.storeOutliers(roomId, rules, [...(Array.isArray(st.auth_chain) ? st.auth_chain : []), ...(Array.isArray(st.pdus) ? st.pdus : [])]);
      have = await hs.store.rooms.events(pduIds);
    }
    const state: StateMap = new Map();
    for (const id of pduIds) {
      const e = have.get(id);
      if (e && !e.rejected && e.stateKey !== undefined && e.roomId === roomId) state.set(sk(e.type, e.stateKey), id);
    }
    return state;
  } catch (e) {
    hs.log(e);
    return undefined;
  }
}

/** The room's create event for auth checks (v12 auth events leave it out). */
async function createEventOf(hs: Homeserver, roomId: string, rules: RoomVersionRules, authPdus: PDU[]): Promise<PDU | undefined> {
  const listed = authPdus.find((p) => p.type === 'm.room.create' && p.state_key === '');
  if (listed) return listed;
  const cur = await hs.store.rooms.stateEvent(roomId, 'm.room.create', '');
  if (cur) return kernelPdu(cur);
  if (rules.auth.roomIdFromCreateEvent) {
    const e = await hs.store.rooms.event('$' + roomId.slice(1));
    return e ? kernelPdu(e) : undefined;
  }
  return undefined;
}

/** Check one backfilled event against its auth events and the state before it, and store it at `stream`. */
async function storeOne(hs: Homeserver, roomId: string, rules: RoomVersionRules, c: Candidate, stream: number, edgeState: StateMap | undefined): Promise<boolean> {
  const { eventId, pdu } = c;
  const withId: PDU = { ...pdu, event_id: eventId };
  const existing = await hs.store.rooms.event(eventId);
  if (existing && (existing.stream !== undefined || existing.rejected)) return false;
  const reject = async (reason: string) => {
    // An event we already accepted as an outlier keeps that standing (other events may rest on it).
    if (existing) return false;
    await hs.store.batch().put('events', {
      eventId, roomId, pdu, depth: pdu.depth ?? 0, type: pdu.type, sender: pdu.sender, stateKey: pdu.state_key, rejected: reason,
    } satisfies StoredEvent).commit();
    return false;
  };

  // Its auth events: known, accepted, allowing it.
  const authIds = (pdu.auth_events ?? []).map(refId);
  const authMap = await hs.store.rooms.events(authIds);
  if (authIds.some((id) => !authMap.has(id))) return false;
  const authEvents = authIds.map((id) => authMap.get(id)!);
  if (authEvents.some((e) => e.rejected)) return reject('an auth event was rejected');
  const authPdus = authEvents.map(kernelPdu);
  const structural = checkAuthEventsList(withId, authPdus, rules);
  if (!structural.allowed) return reject(structural.reason);
  const byKey = new Map<string, PDU>();
  for (const a of authPdus) if (a.state_key !== undefined) byKey.set(sk(a.type, a.state_key), a);
  const create = await createEventOf(hs, roomId, rules, authPdus);
  if (create) byKey.set(sk('m.room.create', ''), create);
  const v1 = checkAuth(withId, (t, k) => byKey.get(sk(t, k)), rules);
  if (!v1.allowed) return reject(v1.reason);

  // The state before it: from its prev events' states, or the state another server gave for it.
  const prevIds = (pdu.prev_events ?? []).map(refId);
  const prevs = await hs.store.rooms.events(prevIds);
  let stateBefore: StateMap;
  let beforeGroup: number | undefined;
  if (edgeState) stateBefore = edgeState;
  else {
    const states: StateMap[] = [];
    const groups: number[] = [];
    for (const id of prevIds) {
      const p = prevs.get(id);
      if (p?.stateAfter && !p.rejected) (states.push(await hs.store.rooms.stateGroup(p.stateAfter)), groups.push(p.stateAfter));
    }
    if (!states.length) {
      if (!(pdu.type === 'm.room.create' && pdu.state_key === '' && prevIds.length === 0)) return false;
      stateBefore = new Map();
    } else {
      stateBefore = await resolveStates(hs.ingest.cache, states, rules);
      if (groups.length === 1) beforeGroup = groups[0];
    }
  }

  // Allowed by the state before it.
  const keys = authEventTypes(withId, rules).concat([['m.room.create', '']]);
  const look = await hs.ingest.cache.load(keys.map(([t, k]) => stateBefore.get(sk(t, k))).filter((x): x is string => !!x), false);
  const v2 = checkAuth(withId, (t, k) => {
    const id = stateBefore.get(sk(t, k));
    return id ? look(id) : undefined;
  }, rules);
  if (!v2.allowed) return reject(v2.reason);

  const b = hs.store.batch();
  if (beforeGroup === undefined) beforeGroup = await stageStateGroup(hs, b, roomId, stateBefore);
  const stored: StoredEvent = {
    ...(existing ?? {}),
    eventId, roomId, pdu: existing?.pdu ?? pdu, stream, depth: pdu.depth ?? 0, type: pdu.type, sender: pdu.sender, stateBefore: beforeGroup,
  };
  let afterGroup = beforeGroup;
  if (pdu.state_key !== undefined) {
    stored.stateKey = pdu.state_key;
    const key = sk(pdu.type, pdu.state_key);
    await recordReplacedState(hs, stored, stateBefore.get(key));
    const after = new Map(stateBefore).set(key, eventId);
    afterGroup = await stageStateGroup(hs, b, roomId, after, { id: beforeGroup, state: stateBefore });
  }
  stored.stateAfter = afterGroup;
  Object.assign(stored, derivedEventFields(pdu));
  b.put('events', stored);
  await b.commit();
  hs.ingest.cache.set(eventId, withId);
  return true;
}

// --- what a client may see of backfilled history ----------------------------------------------------------

/**
 * History visibility of backfilled events for a user (spec: client-server API, "History visibility"),
 * judged on the state before each event: `shared` and `world_readable` history is visible to members;
 * `invited` history from the user's invite on; `joined` history from their join on. A user always sees
 * their own membership events.
 */
export function backfilledVisibility(hs: Homeserver, userId: string): (e: StoredEvent) => Promise<boolean> {
  const byGroup = new Map<number, boolean>();
  return async (e) => {
    if (e.type === 'm.room.member' && e.stateKey === userId) return true;
    const group = e.stateBefore;
    if (group === undefined) return false;
    let ok = byGroup.get(group);
    if (ok === undefined) {
      const state = await hs.store.rooms.stateGroup(group);
      const hvId = state.get(sk('m.room.history_visibility', ''));
      const hv = hvId ? (await hs.store.rooms.event(hvId))?.pdu.content.history_visibility : undefined;
      if (hv === undefined || typeof hv !== 'string' || hv === 'shared' || hv === 'world_readable') ok = true;
      else {
        const memberId = state.get(sk('m.room.member', userId));
        const m = memberId ? (await hs.store.rooms.event(memberId))?.membership : undefined;
        ok = m === 'join' || (hv === 'invited' && m === 'invite');
      }
      byGroup.set(group, ok);
    }
    return ok;
  };
}
