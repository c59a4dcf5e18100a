/**
 * Joining rooms over federation (spec: server-server API, "Joining Rooms"): make_join / send_join v2,
 * both as the joining server and as the resident server.
 */
import { MatrixError, forbidden, notFound } from '../api/errors.ts';
import { authEventTypes, checkAuth } from '../kernel/auth/index.ts';
import { hashAndSignEvent, computeEventId } from '../kernel/events.ts';
import { roomVersion, ROOM_VERSIONS, type RoomVersionRules } from '../kernel/room-versions.ts';
import { refId, stateKey as sk, type JsonObject, type PDU, type StateMap } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import type { StoredEvent } from '../store/records.ts';
import { serverOf } from '../util/ids.ts';
import { FederationError } from './service.ts';
import { kernelPdu, stageStateGroup } from './state.ts';
import { verifyPdu } from './ingest.ts';

/** Room versions we can join (all whose rules we implement with state resolution v2). */
export const JOINABLE_VERSIONS = Object.values(ROOM_VERSIONS).filter((r) => r.stateRes !== 'v1' && !r.eventRefsArePairs).map((r) => r.id);

/** Servers with joined members in a room (ours excluded). */
export async function roomServers(hs: Homeserver, roomId: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const m of await hs.store.rooms.membersOfRoom(roomId, 'join')) out.add(serverOf(m.userId));
  out.delete(hs.serverName);
  return out;
}

/**
 * The whole auth chain of a set of events, loaded from the store (for send_join, /state, /event_auth).
 * `loaded` may hold some of the start events already (they are not read again).
 */
export async function authChainOf(hs: Homeserver, ids: Iterable<string>, loaded?: Map<string, StoredEvent>): Promise<StoredEvent[]> {
  const start = [...new Set(ids)];
  const have = new Map<string, StoredEvent>();
  const toRead: string[] = [];
  for (const id of start) {
    const e = loaded?.get(id);
    if (e) have.set(id, e);
    else toRead.push(id);
  }
  if (toRead.length) for (const [id, e] of await hs.store.rooms.events(toRead)) have.set(id, e);
  const seen = new Set<string>();
  const out: StoredEvent[] = [];
  let frontier: string[] = [];
  const visit = (e: StoredEvent) => {
    for (const a of e.pdu.auth_events ?? []) {
      const id = refId(a);
      if (!seen.has(id)) {
        seen.add(id);
        frontier.push(id);
      }
    }
  };
  for (const e of have.values()) visit(e);
  while (frontier.length) {
    const batch = frontier;
    frontier = [];
    for (const e of (await hs.store.rooms.events(batch)).values()) {
      out.push(e);
      visit(e);
    }
  }
  return out;
}

// --- resident side --------------------------------------------------------------------------------

