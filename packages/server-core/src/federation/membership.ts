/**
 * Memberships that need another server (spec: server-server API, "Inviting to a room", "Leaving
 * Rooms (Rejecting Invites)", "Knocking upon a room"), both sides:
 *  - inviting a remote user (`PUT /v2/invite`) and receiving such an invite for a local user;
 *  - rejecting an invite / retracting a knock for a room this server is not in (make_leave /
 *    send_leave v2 through a resident server), and serving make_leave / send_leave as the resident;
 *  - knocking on a room this server is not in (make_knock / send_knock), and serving them.
 * A server that is not in the room keeps the membership event as an outlier (no stream position)
 * plus a `memberships` record, so the user's /sync shows the invite, the knock or the leave.
 */
import { MatrixError, forbidden, invalidParam, notFound } from '../api/errors.ts';
import { canonicalJsonBytes } from '../kernel/canonical-json.ts';
import { checkContentHash, computeEventId, hashAndSignEvent, roomIdFromCreateEventId, verifyEventSignature } from '../kernel/events.ts';
import { redactEvent } from '../kernel/redaction.ts';
import { DEFAULT_ROOM_VERSION, roomVersion, type RoomVersionRules } from '../kernel/room-versions.ts';
import { signatureOf } from '../kernel/signing.ts';
import type { JsonObject, PDU } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import type { StoredEvent } from '../store/records.ts';
import { isUserId, serverOf } from '../util/ids.ts';
import { federationPdu } from './backfill.ts';
import { verifyPdu } from './ingest.ts';
import { broadcast, buildTemplate, JOINABLE_VERSIONS } from './join.ts';
import { FederationError } from './service.ts';
import { publicKeyOfServer } from './x-matrix.ts';

/** The state types sent along with invites and knocks (spec: client-server API, "Stripped state"). */
const ROOM_STATE_TYPES = ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.canonical_alias', 'm.room.encryption', 'm.room.topic'];

/** Room versions we can knock on (knocking came with v7). */
const KNOCKABLE_VERSIONS = JOINABLE_VERSIONS.filter((v) => roomVersion(v)!.auth.knocking);

const enc = encodeURIComponent;

// --- helpers --------------------------------------------------------------------------------------

/** The event without what signatures do not cover, for comparing two copies of one event. */
function unsignedless(p: PDU): PDU {
  const { signatures: _s, unsigned: _u, ...rest } = p;
  return rest as PDU;
}

function sameEvent(a: PDU, b: PDU): boolean {
  try {
    const x = canonicalJsonBytes(unsignedless(a));
    const y = canonicalJsonBytes(unsignedless(b));
    return x.length === y.length && x.every((v, i) => v === y[i]);
  } catch {
    return false;
  }
}

/** Whether `pdu` carries a valid signature of `server` (whose key is its name). */
async function signedBy(pdu: PDU, rules: RoomVersionRules, server: string): Promise<boolean> {
  const pub = publicKeyOfServer(server);
  const sigs = pdu.signatures?.[server];
  if (!pub || !sigs || typeof sigs !== 'object') return false;
  for (const keyId of Object.keys(sigs)) {
    if (keyId.startsWith('ed25519:') && (await verifyEventSignature(pdu, rules, server, keyId, pub))) return true;
  }
  return false;
}

/** Add this server's signature to an event (hashes untouched: the event stays the same event). */
async function countersign(hs: Homeserver, pdu: PDU, rules: RoomVersionRules): Promise<PDU> {
  const sig = await signatureOf(redactEvent(pdu, rules) as unknown as JsonObject, hs.signingKey);
  const previous = pdu.signatures ?? {};
  return { ...pdu, signatures: { ...previous, [hs.serverName]: { ...(previous[hs.serverName] ?? {}), [hs.signingKey.keyId]: sig } } };
}

/** The room's stripped-state events in federation format (invite_room_state / knock_room_state, spec v1.16). */
async function roomStatePdus(hs: Homeserver, roomId: string): Promise<PDU[]> {
  const out: PDU[] = [];
  for (const t of ROOM_STATE_TYPES) {
    const e = await hs.store.rooms.stateEvent(roomId, t, '');
    if (e && !e.rejected) out.push(federationPdu(e));
  }
  return out;
}

