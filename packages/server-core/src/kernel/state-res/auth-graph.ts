/**
 * Walks over the auth-event graph used by state resolution: the auth difference, the conflicted state
 * subgraph (v2.1) and the power events with their auth ancestry. Each walk visits an event once (sets of
 * ids, memoised values), so its cost is linear in the part of the auth DAG it covers.
 */
import type { PDU } from '../types.ts';
import type { EventLookup } from './events.ts';

/** Push the auth event ids of `ev` not yet in `seen` onto `stack`. */
function pushAuthIds(ev: PDU, seen: ReadonlySet<string>, stack: string[]): void {
  const refs = ev.auth_events;
  if (!refs) return;
  for (const r of refs) {
    const id = typeof r === 'string' ? r : r[0];
    if (!seen.has(id)) stack.push(id);
  }
}

/**
 * Add to `into` the auth chains of the events `from` (their auth events, recursively; not the events
 * themselves), not entering events for which `stop` holds (nor, therefore, their ancestors).
 * Returns the ids newly added.
 */
function walkAuthChains(
  from: Iterable<string>,
  lookup: EventLookup,
  into: Set<string>,
  stop?: ReadonlySet<string>,
): string[] {
  const added: string[] = [];
  const stack: string[] = [];
  for (const root of from) {
    const ev = lookup(root);
    if (!ev) continue;
    // Drain the stack root by root, so that later roots find most of their ancestry already visited.
    pushAuthIds(ev, into, stack);
    for (let id = stack.pop(); id !== undefined; id = stack.pop()) {
      if (into.has(id) || stop?.has(id)) continue;
      const a = lookup(id);
      if (!a) continue; // an unknown event is in no auth chain we can use
      into.add(id);
      added.push(id);
      pushAuthIds(a, into, stack);
    }
  }
  return added;
}

/**
 * The auth difference (rooms/v2 "Auth difference"): with Ci the full auth chain of state set Si (the union
 * of the auth chains of its events), ∪Ci − ∩Ci.
 *
 * Every Si holds the unconflicted events U plus its own conflicted events Ki, so Ci = AC(U) ∪ AC(Ki). An
 * event of AC(U) is in every Ci, hence never in the difference; so AC(U) is walked once, and each AC(Ki)
 * only outside it. An event outside AC(U) is in the difference iff it is in some but not all AC(Ki).
 */
export function authDifference(
  unconflictedIds: Iterable<string>,
  conflictedPerSet: readonly (readonly string[])[],
  lookup: EventLookup,
): Set<string> {
  const common = new Set<string>();
  walkAuthChains(unconflictedIds, lookup, common);
  const counts = new Map<string, number>();
  for (const ki of conflictedPerSet) {
    for (const id of walkAuthChains(ki, lookup, new Set(), common)) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const diff = new Set<string>();
  for (const [id, n] of counts) if (n < conflictedPerSet.length) diff.add(id);
  return diff;
}

/** The ids of an event's auth events that the lookup knows. */
function knownAuthIds(id: string, lookup: EventLookup): string[] {
  const ev = lookup(id);
  const out: string[] = [];
  for (const r of ev?.auth_events ?? []) {
    const a = typeof r === 'string' ? r : r[0];
    if (lookup(a)) out.push(a);
  }
  return out;
}

/**
 * Visit every event reachable from `roots` through auth events, each after all of its auth events
 * (depth-first post-order, iterative so that long chains do not exhaust the call stack). An edge closing a
 * cycle is ignored. `visit` receives the event's known auth event ids.
 */
function postOrder(roots: Iterable<string>, lookup: EventLookup, visit: (id: string, parents: readonly string[]) => void): void {
  const OPEN = 1;
  const DONE = 2;
  const state = new Map<string, number>();
  const parentsOf = new Map<string, string[]>();
  for (const root of roots) {
    if (state.has(root) || !lookup(root)) continue;
    const stack = [root];
    while (stack.length > 0) {
      const id = stack[stack.length - 1];
      const st = state.get(id);
      if (st === DONE) {
        stack.pop();
      } else if (st === undefined) {
        state.set(id, OPEN);
        const parents = knownAuthIds(id, lookup);
        parentsOf.set(id, parents);
        for (const p of parents) if (!state.has(p)) stack.push(p);
      } else {
        state.set(id, DONE);
        stack.pop();
        visit(id, parentsOf.get(id)!);
        parentsOf.delete(id);
      }
    }
  }
}

/**
 * The conflicted state subgraph (rooms/v12 "Conflicted state subgraph"): the union of all auth-event
 * paths between any pair of events of the conflicted state set, endpoints included. An event lies on such
 * a path iff it is reachable from a conflicted event and a conflicted event is reachable from it; that is
 * computed for the auth ancestry of the conflicted events with one memoised walk. The result holds every
 * conflicted event (each is at least its own trivial path).
 */
export function conflictedStateSubgraph(conflicted: ReadonlySet<string>, lookup: EventLookup): Set<string> {
  const reachesConflicted = new Map<string, boolean>();
  const out = new Set<string>();
  postOrder(conflicted, lookup, (id, parents) => {
    let r = false;
    for (const p of parents) {
      if (conflicted.has(p) || reachesConflicted.get(p) === true) {
        r = true;
        break;
      }
    }
    reachesConflicted.set(id, r);
    // A visited event is a conflicted event or an auth ancestor of one: on a path iff it reaches another.
    if (r || conflicted.has(id)) out.add(id);
  });
  return out;
}

/**
 * Step 1 of the algorithm (rooms/v2 "Algorithm"): the set X of the power events of the full conflicted
 * set together with "the events in the auth chain of P which also belong to the full conflicted set" (the
 * whole auth chain, also through events outside that set), as the graph the reverse topological power
 * ordering sorts: each event of X mapped to its auth events that are in X. ("The DAG formed by auth
 * events" is read as the auth-event edges between events of X, as Synapse and ruma read it.)
 */
export function powerEventGraph(
  powerEvents: readonly string[],
  fullConflictedSet: ReadonlySet<string>,
  lookup: EventLookup,
): Map<string, readonly string[]> {
  const ancestry = new Set<string>(powerEvents);
  walkAuthChains(powerEvents, lookup, ancestry);
  const graph = new Map<string, readonly string[]>();
  for (const id of ancestry) {
    if (!fullConflictedSet.has(id)) continue;
    const edges: string[] = [];
    for (const r of lookup(id)?.auth_events ?? []) {
      const a = typeof r === 'string' ? r : r[0];
      if (fullConflictedSet.has(a) && !edges.includes(a)) edges.push(a);
    }
    graph.set(id, edges);
  }
  return graph;
}
