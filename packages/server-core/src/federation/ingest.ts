/**
 * Receiving events over federation (spec: server-server API, "Checks performed on receipt of a PDU"):
 *  1. a valid event for the room version (format, size ≤ 65,536 bytes, canonical JSON);
 *  2. a valid signature from the sender's server (known from its name: no key fetch);
 *  3. the content hash matches, else the event is redacted before use;
 *  4. allowed by its auth events (which must themselves be known and accepted), else rejected;
 *  5. allowed by the state before it (resolved from its prev events' states), else rejected;
 *  6. allowed by the current state, else soft-failed (kept in the DAG, not shown, not an extremity).
 * Missing prev events are fetched with get_missing_events, then the state at a remaining gap with
 * /state. A rejected PDU never fails the transaction or anything else.
 */
import { authEventTypes, checkAuth, checkAuthEventsList } from '../kernel/auth/index.ts';
import { canonicalJsonBytes } from '../kernel/canonical-json.ts';
import { checkContentHash, computeEventId, verifyEventSignature } from '../kernel/events.ts';
import { redactEvent } from '../kernel/redaction.ts';
import { roomVersion, type RoomVersionRules } from '../kernel/room-versions.ts';
import { refId, stateKey as sk, type JsonObject, type PDU, type StateMap } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import type { RoomRecord, StoredEvent } from '../store/records.ts';
import { Mutex } from '../util/async.ts';
import { serverOf } from '../util/ids.ts';
import { toClientEvent } from '../services/client-events.ts';
import { MAX_EVENT_BYTES } from '../services/room-writer.ts';
import { kernelPdu, PduCache, resolveStates, stageStateGroup } from './state.ts';
import { publicKeyOfServer } from './x-matrix.ts';

export type VerifyResult = { ok: true; eventId: string; pdu: PDU } | { ok: false; error: string; eventId?: string };

/** Steps 1–3: format, signature, hash. Returns the event to use (redacted on a hash mismatch). */
export async function verifyPdu(raw: unknown, rules: RoomVersionRules): Promise<VerifyResult> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, error: 'not an object' };
  const pdu = raw as PDU;
  let eventId: string | undefined;
  try {
    if (canonicalJsonBytes(pdu).length > MAX_EVENT_BYTES) return { ok: false, error: 'event larger than 65536 bytes' };
    eventId = computeEventId(pdu, rules);
  } catch (e) {
    return { ok: false, error: `not canonical JSON: ${(e as Error).message}` };
  }
  const bad = (error: string): VerifyResult => ({ ok: false, error, eventId });
  if (typeof pdu.type !== 'string' || typeof pdu.sender !== 'string' || typeof pdu.content !== 'object' || pdu.content === null || Array.isArray(pdu.content)) return bad('missing type, sender or content');
  if (!Number.isSafeInteger(pdu.origin_server_ts) || !Number.isSafeInteger(pdu.depth)) return bad('missing origin_server_ts or depth');
  if (!Array.isArray(pdu.prev_events) || !Array.isArray(pdu.auth_events)) return bad('missing prev_events or auth_events');
  const refsOk = (refs: unknown[]) => refs.every((r) => (rules.eventRefsArePairs ? Array.isArray(r) && typeof r[0] === 'string' : typeof r === 'string'));
  if (!refsOk(pdu.prev_events) || !refsOk(pdu.auth_events)) return bad('malformed prev_events or auth_events');
  if (pdu.prev_events.length > 20 || pdu.auth_events.length > 10) return bad('too many prev_events or auth_events');
  const isCreate = pdu.type === 'm.room.create' && pdu.state_key === '';
  if (!(isCreate && rules.auth.roomIdFromCreateEvent) && typeof pdu.room_id !== 'string') return bad('missing room_id');
  // Signature of the sender's server (spec: "Validating hashes and signatures on received events").
  const server = serverOf(pdu.sender);
  const pub = publicKeyOfServer(server);
  if (!pub) return bad(`cannot verify events of ${server}: not a key-named server`);
  const sigs = (pdu.signatures ?? {})[server];
  let verified = false;
  if (sigs && typeof sigs === 'object') {
    for (const keyId of Object.keys(sigs)) {
      if (!keyId.startsWith('ed25519:')) continue;
      if (await verifyEventSignature(pdu, rules, server, keyId, pub)) {
        verified = true;
        break;
      }
    }
  }
  if (!verified) return bad(`no valid signature from ${server}`);
  if (!checkContentHash(pdu)) return { ok: true, eventId, pdu: redactEvent(pdu, rules) };
  return { ok: true, eventId, pdu };
}