/**
 * Stripped state for clients from the `invite_room_state` / `knock_room_state` another server sent.
 * Entries in federation format are verified (signature, same room) and dropped when they fail; older
 * servers' stripped entries are taken as they are, except in room versions that require PDUs (v12+).
 */
async function strippedFromRemote(raws: unknown, rules: RoomVersionRules, roomId: string): Promise<{ events: JsonObject[]; hasCreate: boolean }> {
  const events: JsonObject[] = [];
  let hasCreate = false;
  if (!Array.isArray(raws)) return { events, hasCreate };
  const strict = rules.auth.roomIdFromCreateEvent;
  for (const raw of raws.slice(0, 50)) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) continue;
    const e = raw as PDU;
    if (typeof e.type !== 'string' || typeof e.sender !== 'string' || typeof e.content !== 'object' || e.content === null || Array.isArray(e.content)) continue;
    const state_key = typeof e.state_key === 'string' ? e.state_key : '';
    const looksLikePdu = e.signatures !== undefined || e.hashes !== undefined || e.auth_events !== undefined;
    if (looksLikePdu) {
      const v = await verifyPdu(e, rules);
      if (!v.ok || !checkContentHash(e)) continue;
      const isCreate = e.type === 'm.room.create' && state_key === '';
      const inRoom = e.room_id === roomId || (isCreate && rules.auth.roomIdFromCreateEvent && e.room_id === undefined && roomIdFromCreateEventId(v.eventId) === roomId);
      if (!inRoom) continue;
    } else if (strict) continue;
    if (e.type === 'm.room.create' && state_key === '') hasCreate = true;
    events.push({ type: e.type, state_key, sender: e.sender, content: e.content });
  }
  return { events, hasCreate };
}

/**
 * Record the membership of a local user in a room this server is not in: the event as an outlier
 * (unless the timeline has it already) and the user's membership record at a new stream position.
 */
async function recordOutOfRoomMembership(hs: Homeserver, roomId: string, eventId: string, pdu: PDU, userId: string, membership: string, unsigned?: JsonObject): Promise<void> {
  await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    const existing = await hs.store.rooms.event(eventId);
    if (!existing || (existing.stream === undefined && !existing.stateAfter)) {
      const stored: StoredEvent = {
        eventId, roomId, pdu: unsigned ? { ...unsignedless(pdu), signatures: pdu.signatures, unsigned } : pdu,
        depth: pdu.depth ?? 0, type: pdu.type, sender: pdu.sender, stateKey: pdu.state_key, membership,
      };
      b.put('events', stored);
    }
    b.put('memberships', { userId, roomId, membership, eventId, stream: b.nextStream() });
    hs.notifier.notify(await b.commit());
  });
}

/** A failed remote call as the client's error: the remote's 4xx passed on, anything else a 502. */
function clientError(e: unknown, what: string): unknown {
  if (e instanceof MatrixError) return e;
  if (e instanceof FederationError) {
    if (e.status === 403 || e.status === 404 || (e.status === 400 && e.errcode !== 'M_INVALID_PARAM' && e.errcode !== 'M_MISSING_PARAM' && e.errcode !== 'M_BAD_JSON')) {
      const extra = e.errcode === 'M_INCOMPATIBLE_ROOM_VERSION' && typeof (e.body as JsonObject | undefined)?.room_version === 'string'
        ? { room_version: (e.body as JsonObject).room_version } : {};
      return new MatrixError(e.status, e.errcode, `${what}: ${e.message}`, extra);
    }
    return new MatrixError(502, 'M_UNKNOWN', `${what}: ${e.message}`);
  }
  return e;
}

// --- inviting -------------------------------------------------------------------------------------

/**
 * Send a signed invite event to the invitee's server (`PUT /v2/invite`); resolves with the event as
 * returned, carrying the invitee server's signature too.
 */
