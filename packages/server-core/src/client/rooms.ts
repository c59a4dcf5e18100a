/**
 * Rooms: create, send, state, membership, redaction, history (messages, context, event), members
 * (spec: client-server API, "Rooms", "Room membership", "Room events", "Redactions").
 */
import * as v from 'valibot';
import { endpoint } from '../api/endpoint.ts';
import { MatrixError, forbidden, notFound } from '../api/errors.ts';
import type { JsonObject } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import type { StoredEvent } from '../store/records.ts';
import { toClientEvent, type ClientEvent } from '../services/client-events.ts';
import type { CreateRoomRequest } from '../services/rooms.ts';
import { isRoomId } from '../util/ids.ts';
import { JsonObjectSchema, QueryInt } from './schemas.ts';
import { eventMatchesRoomFilter, parseFilterParam, type RoomEventFilter } from '../services/filters.ts';
import { parsePaginationToken, paginationToken } from '../services/tokens.ts';
import { backfilledVisibility, backfillRoom } from '../federation/backfill.ts';

const CS = 'https://spec.matrix.org/latest/client-server-api';
const ROOM = '/_matrix/client/v3/rooms/:roomId';

const CreateRoomBody = v.looseObject({
  visibility: v.optional(v.picklist(['public', 'private'])),
  room_alias_name: v.optional(v.string()),
  name: v.optional(v.string()),
  topic: v.optional(v.string()),
  invite: v.optional(v.array(v.string())),
  room_version: v.optional(v.string()),
  creation_content: v.optional(JsonObjectSchema),
  initial_state: v.optional(v.array(v.object({ type: v.string(), state_key: v.optional(v.string()), content: JsonObjectSchema }))),
  preset: v.optional(v.picklist(['private_chat', 'public_chat', 'trusted_private_chat'])),
  is_direct: v.optional(v.boolean()),
  power_level_content_override: v.optional(JsonObjectSchema),
  invite_3pid: v.optional(v.array(v.unknown())),
});

const Reason = v.looseObject({ reason: v.optional(v.string()) });
const TargetReason = v.looseObject({ user_id: v.string(), reason: v.optional(v.string()) });

/** Servers to join through: `via` (v1.12) and the older `server_name`. */
function viaOf(query: Record<string, unknown>): string[] {
  const list = (k: string) => (Array.isArray(query[k]) ? (query[k] as string[]) : typeof query[k] === 'string' ? [query[k] as string] : []);
  return [...list('via'), ...list('server_name')];
}