export interface PduOutcome {
  error?: string;
}

export class Ingester {
  readonly cache: PduCache;
  private roomLocks = new Map<string, Mutex>();

  constructor(private readonly hs: Homeserver) {
    this.cache = new PduCache(hs);
  }

  private lockOf(roomId: string): Mutex {
    let m = this.roomLocks.get(roomId);
    if (!m) this.roomLocks.set(roomId, (m = new Mutex()));
    return m;
  }

  /** `PUT /send/{txnId}`: every PDU gets its own result; nothing one PDU does can fail another. */
  async receivePdus(origin: string, pdus: unknown[]): Promise<Record<string, PduOutcome>> {
    const results: Record<string, PduOutcome> = {};
    // Per room, in depth order, so that prev events arrive before their children.
    const byRoom = new Map<string, unknown[]>();
    for (const p of pdus) {
      const roomId = typeof (p as PDU)?.room_id === 'string' ? (p as PDU).room_id! : '';
      let l = byRoom.get(roomId);
      if (!l) byRoom.set(roomId, (l = []));
      l.push(p);
    }
    await Promise.all(
      [...byRoom].map(async ([roomId, list]) => {
        list.sort((a, b) => Number((a as PDU)?.depth ?? 0) - Number((b as PDU)?.depth ?? 0));
        for (const raw of list) {
          const r = await this.receive(origin, roomId, raw).catch((e) => {
            this.hs.log(e);
            return { eventId: undefined, error: 'internal error' };
          });
          if (r.eventId) results[r.eventId] = r.error ? { error: r.error } : {};
        }
      }),
    );
    return results;
  }

  /** Receive one PDU of a room we know. */
  async receive(origin: string, roomId: string, raw: unknown, depth = 0): Promise<{ eventId?: string; error?: string }> {
    const room = await this.hs.store.rooms.room(roomId);
    if (!room) return { eventId: tryEventId(raw), error: 'unknown room' };
    const rules = roomVersion(room.version)!;
    const v = await verifyPdu(raw, rules);
    if (!v.ok) return { eventId: v.eventId, error: v.error };
    return this.lockOf(roomId).run(() => this.accept(origin, room.roomId, rules, v.eventId, v.pdu, depth));
  }

