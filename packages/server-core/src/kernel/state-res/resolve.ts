/**
 * State resolution v2 (room versions 2–11; spec: rooms/v2 "State resolution") and v2.1 (room version 12;
 * rooms/v12 "State resolution", MSC4297). Pure: data in, data out, events looked up through a function.
 */
import type { RoomVersionRules } from '../room-versions.ts';
import { stateKey, type PDU, type StateKey, type StateMap } from '../types.ts';
import { authEventTypes, checkAuth, userPowerLevel } from './auth.ts';
import { authDifference, conflictedStateSubgraph, powerEventGraph } from './auth-graph.ts';
import { authEventsState, type EventLookup, isPowerEvent, keyOf, lookupIn, tsOf } from './events.ts';
import { mainlineSort, reverseTopologicalPowerSort, type PowerSortKey } from './ordering.ts';

export interface ResolveOptions {
  /**
   * Events already known to be rejected. The iterative auth checks never admit them into the state and
   * never use them as auth events (rooms/v2 "Rejected events": "Rejected auth events are deliberately
   * excluded from use in the iterative auth checks"). The spec wants events rejected only against the
   * state before them "handled as usual": to follow it, name here the events rejected against their auth
   * events (Synapse skips every rejected event).
   */
  isRejected?: (eventId: string) => boolean;
}

const POWER_LEVELS_KEY = stateKey('m.room.power_levels', '');

/**
 * The unconflicted state map and the conflicted state set (rooms/v2 "Unconflicted state map and
 * conflicted state set"): a key present in every state set with the same event is unconflicted; every
 * other value is conflicted. Also returns, for each state set, its conflicted events.
 */
export function splitConflicted(stateSets: readonly StateMap[]): {
  unconflicted: StateMap;
  conflicted: Set<string>;
  conflictedPerSet: string[][];
} {
  const unconflicted: StateMap = new Map();
  const conflicted = new Set<string>();
  const conflictedPerSet: string[][] = stateSets.map(() => []);
  if (stateSets.length === 0) return { unconflicted, conflicted, conflictedPerSet };
  const first = stateSets[0];
  // How many keys of the first set each set has: the others hold keys the first lacks iff that is short
  // of their size.
  const shared = stateSets.map(() => 0);
  for (const [k, v] of first) {
    let same = true;
    for (let i = 1; i < stateSets.length; i++) {
      const w = stateSets[i].get(k);
      if (w === undefined) same = false;
      else {
        shared[i]++;
        if (w !== v) same = false;
      }
    }
    if (same) {
      unconflicted.set(k, v);
      continue;
    }
    for (let i = 0; i < stateSets.length; i++) {
      const w = stateSets[i].get(k);
      if (w === undefined) continue;
      conflicted.add(w);
      conflictedPerSet[i].push(w);
    }
  }
  for (let i = 1; i < stateSets.length; i++) {
    const s = stateSets[i];
    if (shared[i] === s.size) continue;
    for (const [k, v] of s) {
      if (first.has(k)) continue;
      conflicted.add(v);
      conflictedPerSet[i].push(v);
    }
  }
  return { unconflicted, conflicted, conflictedPerSet };
}

/**
 * A room state being built by the iterative auth checks: `base` (never modified) under the entries the
 * checks set.
 */
class LayeredState {
  readonly top = new Map<StateKey, string>();
  constructor(private readonly base: ReadonlyMap<StateKey, string>) {}
  get(k: StateKey): string | undefined {
    return this.top.get(k) ?? this.base.get(k);
  }
  set(k: StateKey, id: string): void {
    this.top.set(k, id);
  }
}

/**
 * The iterative auth checks (rooms/v2 "Iterative auth checks"): apply each state event in order if the
 * authorization rules allow it, judged by its auth events, where each key the rules need (the auth events
 * selection for the event) is taken from the state being built when present there. Rejected events are
 * skipped, and rejected events are not used as auth events.
 */