export async function sendInviteToRemote(hs: Homeserver, rules: RoomVersionRules, eventId: string, pdu: PDU, _inviteRoomState: JsonObject[]): Promise<PDU> {
  const target = pdu.state_key ?? '';
  const server = serverOf(target);
  if (!hs.federation.enabled) throw new MatrixError(502, 'M_UNKNOWN', 'This node does not federate: cannot invite remote users');
  if (!publicKeyOfServer(server)) throw new MatrixError(400, 'M_INVALID_PARAM', `Cannot invite users of ${server}: not a reachable server name`);
  const event = unsignedless(pdu);
  event.signatures = pdu.signatures;
  const roomId = pdu.room_id!;
  let r: { event?: unknown };
  try {
    r = await hs.federation.request<{ event?: unknown }>(server, 'PUT', `/_matrix/federation/v2/invite/${enc(roomId)}/${enc(eventId)}`, {
      event: event as unknown as JsonObject,
      room_version: rules.id,
      invite_room_state: (await roomStatePdus(hs, roomId)) as unknown as JsonObject[],
    });
  } catch (e) {
    throw clientError(e, `${server} refused the invite`);
  }
  const back = r.event as PDU | undefined;
  if (!back || typeof back !== 'object' || Array.isArray(back)) throw new MatrixError(502, 'M_UNKNOWN', `${server} returned no invite event`);
  let sameId = false;
  try {
    sameId = computeEventId(back, rules) === eventId;
  } catch {
    /* not an event */
  }
  if (!sameId || !sameEvent(back, event)) throw new MatrixError(502, 'M_UNKNOWN', `${server} returned a different invite event`);
  if (!(await signedBy(back, rules, server))) throw new MatrixError(502, 'M_UNKNOWN', `${server} did not sign the invite`);
  return { ...event, signatures: { ...(pdu.signatures ?? {}), [server]: back.signatures![server] } };
}

/** `PUT /v2/invite/{roomId}/{eventId}` on the invitee's server: check, countersign, keep the invite for /sync. */
export async function receiveInvite(hs: Homeserver, origin: string, roomId: string, eventId: string, body: { room_version: string; event: Record<string, unknown>; invite_room_state?: unknown[] }): Promise<JsonObject> {
  const rules = roomVersion(body.room_version);
  if (!rules || !JOINABLE_VERSIONS.includes(body.room_version)) {
    throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${body.room_version} is not supported`, { room_version: body.room_version });
  }
  const raw = body.event as unknown as PDU;
  const v = await verifyPdu(raw, rules);
  if (!v.ok) throw invalidParam(`Invalid invite event: ${v.error}`);
  if (!checkContentHash(raw)) throw invalidParam('Invalid invite event: content hash mismatch');
  if (v.eventId !== eventId) throw invalidParam('Event id does not match the event');
  const p = v.pdu;
  if (p.type !== 'm.room.member') throw invalidParam('Not an m.room.member event');
  if (p.content.membership !== 'invite') throw invalidParam('Not an invite');
  if (p.room_id !== roomId) throw invalidParam('The event is for another room');
  if (serverOf(p.sender) !== origin) throw invalidParam('The sender is not a user of the requesting server');
  const target = p.state_key;
  if (typeof target !== 'string' || !isUserId(target) || !hs.isLocal(target)) throw invalidParam('The invitee is not a user of this server');
  const account = await hs.store.accounts.get(target);
  if (!account || account.deactivated) throw notFound('Unknown user');
  const cur = await hs.store.rooms.membership(roomId, target);
  if (cur?.membership === 'ban') throw forbidden('The user is banned from the room');
  if (cur?.membership === 'join' && (await hs.rooms.isResident(roomId))) throw forbidden('The user is already in the room');
  const stripped = await strippedFromRemote(body.invite_room_state ?? (raw.unsigned as JsonObject | undefined)?.invite_room_state, rules, roomId);
  if (rules.auth.roomIdFromCreateEvent && !stripped.hasCreate) throw invalidParam('invite_room_state must hold the room\'s m.room.create event');

  const signed = await countersign(hs, raw, rules);
  // Keep the stripped state (the invite event itself is added by /sync) for the invitee's client.
  await recordOutOfRoomMembership(hs, roomId, eventId, signed, target, 'invite', { invite_room_state: stripped.events });
  return { event: signed as unknown as JsonObject };
}

// --- leaving and knocking through a resident server -----------------------------------------------

/** make_X / send_X through one of `via`; returns the accepted event and the send response. */
async function remoteMembership(
  hs: Homeserver, userId: string, roomId: string, via: string[], membership: 'leave' | 'knock', extra: JsonObject,
): Promise<{ eventId: string; pdu: PDU; rules: RoomVersionRules; response: JsonObject }> {
  if (!hs.federation.enabled) throw new MatrixError(502, 'M_UNKNOWN', 'This node does not federate');
  const candidates = [...new Set(via)].filter((s) => s && s !== hs.serverName && publicKeyOfServer(s));
  if (!candidates.length) throw notFound('No server to reach the room through');
  let lastError: unknown;
  for (const server of candidates) {
    try {
      const q = membership === 'knock' ? '?' + KNOCKABLE_VERSIONS.map((v) => `ver=${enc(v)}`).join('&') : '';
      const made = await hs.federation.request<{ event?: PDU; room_version?: string }>(server, 'GET',
        `/_matrix/federation/v1/make_${membership}/${enc(roomId)}/${enc(userId)}${q}`);
      const version = made.room_version ?? '1';
      const rules = roomVersion(version);
      if (!rules || !JOINABLE_VERSIONS.includes(version) || (membership === 'knock' && !rules.auth.knocking)) {
        throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Room version ${version} is not supported`);
      }
      const t = made.event;
      if (!t || typeof t !== 'object' || t.type !== 'm.room.member' || t.state_key !== userId || t.sender !== userId || t.room_id !== roomId
        || (t.content as JsonObject | undefined)?.membership !== membership || !Array.isArray(t.prev_events) || !Array.isArray(t.auth_events)) {
        throw new MatrixError(502, 'M_UNKNOWN', `Bad make_${membership} template from ${server}`);
      }
      const draft: PDU = {
        type: 'm.room.member', room_id: roomId, sender: userId, state_key: userId,
        content: { ...(t.content ?? {}), ...extra, membership },
        origin_server_ts: hs.clock(), depth: t.depth, prev_events: t.prev_events, auth_events: t.auth_events,
      };
      const signed = await hashAndSignEvent(draft, rules, hs.serverName, hs.signingKey);
      const eventId = computeEventId(signed, rules);
      const path = membership === 'leave' ? `/_matrix/federation/v2/send_leave/${enc(roomId)}/${enc(eventId)}` : `/_matrix/federation/v1/send_knock/${enc(roomId)}/${enc(eventId)}`;
      const response = await hs.federation.request<JsonObject>(server, 'PUT', path, signed as unknown as JsonObject, { timeoutMs: 60_000 });
      return { eventId, pdu: signed, rules, response: response && typeof response === 'object' && !Array.isArray(response) ? response : {} };
    } catch (e) {
      lastError = e;
      if (e instanceof MatrixError && e.status === 400) throw e;
    }
  }
  throw clientError(lastError, `Cannot ${membership} through any server`);
}