/** GET make_join: an unsigned join event template built on our current state. */
export async function makeJoin(hs: Homeserver, origin: string, roomId: string, userId: string, versions: string[]): Promise<JsonObject> {
  if (serverOf(userId) !== origin) throw forbidden('The user does not belong to the requesting server');
  const room = await hs.store.rooms.room(roomId);
  if (!room || !(await residentIn(hs, roomId, room.stateGroup))) throw notFound('We are not in that room');
  if (!versions.includes(room.version)) {
    throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${room.version} is not supported by your server`, { room_version: room.version });
  }
  const rules = roomVersion(room.version)!;
  const template = await buildTemplate(hs, room.roomId, rules, userId, 'join', {});
  return { event: template as unknown as JsonObject, room_version: room.version };
}

/** Whether a user of this server is joined in the room's current state (without reading every member). */
async function residentIn(hs: Homeserver, roomId: string, stateGroup: number): Promise<boolean> {
  const state = await hs.ingest.stateOfGroup(stateGroup);
  const suffix = ':' + hs.serverName;
  const ours: string[] = [];
  for (const [k, id] of state) if (k.startsWith('m.room.member\u0000') && k.endsWith(suffix)) ours.push(id);
  if (!ours.length) return false;
  for (const e of (await hs.store.rooms.events(ours)).values()) if (e.pdu.content?.membership === 'join' && e.roomId === roomId) return true;
  return false;
}

/** A membership event template on the current state (make_join / make_leave / make_knock). */
export async function buildTemplate(hs: Homeserver, roomId: string, rules: RoomVersionRules, userId: string, membership: string, extra: JsonObject): Promise<PDU> {
  const room = (await hs.store.rooms.room(roomId))!;
  const state = await hs.store.rooms.stateGroup(room.stateGroup);
  const pdu: PDU = {
    type: 'm.room.member', room_id: roomId, sender: userId, state_key: userId,
    content: { membership, ...extra }, origin_server_ts: hs.clock(), depth: room.maxDepth + 1,
    prev_events: [...room.extremities], auth_events: [],
  };
  const lookups = new Map<string, PDU>();
  const authIds: string[] = [];
  for (const [t, k] of authEventTypes(pdu, rules)) {
    const id = state.get(sk(t, k));
    if (!id) continue;
    authIds.push(id);
    const e = await hs.store.rooms.event(id);
    if (e) lookups.set(sk(t, k), kernelPdu(e));
  }
  pdu.auth_events = authIds;
  if (rules.auth.roomIdFromCreateEvent) {
    const c = await hs.store.rooms.stateEvent(roomId, 'm.room.create', '');
    if (c) lookups.set(sk('m.room.create', ''), kernelPdu(c));
  }
  const verdict = checkAuth({ ...pdu, event_id: '$template' }, (t, k) => lookups.get(sk(t, k)), rules);
  if (!verdict.allowed) throw forbidden(`You cannot ${membership} this room: ${verdict.reason}`);
  return pdu;
}

/** PUT send_join v2: accept the join, then answer with the state before it and its auth chain. */
export async function sendJoin(hs: Homeserver, origin: string, roomId: string, eventId: string, raw: unknown): Promise<JsonObject> {
  const room = await hs.store.rooms.room(roomId);
  if (!room) throw notFound('Unknown room');
  const rules = roomVersion(room.version)!;
  const v = await verifyPdu(raw, rules);
  if (!v.ok) throw new MatrixError(400, 'M_BAD_JSON', `Invalid join event: ${v.error}`);
  if (v.eventId !== eventId) throw new MatrixError(400, 'M_BAD_JSON', 'Event id does not match the event');
  const p = v.pdu;
  if (p.type !== 'm.room.member' || p.content.membership !== 'join' || p.state_key !== p.sender || serverOf(p.sender) !== origin || p.room_id !== roomId) {
    throw new MatrixError(400, 'M_BAD_JSON', 'Not a join event of a user of the requesting server');
  }
  const r = await hs.ingest.receive(origin, roomId, raw);
  if (r.error) throw forbidden(`Join refused: ${r.error}`);
  const stored = await hs.store.rooms.event(eventId);
  if (!stored?.stateBefore || stored.stream === undefined) throw forbidden('Join not accepted');
  // As the resident server, tell the room's other servers about the join.
  await broadcast(hs, roomId, [stored], new Set([origin]));
  const stateIds = [...(await hs.ingest.stateOfGroup(stored.stateBefore)).values()];
  const loaded = await hs.store.rooms.events(stateIds);
  const state = [...loaded.values()];
  loaded.set(eventId, stored);
  const chain = await authChainOf(hs, stateIds.concat(eventId), loaded);
  return {
    origin: hs.serverName,
    state: state.map((e) => e.pdu) as unknown as JsonObject[],
    auth_chain: chain.map((e) => e.pdu) as unknown as JsonObject[],
    event: stored.pdu as unknown as JsonObject,
    members_omitted: false,
  };
}

/** Queue events for the servers of a room (those in `except` excluded), then flush. */
export async function broadcast(hs: Homeserver, roomId: string, events: StoredEvent[], except: Set<string> = new Set(), extra: Iterable<string> = []): Promise<void> {
  if (!hs.federation.enabled) return;
  const servers = await roomServers(hs, roomId);
  for (const s of extra) if (s !== hs.serverName) servers.add(s);
  for (const s of except) servers.delete(s);
  if (!servers.size) return;
  const b = hs.store.batch();
  for (const e of events) hs.federation.enqueue(b, servers, 'pdu', e.pdu as unknown as JsonObject, e.stream ?? b.nextStream());
  await b.commit();
  for (const s of servers) hs.federation.kick(s);
}

// --- joining side -----------------------------------------------------------------------------------

/** Join a room through one of `servers` (make_join, sign, send_join, store the state). Returns the room id. */
export async function joinRemote(hs: Homeserver, userId: string, roomId: string, servers: string[], content: JsonObject): Promise<string> {
  if (!hs.federation.enabled) throw notFound('No known room with that id (this node does not federate)');
  const candidates = [...new Set(servers)].filter((s) => s && s !== hs.serverName);
  if (!candidates.length) throw notFound('No server to join the room through');
  let lastError: unknown;
  for (const server of candidates) {
    try {
      const q = JOINABLE_VERSIONS.map((v) => `ver=${encodeURIComponent(v)}`).join('&');
      const mj = await hs.federation.request<{ event?: PDU; room_version?: string }>(server, 'GET',
        `/_matrix/federation/v1/make_join/${encodeURIComponent(roomId)}/${encodeURIComponent(userId)}?${q}`);
      const version = mj.room_version ?? '1';
      const rules = roomVersion(version);
      if (!rules || !JOINABLE_VERSIONS.includes(version) || !mj.event) throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Cannot join rooms of version ${version}`);
      const t = mj.event;
      if (t.type !== 'm.room.member' || t.state_key !== userId || t.sender !== userId || t.room_id !== roomId) throw new MatrixError(502, 'M_UNKNOWN', 'Bad make_join template');
      const draft: PDU = {
        type: 'm.room.member', room_id: roomId, sender: userId, state_key: userId,
        content: { ...(t.content ?? {}), ...content, membership: 'join' },
        origin_server_ts: hs.clock(), depth: t.depth, prev_events: t.prev_events, auth_events: t.auth_events,
      };
      const signed = await hashAndSignEvent(draft, rules, hs.serverName, hs.signingKey);
      const eventId = computeEventId(signed, rules);
      const sj = await hs.federation.request<{ state?: unknown[]; auth_chain?: unknown[]; event?: unknown }>(server, 'PUT',
        `/_matrix/federation/v2/send_join/${encodeURIComponent(roomId)}/${encodeURIComponent(eventId)}`, signed as unknown as JsonObject, { timeoutMs: 120_000 });
      await persistJoin(hs, roomId, rules, eventId, (sj.event as PDU | undefined) ?? signed, sj.state ?? [], sj.auth_chain ?? []);
      hs.peerDirectory.membershipChanged(roomId);
      return roomId;
    } catch (e) {
      lastError = e;
      if (e instanceof MatrixError && e.status === 400) throw e;
    }
  }
  if (lastError instanceof FederationError) {
    if (lastError.status === 403) throw forbidden(`Cannot join: ${lastError.message}`);
    if (lastError.status === 404) throw notFound(`Cannot join: ${lastError.message}`);
    throw new MatrixError(502, 'M_UNKNOWN', `Cannot join through any server: ${lastError.message}`);
  }
  throw lastError;
}

