/**
 * The state of a room computed from a whole set of its events (the kernel CLI's `resolve-dag`): the
 * definitions of rooms/v2 "State resolution" (state before/after an event) with the checks of
 * server-server-api "Checks performed on receipt of a PDU", steps 4–5 (authorization against the auth
 * events, then against the state before the event; a failing event is rejected).
 */
import { eventIdOf } from '../events.ts';
import { roomVersion, type RoomVersionRules } from '../room-versions.ts';
import { stateKey, type AuthResult, type PDU, type StateKey, type StateMap } from '../types.ts';
import { checkAuth, checkAuthEventsList } from './auth.ts';
import { authEventIds, createEventOfRoom, type EventLookup, keyOf, lookupIn, prevEventIds } from './events.ts';
import { resolveState } from './resolve.ts';

/** The rules of the room the events belong to: the version its create event names (default "1"). */
function rulesFromEvents(events: readonly PDU[]): RoomVersionRules {
  const create = events.find((e) => e.type === 'm.room.create' && e.state_key === '');
  if (!create) throw new Error('no m.room.create event to take the room version from');
  const v = create.content.room_version;
  const id = typeof v === 'string' ? v : '1';
  const rules = roomVersion(id);
  if (!rules) throw new Error(`unknown room version ${JSON.stringify(id)}`);
  return rules;
}

/** A state map shared by the events whose state it is, with the number of reads still to come. */
interface Holder {
  map: StateMap;
  readers: number;
}

export interface DagResolution {
  state: StateMap;
  rejected: Set<string>;
  /** Why each rejected event was rejected. */
  reasons: Map<string, string>;
}

/**
 * Compute a room's state from a whole set of its events (the rules default to the version the create
 * event names). Each event's state before it is the resolution of the states after its prev_events (those
 * in the set); an event is rejected if it fails the authorization rules against its auth events (which
 * must all be in the set and not rejected) or against the state before it. A rejected event never enters
 * state: the state after it is the state before it (server-server-api "Rejection"). The answer is the
 * resolution of the states after all forward extremities (the events no other event of the set names in
 * prev_events). Events on a cycle of prev_events / auth_events cannot be placed and count as rejected.
 */