  private async accept(origin: string, roomId: string, rules: RoomVersionRules, eventId: string, pdu: PDU, depth: number): Promise<{ eventId: string; error?: string }> {
    const hs = this.hs;
    const existing = await hs.store.rooms.event(eventId);
    if (existing && existing.stream !== undefined) return { eventId };
    if (existing?.rejected) return { eventId, error: `rejected: ${existing.rejected}` };
    if (pdu.room_id !== roomId) return { eventId, error: 'wrong room' };
    const withId: PDU = { ...pdu, event_id: eventId };

    // 4. Auth events: known (fetched if not), accepted, and allowing the event.
    const authIds = (pdu.auth_events ?? []).map(refId);
    let authEvents = await this.loadAuthEvents(authIds);
    if (authEvents.length < authIds.length) {
      await this.fetchAuthChain(origin, roomId, rules, eventId);
      authEvents = await this.loadAuthEvents(authIds);
      if (authEvents.length < authIds.length) return this.reject(roomId, eventId, pdu, 'auth events unavailable', false);
    }
    if (authEvents.some((e) => e.rejected)) return this.reject(roomId, eventId, pdu, 'an auth event was rejected');
    const authPdus = authEvents.map(kernelPdu);
    const create = await this.createEventOf(roomId, rules, authPdus);
    const structural = checkAuthEventsList(withId, authPdus, rules);
    if (!structural.allowed) return this.reject(roomId, eventId, pdu, structural.reason);
    const byKey = new Map<string, PDU>();
    for (const a of authPdus) if (a.state_key !== undefined) byKey.set(sk(a.type, a.state_key), a);
    if (create) byKey.set(sk('m.room.create', ''), create);
    const v1 = checkAuth(withId, (t, k) => byKey.get(sk(t, k)), rules);
    if (!v1.allowed) return this.reject(roomId, eventId, pdu, v1.reason);

    // Prev events: fill gaps (bounded), then the state before the event.
    const prevIds = (pdu.prev_events ?? []).map(refId);
    let prevs = await hs.store.rooms.events(prevIds);
    const missing = prevIds.filter((id) => !prevs.get(id)?.stateAfter);
    if (missing.length && depth < 3) {
      await this.fetchMissing(origin, roomId, rules, eventId, depth);
      prevs = await hs.store.rooms.events(prevIds);
      for (const id of prevIds.filter((id) => !prevs.get(id)?.stateAfter)) await this.fetchStateAt(origin, roomId, rules, id);
      prevs = await hs.store.rooms.events(prevIds);
    }
    const prevStates: StateMap[] = [];
    for (const id of prevIds) {
      const p = prevs.get(id);
      if (p?.stateAfter && !p.rejected) prevStates.push(await hs.store.rooms.stateGroup(p.stateAfter));
    }
    if (prevStates.length === 0) return this.reject(roomId, eventId, pdu, 'state before the event is unknown', false);
    const stateBefore = await resolveStates(this.cache, prevStates, rules);

    // 5. Against the state before the event.
    const lookupIn = async (state: StateMap) => {
      const ids: string[] = [];
      const keys = authEventTypes(withId, rules).concat([['m.room.create', '']]);
      for (const [t, k] of keys) {
        const id = state.get(sk(t, k));
        if (id) ids.push(id);
      }
      const look = await this.cache.load(ids, false);
      return (t: string, k: string) => {
        const id = state.get(sk(t, k));
        return id ? look(id) : undefined;
      };
    };
    const v2 = checkAuth(withId, await lookupIn(stateBefore), rules);
    if (!v2.allowed) return this.reject(roomId, eventId, pdu, v2.reason);

    // 6 and commit, under the write lock: the current state may have moved meanwhile.
    return hs.writeLock.run(async () => {
      const room = (await hs.store.rooms.room(roomId))!;
      const current = await hs.store.rooms.stateGroup(room.stateGroup);
      const softFailed = !checkAuth(withId, await lookupIn(current), rules).allowed;
      await this.persist(room, rules, eventId, pdu, prevIds, stateBefore, prevs, softFailed);
      return { eventId };
    });
  }