/** Servers that may be resident in a room we are not in, from what the invite or knock told us. */
async function serversFromMembership(hs: Homeserver, userId: string, roomId: string): Promise<string[]> {
  const out: string[] = [];
  const m = await hs.store.rooms.membership(roomId, userId);
  const ev = m ? await hs.store.rooms.event(m.eventId) : undefined;
  if (ev) {
    if (ev.sender !== userId) out.push(serverOf(ev.sender));
    const u = ev.pdu.unsigned as JsonObject | undefined;
    for (const key of ['invite_room_state', 'knock_room_state']) {
      const list = u?.[key];
      if (Array.isArray(list)) for (const s of list) if (s && typeof s === 'object' && typeof (s as JsonObject).sender === 'string') out.push(serverOf((s as JsonObject).sender as string));
    }
  }
  if (roomId.includes(':')) out.push(serverOf(roomId));
  return out;
}

/**
 * Reject an invite (or rescind a knock) for a room this server is not in: make_leave / send_leave
 * through `via` (then the servers the invite or knock named). When no resident server takes the leave,
 * the invite is rejected locally only (as Synapse does), so the user is never stuck with it.
 */
export async function leaveRemote(hs: Homeserver, userId: string, roomId: string, via: string[]): Promise<void> {
  const candidates = [...via, ...(await serversFromMembership(hs, userId, roomId))];
  try {
    const r = await remoteMembership(hs, userId, roomId, candidates, 'leave', {});
    await recordOutOfRoomMembership(hs, roomId, r.eventId, r.pdu, userId, 'leave');
    return;
  } catch (e) {
    hs.log(e);
  }
  // An out-of-band leave: signed by us, after the invite or knock, known to this server only.
  const cur = await hs.store.rooms.membership(roomId, userId);
  const prev = cur ? await hs.store.rooms.event(cur.eventId) : undefined;
  // Known to this server only: the room's version when we know it, else our default.
  const room = await hs.store.rooms.room(roomId);
  const rules = roomVersion(room?.version ?? '') ?? roomVersion(DEFAULT_ROOM_VERSION)!;
  const draft: PDU = {
    type: 'm.room.member', room_id: roomId, sender: userId, state_key: userId, content: { membership: 'leave' },
    origin_server_ts: hs.clock(), depth: (prev?.depth ?? 0) + 1,
    prev_events: prev ? [prev.eventId] : [], auth_events: prev ? [prev.eventId] : [],
  };
  const signed = await hashAndSignEvent(draft, rules, hs.serverName, hs.signingKey);
  await recordOutOfRoomMembership(hs, roomId, computeEventId(signed, rules), signed, userId, 'leave');
}