/** Store the room as send_join described it: state and auth chain as outliers, the join in the timeline. */
async function persistJoin(hs: Homeserver, roomId: string, rules: RoomVersionRules, eventId: string, joinPdu: PDU, state: unknown[], authChain: unknown[]): Promise<void> {
  // Each event is verified once (signature, hash) and checked against its own auth events.
  const { accepted, ids } = await hs.ingest.storeOutliersVerified(roomId, rules, [...authChain, ...state]);
  const stateMap: StateMap = new Map();
  state.forEach((_, i) => {
    const id = ids[authChain.length + i];
    const p = id ? accepted.get(id) : undefined;
    if (id && p && typeof p.state_key === 'string') stateMap.set(sk(p.type, p.state_key), id);
  });
  if (!stateMap.has(sk('m.room.create', ''))) throw new MatrixError(502, 'M_UNKNOWN', 'send_join returned no usable state');
  const jv = await verifyPdu(joinPdu, rules);
  if (!jv.ok || jv.eventId !== eventId) throw new MatrixError(502, 'M_UNKNOWN', 'send_join returned a different join event');
  // The state the resident sent must allow the join (else it is not the room's state before it).
  const stateLookup = (t: string, k: string) => {
    const id = stateMap.get(sk(t, k));
    const p = id ? accepted.get(id) : undefined;
    return p && id ? { ...p, event_id: id } : undefined;
  };
  const allowed = checkAuth({ ...jv.pdu, event_id: eventId }, stateLookup, rules);
  if (!allowed.allowed) throw new MatrixError(502, 'M_UNKNOWN', `send_join returned a state that does not allow the join: ${allowed.reason}`);
  await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    const existingRoom = await hs.store.rooms.room(roomId);
    const before = await stageStateGroup(hs, b, roomId, stateMap);
    const afterState = new Map(stateMap).set(sk('m.room.member', jv.pdu.state_key!), eventId);
    const after = await stageStateGroup(hs, b, roomId, afterState, { id: before, state: stateMap });
    const stream = b.nextStream();
    const prevMember = stateMap.get(sk('m.room.member', jv.pdu.state_key!));
    const stored: StoredEvent = {
      eventId, roomId, pdu: jv.pdu, stream, depth: jv.pdu.depth ?? 0, type: 'm.room.member', sender: jv.pdu.sender,
      stateKey: jv.pdu.state_key, membership: 'join', stateBefore: before, stateAfter: after,
    };
    if (prevMember) {
      const prev = accepted.get(prevMember) ?? (await hs.store.rooms.event(prevMember))?.pdu;
      stored.replacesState = prevMember;
      if (prev) (stored.prevContent = prev.content, (stored.prevSender = prev.sender));
    }
    b.put('events', stored);
    // The room's current state is now what the resident server said (older local state, e.g. from
    // before we left, is replaced).
    b.add({ op: 'deleteRange', store: 'current_state', range: { lower: [roomId], upper: [roomId, []] } });
    const missing = [...afterState.values()].filter((id) => id !== eventId && !accepted.has(id));
    const loaded = missing.length ? await hs.store.rooms.events(missing) : new Map<string, StoredEvent>();
    for (const [k, id] of afterState) {
      const sep = k.indexOf('\u0000');
      const type = k.slice(0, sep);
      const key = k.slice(sep + 1);
      b.put('current_state', { roomId, type, stateKey: key, eventId: id });
      if (type !== 'm.room.member') continue;
      const content = id === eventId ? jv.pdu.content : (accepted.get(id) ?? loaded.get(id)?.pdu)?.content;
      const membership = content?.membership;
      if (typeof membership === 'string') b.put('memberships', { userId: key, roomId, membership, eventId: id, stream });
    }
    b.put('rooms', {
      roomId, version: rules.id, extremities: [eventId], maxDepth: stored.depth, stateGroup: after,
      createdTs: existingRoom?.createdTs ?? hs.clock(), ...(existingRoom?.published ? { published: 1 as const } : {}),
    });
    hs.notifier.notify(await b.commit());
  });
}