  private async persist(room: RoomRecord, rules: RoomVersionRules, eventId: string, pdu: PDU, prevIds: string[], stateBefore: StateMap,
    prevs: Map<string, StoredEvent>, softFailed: boolean): Promise<void> {
    const hs = this.hs;
    const b = hs.store.batch();
    const firstPrev = prevs.get(prevIds[0]);
    const beforeGroup = prevIds.length === 1 && firstPrev?.stateAfter
      ? firstPrev.stateAfter
      : await stageStateGroup(hs, b, room.roomId, stateBefore, firstPrev?.stateAfter ? { id: firstPrev.stateAfter, state: await hs.store.rooms.stateGroup(firstPrev.stateAfter) } : undefined);
    let afterGroup = beforeGroup;
    let stateAfter = stateBefore;
    const stored: StoredEvent = {
      eventId, roomId: room.roomId, pdu, depth: pdu.depth ?? 0, type: pdu.type, sender: pdu.sender, stateBefore: beforeGroup,
    };
    if (pdu.state_key !== undefined) {
      stored.stateKey = pdu.state_key;
      const key = sk(pdu.type, pdu.state_key);
      const prevId = stateBefore.get(key);
      if (prevId) {
        const prev = await hs.store.rooms.event(prevId);
        stored.replacesState = prevId;
        if (prev) (stored.prevContent = prev.pdu.content, (stored.prevSender = prev.sender));
      }
      stateAfter = new Map(stateBefore).set(key, eventId);
      afterGroup = await stageStateGroup(hs, b, room.roomId, stateAfter, { id: beforeGroup, state: stateBefore });
    }
    stored.stateAfter = afterGroup;
    if (pdu.type === 'm.room.member' && typeof pdu.content.membership === 'string') stored.membership = pdu.content.membership;
    const rel = pdu.content['m.relates_to'] as JsonObject | undefined;
    if (rel && typeof rel === 'object' && typeof rel.event_id === 'string') {
      stored.relatesTo = rel.event_id;
      if (typeof rel.rel_type === 'string') stored.relType = rel.rel_type;
    }
    this.cache.set(eventId, { ...pdu, event_id: eventId });

    if (softFailed) {
      // Kept in the DAG (its state is known) but not in the timeline nor an extremity.
      stored.rejected = undefined;
      b.put('events', { ...stored, softFailed: true });
      await b.commit();
      return;
    }
    const stream = b.nextStream();
    stored.stream = stream;

    // New forward extremities and the current state they resolve to.
    const extremities = room.extremities.filter((id) => !prevIds.includes(id));
    extremities.push(eventId);
    const oldCurrent = await hs.store.rooms.stateGroup(room.stateGroup);
    let newCurrent: StateMap;
    let currentGroup: number;
    if (extremities.length === 1) {
      newCurrent = stateAfter;
      currentGroup = afterGroup;
    } else {
      const states: StateMap[] = [];
      const exEvents = await hs.store.rooms.events(extremities.filter((id) => id !== eventId));
      states.push(stateAfter);
      for (const e of exEvents.values()) if (e.stateAfter) states.push(await hs.store.rooms.stateGroup(e.stateAfter));
      newCurrent = await resolveStates(this.cache, states, rules);
      currentGroup = newCurrent === stateAfter ? afterGroup : await stageStateGroup(hs, b, room.roomId, newCurrent, { id: room.stateGroup, state: oldCurrent });
    }
    // Current state and memberships: write what changed.
    for (const [k, id] of newCurrent) {
      if (oldCurrent.get(k) === id) continue;
      const sep = k.indexOf('\u0000');
      const type = k.slice(0, sep);
      const key = k.slice(sep + 1);
      b.put('current_state', { roomId: room.roomId, type, stateKey: key, eventId: id });
      if (type === 'm.room.member') {
        const ev = id === eventId ? stored : await hs.store.rooms.event(id);
        if (ev?.membership) b.put('memberships', { userId: key, roomId: room.roomId, membership: ev.membership, eventId: id, stream });
      }
    }
    for (const k of oldCurrent.keys()) {
      if (newCurrent.has(k)) continue;
      const sep = k.indexOf('\u0000');
      b.delete('current_state', [room.roomId, k.slice(0, sep), k.slice(sep + 1)]);
    }
    b.put('rooms', { ...room, extremities, stateGroup: currentGroup, maxDepth: Math.max(room.maxDepth, stored.depth) });
    if (pdu.type === 'm.room.redaction') await this.applyRedaction(b, stored, rules, newCurrent);
    b.put('events', stored);
    const pos = await b.commit();
    hs.notifier.notify(pos);
  }

  /** Apply a received redaction when its sender may (rooms/v3 "Handling redactions"). */
  private async applyRedaction(b: ReturnType<Homeserver['store']['batch']>, redaction: StoredEvent, rules: RoomVersionRules, state: StateMap): Promise<void> {
    const c = redaction.pdu.content as JsonObject;
    const targetId = (typeof c.redacts === 'string' ? c.redacts : redaction.pdu.redacts) as string | undefined;
    if (!targetId) return;
    const target = await this.hs.store.rooms.event(targetId);
    if (!target || target.roomId !== redaction.roomId || target.type === 'm.room.create') return;
    let allowed = serverOf(target.sender) === serverOf(redaction.sender);
    if (!allowed) {
      const plId = state.get(sk('m.room.power_levels', ''));
      const pl = plId ? await this.hs.store.rooms.event(plId) : undefined;
      const content = (pl?.pdu.content ?? {}) as JsonObject;
      const users = (content.users ?? {}) as Record<string, unknown>;
      allowed = Number(users[redaction.sender] ?? content.users_default ?? 0) >= Number(content.redact ?? 50);
    }
    if (!allowed) return;
    this.cache.forget(targetId);
    const out: StoredEvent = {
      ...target, pdu: redactEvent(target.pdu, rules), redactedBy: redaction.eventId,
      redactedBecause: toClientEvent(redaction, { now: redaction.pdu.origin_server_ts ?? 0 }) as unknown as JsonObject,
    };
    delete out.relatesTo;
    delete out.relType;
    b.put('events', out);
  }