export function resolveDag(events: readonly PDU[], rules?: RoomVersionRules): DagResolution {
  if (events.length === 0) return { state: new Map(), rejected: new Set(), reasons: new Map() };
  rules ??= rulesFromEvents(events);
  if (rules.stateRes === 'v1') throw new Error(`state resolution v1 (room version ${rules.id}) is not implemented`);
  const byId = new Map<string, PDU>();
  const idOf = new Map<PDU, string>();
  for (const ev of events) {
    const id = eventIdOf(ev, rules);
    idOf.set(ev, id);
    if (!byId.has(id)) byId.set(id, ev);
  }
  const lookup: EventLookup = (id) => byId.get(id);
  const rejected = new Set<string>();
  const reasons = new Map<string, string>();
  const isRejected = (id: string) => rejected.has(id);

  // Process events after their prev_events and auth_events (Kahn's algorithm; the order among
  // independent events changes no result).
  const children = new Map<string, string[]>();
  const waiting = new Map<string, number>();
  const prevChildren = new Map<string, number>();
  for (const [id, ev] of byId) {
    const deps = new Set<string>();
    for (const p of prevEventIds(ev)) {
      if (!byId.has(p) || p === id || deps.has(p)) continue;
      prevChildren.set(p, (prevChildren.get(p) ?? 0) + 1);
      deps.add(p);
    }
    for (const a of authEventIds(ev)) if (byId.has(a) && a !== id) deps.add(a);
    waiting.set(id, deps.size);
    for (const d of deps) {
      const c = children.get(d);
      if (c) c.push(id);
      else children.set(d, [id]);
    }
  }
  const order: string[] = [];
  for (const [id, n] of waiting) if (n === 0) order.push(id);
  for (let i = 0; i < order.length; i++) {
    for (const c of children.get(order[i]) ?? []) {
      const n = waiting.get(c)! - 1;
      waiting.set(c, n);
      if (n === 0) order.push(c);
    }
  }

  // The state after each event, shared between consecutive events until one of them changes it.
  const after = new Map<string, Holder>();
  const extremities: string[] = [];
  for (const id of order) {
    const ev = byId.get(id)!;
    const prevs = [...new Set(prevEventIds(ev))].filter((p) => p !== id && byId.has(p));
    const extremity = !prevChildren.has(id);
    const readers = (prevChildren.get(id) ?? 0) + (extremity ? 1 : 0);

    // The state before the event: the resolution of the states after its prev_events.
    let before: StateMap;
    let owned = true;
    if (prevs.length === 0) {
      before = new Map();
    } else if (prevs.length === 1) {
      const h = after.get(prevs[0])!;
      before = h.map;
      owned = --h.readers === 0;
      if (owned) after.delete(prevs[0]);
    } else {
      before = resolveState(
        prevs.map((p) => after.get(p)!.map),
        lookup,
        rules,
        { isRejected },
      );
      for (const p of prevs) if (--after.get(p)!.readers === 0) after.delete(p);
    }

    const verdict = authorize(ev, before, lookup, idOf, rules, isRejected);
    if (!verdict.allowed) {
      rejected.add(id);
      reasons.set(id, verdict.reason);
    }
    const k = keyOf(ev);
    if (verdict.allowed && k !== undefined) {
      const map = owned ? before : new Map(before);
      map.set(k, id);
      after.set(id, { map, readers });
    } else if (owned) {
      after.set(id, { map: before, readers });
    } else {
      // The same state as after the prev event: share its holder, read by this event's readers too.
      const h = after.get(prevs[0])!;
      h.readers += readers;
      after.set(id, h);
    }
    if (extremity) extremities.push(id);
  }

  for (const [id, n] of waiting) {
    if (n === 0) continue;
    rejected.add(id);
    reasons.set(id, 'on a cycle of prev_events / auth_events');
  }

  const states = extremities.map((id) => after.get(id)!.map);
  const state = states.length === 1 ? new Map(states[0]) : resolveState(states, lookup, rules, { isRejected });
  return { state, rejected, reasons };
}

/**
 * server-server-api "Checks performed on receipt of a PDU", steps 4 and 5: the authorization rules
 * against the event's auth events (with the rules on the auth events list, rooms/v12 rule 3 and rule 2
 * before it), then against the state before the event. In v12 the create event is the one the room id
 * names (rooms/v12 rule 2: it must not have been rejected). An auth event missing from the set rejects
 * the event: it cannot be authorized without it.
 */
function authorize(
  ev: PDU,
  before: StateMap,
  lookup: EventLookup,
  idOf: ReadonlyMap<PDU, string>,
  rules: RoomVersionRules,
  isRejected: (id: string) => boolean,
): AuthResult {
  const reject = (reason: string): AuthResult => ({ allowed: false, reason });
  const auth = new Map<StateKey, PDU>();
  if (ev.type !== 'm.room.create') {
    const authEvents: PDU[] = [];
    for (const a of authEventIds(ev)) {
      const aev = lookup(a);
      if (!aev) return reject(`auth event ${a} is unknown`);
      authEvents.push(aev);
    }
    const listed = checkAuthEventsList(ev, authEvents, rules, { isRejected: (e) => isRejected(idOf.get(e)!) });
    if (!listed.allowed) return listed;
    for (const aev of authEvents) auth.set(keyOf(aev)!, aev);
    if (rules.auth.roomIdFromCreateEvent) {
      const create = createEventOfRoom(ev.room_id, lookup);
      if (!create || isRejected(create.id)) return reject('the room id names no accepted m.room.create event');
      auth.set(stateKey('m.room.create', ''), create.event);
    }
  }
  const byAuthEvents = checkAuth(ev, lookupIn(auth), rules);
  if (!byAuthEvents.allowed) return reject(`against its auth events: ${byAuthEvents.reason}`);
  const byState = checkAuth(
    ev,
    (type, key) => {
      const id = before.get(stateKey(type, key));
      return id === undefined ? undefined : lookup(id);
    },
    rules,
  );
  if (!byState.allowed) return reject(`against the state before it: ${byState.reason}`);
  return byAuthEvents;
}
