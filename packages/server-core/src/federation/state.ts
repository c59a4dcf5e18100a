/**
 * Room state for federation: states after events, resolution of several states (state resolution
 * v2/v2.1 from the kernel, fed with the events it needs), and staging new state groups.
 */
import { resolveState } from '../kernel/state-res/index.ts';
import type { RoomVersionRules } from '../kernel/room-versions.ts';
import { refId, type PDU, type StateMap } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import type { StoredEvent } from '../store/records.ts';
import { STATE_SNAPSHOT_INTERVAL } from '../store/rooms.ts';
import type { WriteBatch } from '../store/store.ts';

/** An event in the form the kernel wants: the federation PDU with its `event_id`. */
export function kernelPdu(e: StoredEvent): PDU {
  return { ...e.pdu, event_id: e.eventId };
}

/** A bounded cache of kernel PDUs (events never change once stored, redaction aside: callers drop those). */
export class PduCache {
  private map = new Map<string, PDU>();
  constructor(private readonly hs: Homeserver, private readonly max = 50_000) {}
  set(id: string, p: PDU): void {
    if (this.map.size >= this.max) this.map.clear();
    this.map.set(id, p);
  }
  forget(id: string): void {
    this.map.delete(id);
  }
  peek(id: string): PDU | undefined {
    return this.map.get(id);
  }
  /** Load events (and, with `withAuthChains`, their whole auth chains) into the cache; returns a lookup. */
  async load(ids: Iterable<string>, withAuthChains: boolean): Promise<(id: string) => PDU | undefined> {
    const seen = new Set<string>(ids);
    let frontier = [...seen];
    while (frontier.length) {
      const missing = frontier.filter((id) => !this.map.has(id));
      if (missing.length) for (const [id, e] of await this.hs.store.rooms.events(missing)) this.set(id, kernelPdu(e));
      if (!withAuthChains) break;
      const next: string[] = [];
      for (const id of frontier) {
        for (const a of this.map.get(id)?.auth_events ?? []) {
          const aid = refId(a);
          if (!seen.has(aid)) {
            seen.add(aid);
            next.push(aid);
          }
        }
      }
      frontier = next;
    }
    return (id) => this.map.get(id);
  }
}

/**
 * A room state as a base state plus a few changes (keys added or replaced), without copying the base:
 * the state after a state event in a room of 10,000 members costs one entry, not 10,000. Reads look
 * through the layers (at most `MAX_LAYERS` deep: a deeper one is flattened into a plain Map once, so
 * the cost stays amortised). It is a read-only Map: it is shared (caches, several events' states), so
 * `set`, `delete` and `clear` throw; copy it (`new Map(state)`) to change it.
 */
export class LayeredState extends Map<string, string> {
  /** The state under these changes. */
  readonly base: StateMap;
  /** Layers down to the first plain Map. */
  readonly depth: number;
  private readonly added: number;
  private sealed = false;
  static readonly MAX_LAYERS = 16;

  /** `base` with `changes` applied (keys added or replaced). */
  static over(base: StateMap, changes: Iterable<readonly [string, string]>): StateMap {
    let b = base;
    if (b instanceof LayeredState && b.depth >= LayeredState.MAX_LAYERS) b = new Map(b);
    return new LayeredState(b, changes);
  }

  private constructor(base: StateMap, changes: Iterable<readonly [string, string]>) {
    super();
    this.base = base;
    this.depth = base instanceof LayeredState ? base.depth + 1 : 1;
    let added = 0;
    for (const [k, v] of changes) {
      if (!super.has(k) && !base.has(k)) added++;
      super.set(k, v);
    }
    this.added = added;
    this.sealed = true;
  }

  override get(key: string): string | undefined {
    const own = super.get(key);
    return own !== undefined ? own : this.base.get(key);
  }
  override has(key: string): boolean {
    return super.has(key) || this.base.has(key);
  }
  override get size(): number {
    return this.base.size + this.added;
  }
  override set(key: string, value: string): this {
    if (this.sealed) throw new TypeError('LayeredState is read-only: copy it to change it');
    return super.set(key, value);
  }
  override delete(_key: string): boolean {
    throw new TypeError('LayeredState is read-only: copy it to change it');
  }
  override clear(): void {
    throw new TypeError('LayeredState is read-only: copy it to change it');
  }
  /** This layer's own changes. */
  ownEntries(): IterableIterator<[string, string]> {
    return super.entries();
  }
  override *entries(): MapIterator<[string, string]> {
    const seen = new Set<string>();
    let m: StateMap = this;
    while (m instanceof LayeredState) {
      for (const e of m.ownEntries()) {
        if (seen.has(e[0])) continue;
        seen.add(e[0]);
        yield e;
      }
      m = m.base;
    }
    for (const e of m) if (!seen.has(e[0])) yield e;
  }
  override *keys(): MapIterator<string> {
    for (const [k] of this.entries()) yield k;
  }
  override *values(): MapIterator<string> {
    for (const [, v] of this.entries()) yield v;
  }
  override [Symbol.iterator](): MapIterator<[string, string]> {
    return this.entries();
  }
  override forEach(fn: (value: string, key: string, map: Map<string, string>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }
}

function sameState(a: StateMap, b: StateMap): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/** Resolve several states of a room (one state is returned as is). */
export async function resolveStates(cache: PduCache, states: StateMap[], rules: RoomVersionRules): Promise<StateMap> {
  const distinct: StateMap[] = [];
  for (const s of states) if (!distinct.some((d) => sameState(d, s))) distinct.push(s);
  if (distinct.length === 1) return distinct[0];
  if (distinct.length === 0) return new Map();
  const ids = new Set<string>();
  for (const s of distinct) for (const id of s.values()) ids.add(id);
  const lookup = await cache.load(ids, true);
  return resolveState(distinct, lookup, rules);
}

/**
 * Stage a state group holding `state`: a delta over `base` when that is small and adds or replaces
 * keys only, else a snapshot. Returns the new group's id.
 */
/**
 * A state event that replaces an earlier one (`prevId`, the state before it held under its key) records what it
 * replaces, for clients' `unsigned.replaces_state` / `prev_content` / `prev_sender` (client-server API, "Room
 * events": unsigned data).
 */
export async function recordReplacedState(hs: Homeserver, stored: StoredEvent, prevId: string | undefined): Promise<void> {
  if (!prevId) return;
  const prev = await hs.store.rooms.event(prevId);
  stored.replacesState = prevId;
  if (prev) {
    stored.prevContent = prev.pdu.content;
    stored.prevSender = prev.sender;
  }
}

export async function stageStateGroup(hs: Homeserver, b: WriteBatch, roomId: string, state: StateMap, base?: { id: number; state: StateMap }): Promise<number> {
  const id = b.newStateGroupId();
  if (base) {
    const rec = await hs.store.rooms.stateGroupRecord(base.id);
    let removals = false;
    for (const k of base.state.keys()) if (!state.has(k)) removals = true;
    const delta: [string, string][] = [];
    for (const [k, v] of state) if (base.state.get(k) !== v) delta.push([k, v]);
    if (rec && !removals && delta.length <= 256 && rec.chain < STATE_SNAPSHOT_INTERVAL) {
      b.put('state_groups', { id, roomId, prev: base.id, entries: delta, chain: rec.chain + 1 });
      return id;
    }
  }
  b.put('state_groups', { id, roomId, entries: [...state], chain: 0 });
  return id;
}