  private async reject(roomId: string, eventId: string, pdu: PDU, reason: string, remember = true): Promise<{ eventId: string; error: string }> {
    if (remember) {
      // Remember the rejection (spec: rejected events are not re-processed and never enter state).
      await this.hs.store.batch().put('events', {
        eventId, roomId, pdu, depth: pdu.depth ?? 0, type: pdu.type, sender: pdu.sender, stateKey: pdu.state_key, rejected: reason,
      } satisfies StoredEvent).commit();
    }
    return { eventId, error: reason };
  }

  private async loadAuthEvents(ids: string[]): Promise<StoredEvent[]> {
    const m = await this.hs.store.rooms.events(ids);
    return ids.map((id) => m.get(id)).filter((e): e is StoredEvent => !!e);
  }

  /** The room's create event (v12 auth_events leave it out: it is named by the room id). */
  private async createEventOf(roomId: string, rules: RoomVersionRules, authPdus: PDU[]): Promise<PDU | undefined> {
    const listed = authPdus.find((p) => p.type === 'm.room.create' && p.state_key === '');
    if (listed) return listed;
    const cur = await this.hs.store.rooms.stateEvent(roomId, 'm.room.create', '');
    if (cur) return kernelPdu(cur);
    if (rules.auth.roomIdFromCreateEvent) {
      const e = await this.hs.store.rooms.event('$' + roomId.slice(1));
      return e ? kernelPdu(e) : undefined;
    }
    return undefined;
  }

  /** Fetch an event's auth chain from `origin` and store what it lacks as outliers. */
  private async fetchAuthChain(origin: string, roomId: string, rules: RoomVersionRules, eventId: string): Promise<void> {
    try {
      const r = await this.hs.federation.request<{ auth_chain?: unknown[] }>(origin, 'GET', `/_matrix/federation/v1/event_auth/${encodeURIComponent(roomId)}/${encodeURIComponent(eventId)}`);
      await this.storeOutliers(roomId, rules, r.auth_chain ?? []);
    } catch (e) {
      this.hs.log(e);
    }
  }

  /**
   * Store events that are not (yet) in the timeline: auth chains and state from another server.
   * Each is verified and checked against its own auth events; the ones that fail are stored rejected.
   * Returns the ids of the events accepted.
   */
  async storeOutliers(roomId: string, rules: RoomVersionRules, raws: unknown[]): Promise<Set<string>> {
    const verified: { eventId: string; pdu: PDU }[] = [];
    const results = await Promise.all(raws.map((r) => verifyPdu(r, rules)));
    for (const v of results) if (v.ok) verified.push(v);
    verified.sort((a, b) => (a.pdu.depth ?? 0) - (b.pdu.depth ?? 0));
    const accepted = new Set<string>();
    const known = new Map<string, PDU>();
    const existing = await this.hs.store.rooms.events(verified.map((v) => v.eventId).concat(verified.flatMap((v) => (v.pdu.auth_events ?? []).map(refId))));
    for (const [id, e] of existing) if (!e.rejected) known.set(id, kernelPdu(e));
    const b = this.hs.store.batch();
    // Events may come in any order: repeat passes until nothing more can be checked.
    let pending = verified.filter((v) => {
      const e = existing.get(v.eventId);
      if (e && !e.rejected) {
        accepted.add(v.eventId);
        return false;
      }
      return true;
    });
    for (let pass = 0; pending.length && pass < 50; pass++) {
      const next: typeof pending = [];
      for (const v of pending) {
        const withId = { ...v.pdu, event_id: v.eventId };
        const authIds = (v.pdu.auth_events ?? []).map(refId);
        if (authIds.some((id) => !known.has(id))) {
          next.push(v);
          continue;
        }
        const authPdus = authIds.map((id) => known.get(id)!);
        const byKey = new Map<string, PDU>();
        for (const a of authPdus) if (a.state_key !== undefined) byKey.set(sk(a.type, a.state_key), a);
        const create = authPdus.find((a) => a.type === 'm.room.create') ?? [...known.values()].find((p) => p.type === 'm.room.create' && p.state_key === '');
        if (create) byKey.set(sk('m.room.create', ''), create);
        const ok = checkAuthEventsList(withId, authPdus, rules).allowed && checkAuth(withId, (t, k) => byKey.get(sk(t, k)), rules).allowed;
        const stored: StoredEvent = { eventId: v.eventId, roomId, pdu: v.pdu, depth: v.pdu.depth ?? 0, type: v.pdu.type, sender: v.pdu.sender };
        if (v.pdu.state_key !== undefined) stored.stateKey = v.pdu.state_key;
        if (v.pdu.type === 'm.room.member' && typeof v.pdu.content.membership === 'string') stored.membership = v.pdu.content.membership;
        if (ok) {
          known.set(v.eventId, withId);
          accepted.add(v.eventId);
          this.cache.set(v.eventId, withId);
        } else stored.rejected = 'not allowed by its auth events';
        b.put('events', stored);
      }
      if (next.length === pending.length) break;
      pending = next;
    }
    if (b.ops.length) await b.commit();
    return accepted;
  }