function roomIdParam(id: string): string {
  if (!isRoomId(id)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Not a room id');
  return id;
}

/** The viewer context for client-format events. */
function viewer(hs: Homeserver, user?: { userId: string; deviceId: string }) {
  return { userId: user?.userId, deviceId: user?.deviceId, now: hs.clock() };
}

/** Load an event the user may see, or 404 (spec: GET /rooms/{roomId}/event/{eventId}). */
async function visibleEvent(hs: Homeserver, roomId: string, eventId: string, userId: string): Promise<StoredEvent> {
  const e = await hs.store.rooms.event(eventId);
  const canSee = await hs.rooms.visibility(roomId, userId);
  if (!e || e.roomId !== roomId || !canSee || !canSee(e) || e.rejected) throw notFound('Event not found');
  return e;
}

/** Lazy-loaded members for a chunk of events (spec: "Lazy-loading room members"). */
async function membersFor(hs: Homeserver, roomId: string, events: StoredEvent[], user: { userId: string; deviceId: string }): Promise<ClientEvent[]> {
  const senders = new Set(events.map((e) => e.sender));
  senders.add(user.userId);
  const out: ClientEvent[] = [];
  for (const s of senders) {
    const m = await hs.store.rooms.stateEvent(roomId, 'm.room.member', s);
    if (m) out.push(toClientEvent(m, viewer(hs, user)));
  }
  return out;
}

export const roomEndpoints = [
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/createRoom', auth: 'user', spec: `${CS}/#post_matrixclientv3createroom`, body: CreateRoomBody,
    handler: async ({ hs, user, body }) => ({ room_id: await hs.rooms.createRoom(user.userId, body as CreateRoomRequest) }),
  }),
  endpoint({
    method: 'PUT', path: `${ROOM}/send/:eventType/:txnId`, auth: 'user', spec: `${CS}/#put_matrixclientv3roomsroomidsendeventtypetxnid`,
    body: JsonObjectSchema, maxBodyBytes: 65_536 * 2,
    handler: async ({ hs, user, params, body }) => ({
      event_id: await hs.rooms.send(user.userId, user.deviceId, roomIdParam(params.roomId), params.eventType, body as JsonObject, params.txnId),
    }),
  }),
  endpoint({
    method: 'PUT', path: `${ROOM}/redact/:eventId/:txnId`, auth: 'user', spec: `${CS}/#put_matrixclientv3roomsroomidredacteventidtxnid`, body: Reason,
    handler: async ({ hs, user, params, body }) => {
      const content: JsonObject = { redacts: params.eventId };
      if (body.reason !== undefined) content.reason = body.reason;
      return { event_id: await hs.rooms.send(user.userId, user.deviceId, roomIdParam(params.roomId), 'm.room.redaction', content, params.txnId, `redact:${params.txnId}`) };
    },
  }),
  ...(['state/:eventType', 'state/:eventType/:stateKey'] as const).map((suffix) =>
    endpoint({
      method: 'PUT', path: `${ROOM}/${suffix}`, auth: 'user', spec: `${CS}/#put_matrixclientv3roomsroomidstateeventtypestatekey`,
      body: JsonObjectSchema, maxBodyBytes: 65_536 * 2,
      handler: async ({ hs, user, params, body }) => ({
        event_id: await hs.rooms.setState(user.userId, roomIdParam(params.roomId), params.eventType, params.stateKey ?? '', body as JsonObject),
      }),
    }),
  ),
  ...(['state/:eventType', 'state/:eventType/:stateKey'] as const).map((suffix) =>
    endpoint({
      method: 'GET', path: `${ROOM}/${suffix}`, auth: 'user', spec: `${CS}/#get_matrixclientv3roomsroomidstateeventtypestatekey`,
      query: v.object({ format: v.optional(v.picklist(['content', 'event'])) }),
      handler: async ({ hs, user, params, query }) => {
        const roomId = roomIdParam(params.roomId);
        const m = await hs.store.rooms.membership(roomId, user.userId);
        let e: StoredEvent | undefined;
        if (m?.membership === 'join') e = await hs.store.rooms.stateEvent(roomId, params.eventType, params.stateKey ?? '');
        else if (m && (m.membership === 'leave' || m.membership === 'ban')) {
          const at = await hs.store.rooms.event(m.eventId);
          const state = at?.stateAfter ? await hs.store.rooms.stateGroup(at.stateAfter) : new Map();
          const id = state.get(`${params.eventType}\u0000${params.stateKey ?? ''}`);
          e = id ? await hs.store.rooms.event(id) : undefined;
        } else throw forbidden('You are not in this room');
        if (!e) throw notFound('State event not found');
        return query.format === 'event' ? toClientEvent(e, viewer(hs, user)) : e.pdu.content;
      },
    }),
  ),
  endpoint({
    method: 'GET', path: `${ROOM}/state`, auth: 'user', spec: `${CS}/#get_matrixclientv3roomsroomidstate`,
    handler: async ({ hs, user, params }) => {
      const roomId = roomIdParam(params.roomId);
      const m = await hs.store.rooms.membership(roomId, user.userId);
      if (!m || (m.membership !== 'join' && m.membership !== 'leave' && m.membership !== 'ban')) throw forbidden('You are not in this room');
      let events: StoredEvent[];
      if (m.membership === 'join') events = await hs.store.rooms.currentStateEvents(roomId);
      else {
        const at = await hs.store.rooms.event(m.eventId);
        events = at?.stateAfter ? await hs.store.rooms.loadState(await hs.store.rooms.stateGroup(at.stateAfter)) : [];
      }
      return events.map((e) => toClientEvent(e, viewer(hs, user)));
    },
  }),
  // Membership.
  endpoint({
    method: 'POST', path: `${ROOM}/invite`, auth: 'user', spec: `${CS}/#post_matrixclientv3roomsroomidinvite`, body: TargetReason,
    handler: async ({ hs, user, params, body }) => (await hs.rooms.invite(user.userId, roomIdParam(params.roomId), body.user_id, body.reason), {}),
  }),
  ...(['/_matrix/client/v3/join/:roomIdOrAlias', `${ROOM}/join`] as const).map((path) =>
    endpoint({
      method: 'POST', path, auth: 'user', spec: `${CS}/#post_matrixclientv3joinroomidoralias`, body: Reason, repeatedQuery: ['server_name', 'via'],
      handler: async ({ hs, user, params, body, query }) => ({
        room_id: await hs.rooms.join(user.userId, params.roomIdOrAlias ?? params.roomId, body.reason, viaOf(query)),
      }),
    }),
  ),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/knock/:roomIdOrAlias', auth: 'user', spec: `${CS}/#post_matrixclientv3knockroomidoralias`, body: Reason, repeatedQuery: ['server_name', 'via'],
    handler: async ({ hs, user, params, body, query }) => ({ room_id: await hs.rooms.knock(user.userId, params.roomIdOrAlias, body.reason, viaOf(query)) }),
  }),
  endpoint({
    method: 'POST', path: `${ROOM}/leave`, auth: 'user', spec: `${CS}/#post_matrixclientv3roomsroomidleave`, body: Reason,
    handler: async ({ hs, user, params, body }) => (await hs.rooms.setMembership(user.userId, roomIdParam(params.roomId), user.userId, 'leave', body.reason), {}),
  }),
  endpoint({
    method: 'POST', path: `${ROOM}/forget`, auth: 'user', spec: `${CS}/#post_matrixclientv3roomsroomidforget`,
    handler: async ({ hs, user, params }) => (await hs.rooms.forget(user.userId, roomIdParam(params.roomId)), {}),
  }),
  endpoint({
    method: 'POST', path: `${ROOM}/kick`, auth: 'user', spec: `${CS}/#post_matrixclientv3roomsroomidkick`, body: TargetReason,
    handler: async ({ hs, user, params, body }) => {
      const roomId = roomIdParam(params.roomId);
      const cur = await hs.store.rooms.membership(roomId, body.user_id);
      if (!cur || (cur.membership !== 'join' && cur.membership !== 'invite' && cur.membership !== 'knock')) throw forbidden(`${body.user_id} is not in the room`);
      await hs.rooms.setMembership(user.userId, roomId, body.user_id, 'leave', body.reason);
      return {};
    },
  }),
  endpoint({
    method: 'POST', path: `${ROOM}/ban`, auth: 'user', spec: `${CS}/#post_matrixclientv3roomsroomidban`, body: TargetReason,
    handler: async ({ hs, user, params, body }) => (await hs.rooms.setMembership(user.userId, roomIdParam(params.roomId), body.user_id, 'ban', body.reason), {}),
  }),
  endpoint({
    method: 'POST', path: `${ROOM}/unban`, auth: 'user', spec: `${CS}/#post_matrixclientv3roomsroomidunban`, body: TargetReason,
    handler: async ({ hs, user, params, body }) => (await hs.rooms.setMembership(user.userId, roomIdParam(params.roomId), body.user_id, 'leave', body.reason, 'unban'), {}),
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/joined_rooms', auth: 'user', spec: `${CS}/#get_matrixclientv3joined_rooms`,
    handler: async ({ hs, user }) => ({
      joined_rooms: (await hs.store.rooms.membershipsOfUser(user.userId)).filter((m) => m.membership === 'join').map((m) => m.roomId),
    }),
  }),
  endpoint({
    method: 'GET', path: `${ROOM}/joined_members`, auth: 'user', spec: `${CS}/#get_matrixclientv3roomsroomidjoined_members`,
    handler: async ({ hs, user, params }) => {
      const roomId = roomIdParam(params.roomId);
      await hs.rooms.requireJoined(roomId, user.userId);
      const joined: Record<string, JsonObject> = {};
      for (const e of await hs.store.rooms.currentStateEvents(roomId, 'm.room.member')) {
        if (e.membership !== 'join') continue;
        const c = e.pdu.content as JsonObject;
        joined[e.stateKey!] = { display_name: (c.displayname as string) ?? null, avatar_url: (c.avatar_url as string) ?? null };
      }
      return { joined };
    },
  }),
  endpoint({
    method: 'GET', path: `${ROOM}/members`, auth: 'user', spec: `${CS}/#get_matrixclientv3roomsroomidmembers`,
    query: v.object({ at: v.optional(v.string()), membership: v.optional(v.string()), not_membership: v.optional(v.string()) }),
    handler: async ({ hs, user, params, query }) => {
      const roomId = roomIdParam(params.roomId);
      const m = await hs.store.rooms.membership(roomId, user.userId);
      if (!m || (m.membership !== 'join' && m.membership !== 'leave' && m.membership !== 'ban')) throw forbidden('You are not in this room');
      // Members as of a position (exclusive): now, the user's leave, or the `at` token.
      let before = m.membership === 'join' ? Infinity : m.stream + 1;
      if (query.at) {
        const at = parsePaginationToken(query.at);
        if (at === undefined) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid at token');
        before = Math.min(before, at);
      }
      let events: StoredEvent[];
      if (before > hs.store.stream) events = await hs.store.rooms.currentStateEvents(roomId, 'm.room.member');
      else {
        // State at a point in the timeline: the state after the last event before it.
        const last = (await hs.store.rooms.timeline(roomId, { from: before, dir: 'b', limit: 1 }))[0];
        const group = last?.stateAfter;
        events = group ? await hs.store.rooms.loadState(await hs.store.rooms.stateGroup(group), (t) => t === 'm.room.member') : [];
      }
      const chunk = events
        .filter((e) => (!query.membership || e.membership === query.membership) && (!query.not_membership || e.membership !== query.not_membership))
        .map((e) => toClientEvent(e, viewer(hs, user)));
      return { chunk };
    },
  }),
  // History.
  endpoint({
    method: 'GET', path: `${ROOM}/event/:eventId`, auth: 'user', spec: `${CS}/#get_matrixclientv3roomsroomideventeventid`,
    handler: async ({ hs, user, params }) => toClientEvent(await visibleEvent(hs, roomIdParam(params.roomId), params.eventId, user.userId), viewer(hs, user)),
  }),
  endpoint({
    method: 'GET', path: `${ROOM}/messages`, auth: 'user', spec: `${CS}/#get_matrixclientv3roomsroomidmessages`,
    query: v.object({ from: v.optional(v.string()), to: v.optional(v.string()), dir: v.optional(v.picklist(['b', 'f'])), limit: v.optional(QueryInt(0, 1000)), filter: v.optional(v.string()) }),
    handler: async ({ hs, user, params, query }) => {
      const roomId = roomIdParam(params.roomId);
      const canSee = await hs.rooms.visibility(roomId, user.userId);
      if (!canSee) throw forbidden('You are not allowed to see this room');
      const dir = query.dir ?? 'b';
      const limit = Math.min(query.limit ?? 10, 1000);
      const filter = parseFilterParam(query.filter) as RoomEventFilter;
      const parse = (t: string | undefined) => {
        if (t === undefined) return undefined;
        // Backfilled history sits at negative positions (federation/backfill.ts): `t-<n>`.
        const neg = /^t-(\d{1,15})$/.exec(t);
        const n = neg ? -Number(neg[1]) : parsePaginationToken(t);
        if (n === undefined) throw new MatrixError(400, 'M_INVALID_PARAM', `Invalid pagination token ${t}`);
        return n;
      };
      // Tokens name a position between events: "before stream N+1" = after event N.
      let from = parse(query.from);
      const to = parse(query.to);
      if (from === undefined) from = dir === 'b' ? hs.store.stream + 1 : 0;
      const chunk: StoredEvent[] = [];
      let cursor = dir === 'b' ? from : from - 1;
      let exhausted = false;
      // Past the first event we have of a room joined over federation: fetch earlier history (a few rounds at most).
      let backfills = 0;
      const seesBackfilled = backfilledVisibility(hs, user.userId);
      while (chunk.length < limit) {
        const page = await hs.store.rooms.timeline(roomId, dir === 'b'
          ? { from: cursor, to: to !== undefined ? to - 1 : undefined, dir: 'b', limit: limit * 2 }
          : { from: cursor, to: to !== undefined ? to : undefined, dir: 'f', limit: limit * 2 });
        if (page.length === 0) {
          if (dir === 'b' && to === undefined && backfills < 3 && (await backfillRoom(hs, roomId, limit - chunk.length)) > 0) {
            backfills++;
            continue;
          }
          exhausted = true;
          break;
        }
        for (const e of page) {
          cursor = e.stream!;
          if (e.rejected || !canSee(e) || !eventMatchesRoomFilter(e, filter)) continue;
          if (e.stream! < 0 && !(await seesBackfilled(e))) continue;
          chunk.push(e);
          if (chunk.length >= limit) break;
        }
      }
      const out: JsonObject = {
        start: query.from ?? paginationToken(from),
        chunk: chunk.map((e) => toClientEvent(e, viewer(hs, user))) as unknown as JsonObject[],
      };
      if (!exhausted && chunk.length > 0) out.end = paginationToken(dir === 'b' ? cursor : cursor + 1);
      if (filter.lazy_load_members) out.state = (await membersFor(hs, roomId, chunk, user)) as unknown as JsonObject[];
      return out;
    },
  }),
  endpoint({
    method: 'GET', path: `${ROOM}/context/:eventId`, auth: 'user', spec: `${CS}/#get_matrixclientv3roomsroomidcontexteventid`,
    query: v.object({ limit: v.optional(QueryInt(0, 1000)), filter: v.optional(v.string()) }),
    handler: async ({ hs, user, params, query }) => {
      const roomId = roomIdParam(params.roomId);
      const ev = await visibleEvent(hs, roomId, params.eventId, user.userId);
      const canSee = (await hs.rooms.visibility(roomId, user.userId))!;
      const filter = parseFilterParam(query.filter) as RoomEventFilter;
      const limit = query.limit ?? 10;
      const before = Math.floor(limit / 2);
      const after = limit - before;
      const keep = (e: StoredEvent) => !e.rejected && canSee(e) && eventMatchesRoomFilter(e, filter);
      const b = (await hs.store.rooms.timeline(roomId, { from: ev.stream, dir: 'b', limit: before * 2 + 5 })).filter(keep).slice(0, before);
      const a = (await hs.store.rooms.timeline(roomId, { from: ev.stream, dir: 'f', limit: after * 2 + 5 })).filter(keep).slice(0, after);
      const startStream = b.length ? b[b.length - 1].stream! : ev.stream!;
      const endStream = a.length ? a[a.length - 1].stream! : ev.stream!;
      const stateGroup = ev.stateAfter;
      let state = stateGroup ? await hs.store.rooms.loadState(await hs.store.rooms.stateGroup(stateGroup)) : [];
      if (filter.lazy_load_members) {
        const senders = new Set([...b, ev, ...a].map((e) => e.sender).concat(user.userId));
        state = state.filter((s) => s.type !== 'm.room.member' || senders.has(s.stateKey!));
      }
      return {
        event: toClientEvent(ev, viewer(hs, user)),
        events_before: b.map((e) => toClientEvent(e, viewer(hs, user))),
        events_after: a.map((e) => toClientEvent(e, viewer(hs, user))),
        start: paginationToken(startStream),
        end: paginationToken(endStream + 1),
        state: state.map((e) => toClientEvent(e, viewer(hs, user))),
      };
    },
  }),
  // Typing (spec: "Typing Notifications").
  endpoint({
    method: 'PUT', path: `${ROOM}/typing/:userId`, auth: 'user', spec: `${CS}/#put_matrixclientv3roomsroomidtypinguserid`,
    body: v.looseObject({ typing: v.boolean(), timeout: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))) }),
    handler: async ({ hs, user, params, body }) => {
      if (params.userId !== user.userId) throw forbidden('You can only set your own typing state');
      const roomId = roomIdParam(params.roomId);
      await hs.rooms.requireJoined(roomId, user.userId);
      hs.typing.set(roomId, user.userId, body.typing, body.timeout ?? 30_000);
      return {};
    },
  }),
  // Relations and threads (spec: "Relationships", "Threading").
  ...([':eventId', ':eventId/:relType', ':eventId/:relType/:eventType'] as const).map((suffix) =>
    endpoint({
      method: 'GET', path: `/_matrix/client/v1/rooms/:roomId/relations/${suffix}`, auth: 'user', spec: `${CS}/#get_matrixclientv1roomsroomidrelationseventid`,
      query: v.object({ from: v.optional(v.string()), to: v.optional(v.string()), dir: v.optional(v.picklist(['b', 'f'])), limit: v.optional(QueryInt(0, 1000)), recurse: v.optional(v.string()) }),
      handler: async ({ hs, user, params, query }) => {
        const roomId = roomIdParam(params.roomId);
        await visibleEvent(hs, roomId, params.eventId, user.userId);
        const canSee = (await hs.rooms.visibility(roomId, user.userId))!;
        const dir = query.dir ?? 'b';
        const limit = Math.min(query.limit ?? 50, 1000);
        const from = query.from !== undefined ? parsePaginationToken(query.from) : undefined;
        if (query.from !== undefined && from === undefined) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid from token');
        const rows = (await hs.store.rooms.relations(params.eventId, { dir, from, limit: limit * 3 + 10 }))
          .filter((e) => e.roomId === roomId && canSee(e) && !e.rejected)
          .filter((e) => !params.relType || e.relType === params.relType)
          .filter((e) => !params.eventType || e.type === params.eventType);
        const page = rows.slice(0, limit);
        const out: JsonObject = { chunk: page.map((e) => toClientEvent(e, viewer(hs, user))) as unknown as JsonObject[] };
        if (rows.length > limit) out.next_batch = paginationToken(page[page.length - 1].stream!);
        return out;
      },
    }),
  ),
  endpoint({
    method: 'GET', path: '/_matrix/client/v1/rooms/:roomId/threads', auth: 'user', spec: `${CS}/#get_matrixclientv1roomsroomidthreads`,
    query: v.object({ from: v.optional(v.string()), limit: v.optional(QueryInt(0, 1000)), include: v.optional(v.picklist(['all', 'participated'])) }),
    handler: async ({ hs, user, params, query }) => {
      const roomId = roomIdParam(params.roomId);
      const canSee = await hs.rooms.visibility(roomId, user.userId);
      if (!canSee) throw forbidden('You are not allowed to see this room');
      // Thread roots: events that m.thread relations point at, newest thread activity first.
      const latest = new Map<string, number>();
      const participants = new Map<string, Set<string>>();
      for (const e of await hs.store.rooms.timeline(roomId, { dir: 'b', limit: 5000 })) {
        if (e.relType === 'm.thread' && e.relatesTo && canSee(e)) {
          if (!latest.has(e.relatesTo)) latest.set(e.relatesTo, e.stream!);
          let p = participants.get(e.relatesTo);
          if (!p) participants.set(e.relatesTo, (p = new Set()));
          p.add(e.sender);
        }
      }
      let roots = [...latest].sort((a, b) => b[1] - a[1]).map(([id]) => id);
      const roots2 = await hs.store.rooms.events(roots);
      if (query.include === 'participated') roots = roots.filter((id) => participants.get(id)?.has(user.userId) || roots2.get(id)?.sender === user.userId);
      const start = query.from ? Number(query.from) || 0 : 0;
      const limit = query.limit ?? 50;
      const page = roots.slice(start, start + limit);
      const out: JsonObject = { chunk: page.map((id) => roots2.get(id)).filter((e): e is StoredEvent => !!e && canSee(e)).map((e) => toClientEvent(e, viewer(hs, user))) as unknown as JsonObject[] };
      if (start + limit < roots.length) out.next_batch = String(start + limit);
      return out;
    },
  }),
  endpoint({
    method: 'POST', path: `${ROOM}/upgrade`, auth: 'user', spec: `${CS}/#post_matrixclientv3roomsroomidupgrade`, body: v.looseObject({ new_version: v.string() }),
    handler: () => { throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', 'Room upgrades are not supported yet'); },
  }),
];