function iterativeAuthChecks(
  eventIds: readonly string[],
  state: LayeredState,
  lookup: EventLookup,
  rules: RoomVersionRules,
  isRejected: ((eventId: string) => boolean) | undefined,
): void {
  for (const id of eventIds) {
    if (isRejected?.(id)) continue;
    const ev = lookup(id);
    const k = ev && keyOf(ev);
    if (!ev || k === undefined) continue;
    const auth = authEventsState(ev, lookup, rules, isRejected);
    for (const [type, key] of authEventTypes(ev, rules)) {
      const sk = stateKey(type, key);
      const sid = state.get(sk);
      if (sid === undefined || isRejected?.(sid)) continue;
      const se = lookup(sid);
      if (se) auth.set(sk, se);
    }
    if (checkAuth(ev, lookupIn(auth), rules).allowed) state.set(k, id);
  }
}

/**
 * The power level of an event's sender "when looking at [its] auth_events" (rooms/v2 "Reverse topological
 * power ordering"), as the authorization rules compute it from that state (v12 creators: infinite).
 */
export function senderPowerLevel(ev: PDU, lookup: EventLookup, rules: RoomVersionRules): number {
  return userPowerLevel(ev.sender, lookupIn(authEventsState(ev, lookup, rules, undefined)), rules);
}

/**
 * Resolve state sets (each a {@link StateMap}) for a room version whose rules name state resolution v2 or
 * v2.1 (rooms/v2 and rooms/v12 "State resolution", "Algorithm"). `lookup` must know the events of the
 * state sets and of their auth chains; unknown conflicted events are left out. The result is a new map.
 */
export function resolveState(
  stateSets: readonly StateMap[],
  lookup: EventLookup,
  rules: RoomVersionRules,
  options: ResolveOptions = {},
): StateMap {
  if (rules.stateRes === 'v1') throw new Error(`state resolution v1 (room version ${rules.id}) is not implemented`);
  const v21 = rules.stateRes === 'v2.1';
  const { isRejected } = options;
  if (stateSets.length === 0) return new Map();
  if (stateSets.length === 1) return new Map(stateSets[0]);

  const { unconflicted, conflicted, conflictedPerSet } = splitConflicted(stateSets);
  if (conflicted.size === 0) return unconflicted;

  // Full conflicted set: the conflicted state set ∪ the auth difference (rooms/v2 "Full conflicted set"),
  // ∪ (v2.1) the conflicted state subgraph (rooms/v12 "Full conflicted set"). Only state events we can
  // look up take part.
  const full = new Set<string>();
  const addKnownState = (id: string) => {
    const ev = lookup(id);
    if (ev && typeof ev.state_key === 'string') full.add(id);
  };
  conflicted.forEach(addKnownState);
  authDifference(unconflicted.values(), conflictedPerSet, lookup).forEach(addKnownState);
  if (v21) conflictedStateSubgraph(conflicted, lookup).forEach(addKnownState);

  // 1. The power events of the full conflicted set, with the events of their auth chains that belong to
  //    the full conflicted set, sorted by the reverse topological power ordering.
  const powerEvents: string[] = [];
  for (const id of full) if (isPowerEvent(lookup(id)!)) powerEvents.push(id);
  const graph = powerEventGraph(powerEvents, full, lookup);
  const sortKey = (id: string): PowerSortKey => {
    const ev = lookup(id)!;
    return { power: senderPowerLevel(ev, lookup, rules), originServerTs: tsOf(ev), eventId: id };
  };
  const sortedPowerEvents = reverseTopologicalPowerSort(graph, sortKey);

  // 2. The iterative auth checks from the unconflicted state map (v2) or, since v2.1, from an empty state
  //    map (rooms/v12 "Algorithm", step 2), giving the partially resolved state.
  const state = new LayeredState(v21 ? new Map() : unconflicted);
  iterativeAuthChecks(sortedPowerEvents, state, lookup, rules, isRejected);

  // 3. The remaining events, in the mainline ordering based on the partially resolved power levels.
  const remaining: string[] = [];
  for (const id of full) if (!graph.has(id)) remaining.push(id);
  const sortedRemaining = mainlineSort(remaining, state.get(POWER_LEVELS_KEY), lookup);

  // 4. The iterative auth checks on the partially resolved state with those events.
  iterativeAuthChecks(sortedRemaining, state, lookup, rules, isRejected);

  // 5. Every key of the unconflicted state map takes its unconflicted event. (The unconflicted map is
  //    ours and no longer read, so it becomes the result.)
  const resolved = unconflicted;
  for (const [k, id] of state.top) if (!resolved.has(k)) resolved.set(k, id);
  return resolved;
}