  /** Fill a gap before `eventId` with get_missing_events (spec: "Retrieving missing events"). */
  private async fetchMissing(origin: string, roomId: string, rules: RoomVersionRules, eventId: string, depth: number): Promise<void> {
    const room = await this.hs.store.rooms.room(roomId);
    if (!room) return;
    let events: unknown[] = [];
    try {
      const r = await this.hs.federation.request<{ events?: unknown[] }>(origin, 'POST', `/_matrix/federation/v1/get_missing_events/${encodeURIComponent(roomId)}`, {
        earliest_events: room.extremities, latest_events: [eventId], limit: 20, min_depth: 0,
      });
      events = Array.isArray(r.events) ? r.events : [];
    } catch (e) {
      this.hs.log(e);
      return;
    }
    events.sort((a, b) => Number((a as PDU)?.depth ?? 0) - Number((b as PDU)?.depth ?? 0));
    for (const raw of events) {
      const v = await verifyPdu(raw, rules);
      if (!v.ok) continue;
      await this.accept(origin, roomId, rules, v.eventId, v.pdu, depth + 1);
    }
  }

  /** The state at a prev event we cannot reach: ask `origin` for it (`/state`) and record the prev as an outlier with that state. */
  private async fetchStateAt(origin: string, roomId: string, rules: RoomVersionRules, prevId: string): Promise<void> {
    try {
      const [st, ev] = await Promise.all([
        this.hs.federation.request<{ pdus?: unknown[]; auth_chain?: unknown[] }>(origin, 'GET', `/_matrix/federation/v1/state/${encodeURIComponent(roomId)}?event_id=${encodeURIComponent(prevId)}`),
        this.hs.federation.request<{ pdus?: unknown[] }>(origin, 'GET', `/_matrix/federation/v1/event/${encodeURIComponent(prevId)}`),
      ]);
      const statePdus = Array.isArray(st.pdus) ? st.pdus : [];
      const prevRaw = Array.isArray(ev.pdus) ? ev.pdus[0] : undefined;
      const accepted = await this.storeOutliers(roomId, rules, [...(Array.isArray(st.auth_chain) ? st.auth_chain : []), ...statePdus, ...(prevRaw ? [prevRaw] : [])]);
      const state: StateMap = new Map();
      for (const raw of statePdus) {
        const p = raw as PDU;
        if (typeof p?.state_key !== 'string') continue;
        const id = tryEventIdFor(p, rules);
        if (id && accepted.has(id)) state.set(sk(p.type, p.state_key), id);
      }
      const prev = await this.hs.store.rooms.event(prevId);
      if (!prev || prev.rejected) return;
      await this.hs.writeLock.run(async () => {
        const b = this.hs.store.batch();
        const before = await stageStateGroup(this.hs, b, roomId, state);
        let after = before;
        if (prev.stateKey !== undefined) after = await stageStateGroup(this.hs, b, roomId, new Map(state).set(sk(prev.type, prev.stateKey), prevId), { id: before, state });
        b.put('events', { ...prev, stateBefore: before, stateAfter: after });
        await b.commit();
      });
    } catch (e) {
      this.hs.log(e);
    }
  }
}

function tryEventId(raw: unknown): string | undefined {
  const p = raw as PDU;
  return typeof p?.event_id === 'string' ? p.event_id : undefined;
}

function tryEventIdFor(p: PDU, rules: RoomVersionRules): string | undefined {
  try {
    return computeEventId(p, rules);
  } catch {
    return undefined;
  }
}