/** Knock on a room this server is not in: make_knock / send_knock through `via`. */
export async function knockRemote(hs: Homeserver, userId: string, roomId: string, via: string[], reason?: string): Promise<void> {
  const extra: JsonObject = { ...(await hs.rooms.profileContent(userId)) };
  if (reason) extra.reason = reason;
  const r = await remoteMembership(hs, userId, roomId, via, 'knock', extra);
  const stripped = await strippedFromRemote(r.response.knock_room_state, r.rules, roomId);
  await recordOutOfRoomMembership(hs, roomId, r.eventId, r.pdu, userId, 'knock', { knock_room_state: stripped.events });
}

// --- resident side: make_leave / send_leave, make_knock / send_knock -----------------------------------

/** GET make_leave / make_knock: a template for a user of the requesting server, on our current state. */
export async function makeMembership(hs: Homeserver, origin: string, roomId: string, userId: string, membership: 'leave' | 'knock', versions?: string[]): Promise<JsonObject> {
  if (!isUserId(userId)) throw invalidParam('Not a user id');
  if (serverOf(userId) !== origin) throw forbidden('The user does not belong to the requesting server');
  const room = await hs.store.rooms.room(roomId);
  if (!room || !(await hs.rooms.isResident(roomId))) throw notFound('We are not in that room');
  if (versions !== undefined && !versions.includes(room.version)) {
    throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${room.version} is not supported by your server`, { room_version: room.version });
  }
  const rules = roomVersion(room.version);
  if (!rules) throw notFound('Unsupported room');
  if (membership === 'knock' && !rules.auth.knocking) {
    throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${room.version} does not support knocking`, { room_version: room.version });
  }
  const template = await buildTemplate(hs, room.roomId, rules, userId, membership, {});
  return { event: template as unknown as JsonObject, room_version: room.version };
}

/** PUT send_leave / send_knock: accept the event into the room and pass it on to the room's servers. */
export async function sendMembership(hs: Homeserver, origin: string, roomId: string, eventId: string, raw: unknown, membership: 'leave' | 'knock'): Promise<JsonObject> {
  const room = await hs.store.rooms.room(roomId);
  if (!room || !(await hs.rooms.isResident(roomId))) throw notFound('We are not in that room');
  const rules = roomVersion(room.version);
  if (!rules) throw notFound('Unsupported room');
  const v = await verifyPdu(raw, rules);
  if (!v.ok) throw invalidParam(`Invalid ${membership} event: ${v.error}`);
  if (v.eventId !== eventId) throw invalidParam('Event id does not match the event');
  const p = v.pdu;
  if (p.type !== 'm.room.member' || p.content.membership !== membership) throw invalidParam(`Not a ${membership} event`);
  if (p.state_key !== p.sender) throw invalidParam('state_key must be the sender');
  if (serverOf(p.sender) !== origin) throw invalidParam('The sender is not a user of the requesting server');
  if (p.room_id !== roomId) throw invalidParam('The event is for another room');
  const r = await hs.ingest.receive(origin, roomId, raw);
  if (r.error) throw forbidden(`${membership} refused: ${r.error}`);
  const stored = await hs.store.rooms.event(eventId);
  if (!stored || stored.stream === undefined) throw forbidden(`${membership} not accepted`);
  await broadcast(hs, roomId, [stored], new Set([origin]));
  if (membership === 'knock') return { knock_room_state: (await roomStatePdus(hs, roomId)) as unknown as JsonObject[] };
  return {};
}
