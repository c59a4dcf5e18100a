/**
 * The two orderings of state resolution v2 (rooms/v2 "State resolution", Definitions): the reverse
 * topological power ordering and the mainline ordering.
 */
import { compareCodePoints } from '../canonical-json.ts';
import type { PDU } from '../types.ts';
import { type EventLookup, tsOf } from './events.ts';

/** What the reverse topological power ordering compares an event by. */
export interface PowerSortKey {
  /** The power level of the event's sender according to its own auth events (may be `Infinity`: v12 creators). */
  power: number;
  originServerTs: number;
  eventId: string;
}

/**
 * "x < y if 1. x's sender has *greater* power level than y's sender, when looking at their respective
 * auth_events; or 2. the senders have the same power level, but x's origin_server_ts is *less* than y's
 * origin_server_ts; or 3. … the same origin_server_ts, but x's event_id is *less* than y's event_id."
 */
export function comparePowerSortKeys(x: PowerSortKey, y: PowerSortKey): number {
  if (x.power !== y.power) return x.power > y.power ? -1 : 1;
  if (x.originServerTs !== y.originServerTs) return x.originServerTs < y.originServerTs ? -1 : 1;
  return compareCodePoints(x.eventId, y.eventId);
}

/** A binary min-heap under `less`. */
class MinHeap<T> {
  private readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}
  get size(): number {
    return this.items.length;
  }
  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(a[i], a[parent])) break;
      [a[i], a[parent]] = [a[parent], a[i]];
      i = parent;
    }
  }
  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l], a[m])) m = l;
        if (r < a.length && this.less(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

/**
 * The reverse topological power ordering of a set of events: "the lexicographically smallest topological
 * ordering based on the DAG formed by auth events … ordered from earliest event to latest", found "using
 * Kahn's algorithm for topological sorting, and at each step selecting, among all the candidate vertices,
 * the smallest vertex" under {@link comparePowerSortKeys}.
 *
 * `authParents` maps every event of the set to the events of the set it must come after (its auth events
 * within the set). Events on a cycle (impossible with hash event ids) are left out.
 */
export function reverseTopologicalPowerSort(
  authParents: ReadonlyMap<string, readonly string[]>,
  sortKey: (eventId: string) => PowerSortKey,
): string[] {
  const pending = new Map<string, number>();
  const children = new Map<string, string[]>();
  const heap = new MinHeap<PowerSortKey>((a, b) => comparePowerSortKeys(a, b) < 0);
  for (const [id, parents] of authParents) {
    let n = 0;
    for (const p of parents) {
      if (p === id || !authParents.has(p)) continue;
      n++;
      const c = children.get(p);
      if (c) c.push(id);
      else children.set(p, [id]);
    }
    pending.set(id, n);
    if (n === 0) heap.push(sortKey(id));
  }
  const out: string[] = [];
  for (let k = heap.pop(); k !== undefined; k = heap.pop()) {
    out.push(k.eventId);
    for (const c of children.get(k.eventId) ?? []) {
      const n = pending.get(c)! - 1;
      pending.set(c, n);
      if (n === 0) heap.push(sortKey(c));
    }
  }
  return out;
}

/** The `m.room.power_levels` event an event lists in its `auth_events`, if any (the first, if several). */
function powerLevelsParent(ev: PDU, lookup: EventLookup): string | undefined {
  for (const r of ev.auth_events ?? []) {
    const id = typeof r === 'string' ? r : r[0];
    const a = lookup(id);
    if (a && a.type === 'm.room.power_levels' && a.state_key === '') return id;
  }
  return undefined;
}

/**
 * Mainline positions relative to the power levels event `p0` (rooms/v2 "Mainline ordering"): the mainline
 * of P0 is [P0, P1, …, Pn], each the power levels event in the auth events of the one before. The mainline
 * position of an event e is the index i of the first ej (j ≥ 1, walking e's power levels auth events) that
 * is on the mainline, or ∞ when none is. Positions of power levels events are memoised, since most events
 * share their ancestry.
 */
export function mainlinePositions(p0: string | undefined, lookup: EventLookup): (ev: PDU) => number {
  const index = new Map<string, number>();
  const seen = new Set<string>();
  for (let p = p0; p !== undefined && !seen.has(p); ) {
    seen.add(p);
    index.set(p, index.size);
    const ev = lookup(p);
    p = ev ? powerLevelsParent(ev, lookup) : undefined;
  }
  const memo = new Map<string, number>();
  const positionOfPowerLevels = (start: string): number => {
    const path: string[] = [];
    let pos = Infinity;
    for (let p: string | undefined = start; p !== undefined; ) {
      const known = index.get(p) ?? memo.get(p);
      if (known !== undefined) {
        pos = known;
        break;
      }
      if (path.includes(p)) break; // a cycle: no mainline ancestor
      path.push(p);
      const ev = lookup(p);
      p = ev ? powerLevelsParent(ev, lookup) : undefined;
    }
    for (const p of path) memo.set(p, pos);
    return pos;
  };
  return (ev) => {
    const p1 = powerLevelsParent(ev, lookup);
    return p1 === undefined ? Infinity : positionOfPowerLevels(p1);
  };
}

/**
 * The mainline ordering of `eventIds` based on the power levels event `p0`: x < y if x's mainline position
 * is *greater*, then by smaller origin_server_ts, then by smaller event_id. Unknown events are left out.
 */
export function mainlineSort(eventIds: Iterable<string>, p0: string | undefined, lookup: EventLookup): string[] {
  const position = mainlinePositions(p0, lookup);
  const keyed: { id: string; pos: number; ts: number }[] = [];
  for (const id of eventIds) {
    const ev = lookup(id);
    if (ev) keyed.push({ id, pos: position(ev), ts: tsOf(ev) });
  }
  keyed.sort((x, y) => {
    if (x.pos !== y.pos) return x.pos > y.pos ? -1 : 1;
    if (x.ts !== y.ts) return x.ts < y.ts ? -1 : 1;
    return compareCodePoints(x.id, y.id);
  });
  return keyed.map((k) => k.id);
}
