/**
 * CachingEngine: a StorageEngine over another one (IndexedDB in the Service Worker) that answers most
 * reads from memory. Every IndexedDB transaction is a round trip to the browser's storage process
 * (~0.2–0.6 ms); an incremental /sync or a send makes tens of small reads, almost all of small,
 * per-node object stores. It relies on one fact: THIS ENGINE IS THE ONLY WRITER of the inner database
 * (the worker owns it; tabs share the worker), so every change passes through `write` below.
 *
 * Two kinds of cache:
 *
 * - Mirrors: whole object stores held in a MemoryEngine built from the same migrations (so keys,
 *   indexes, ranges, ordering and cloning behave exactly as MemoryEngine's, which the conformance
 *   suites pin to IndexedDB's). A mirror is loaded lazily, store by store: the first read that touches
 *   a mirrored store loads all of it (one `query`) in that read's inner transaction, so a restarted
 *   worker pays about what it paid before for its first requests, and nothing for stores it does not
 *   use. A store holding more rows than its limit (`maxMirrorRows`, `mirrorLimits`) is not mirrored for
 *   the life of this engine: its reads go to the inner engine, so a store that grows without bound
 *   (`txns`: one row per send) costs at most one bounded load per start.
 * - Read-through LRU caches of `get` for big stores whose rows are immutable or only ever replaced whole
 *   (`events` by id, `state_groups` by id): hits, and misses (the key is absent), are kept.
 *
 * Writes: the ops go to the inner engine unchanged (atomic there). Only after it succeeds are the same
 * ops applied, synchronously, to the loaded mirrors (`MemoryEngine.writeNow`) and to the LRU caches
 * (put: cached; delete: cached as absent; deleteRange: entries in range dropped). The values are copied
 * when `write` is called (as IndexedDB does), so a caller changing its objects afterwards changes nothing.
 * A failed write touches no cache.
 *
 * Reads: `read(fn)` gives `fn` a ReadTx that routes each call: to a loaded mirror (a resolved promise: a
 * microtask, which keeps an IndexedDB transaction alive), to an LRU hit, or else to ONE inner read
 * transaction, opened lazily at the first call that needs it and shared by the rest of `fn`. Loading a
 * mirror happens through that same inner transaction (its own requests), never by awaiting anything
 * foreign inside it.
 *
 * Coherence: a value read from the inner engine may enter a cache (a mirror load, an LRU fill) only if
 * the inner transaction began with no write in flight and no write started or finished until the value
 * arrived (a write counter, `epoch`, and the number in flight). Then the value is exactly the state after
 * every completed write, and every later write is applied on top of it; the check and the install happen
 * in one synchronous step. Otherwise the value is just returned, not cached. (IndexedDB never lets a write
 * finish while an earlier read transaction is live, so this rarely refuses anything.)
 *
 * Isolation: each call sees whole write batches. As with MemoryEngine (not raw IndexedDB), one `read(fn)`
 * is not a snapshot across calls: a batch that completes while `fn` runs may be seen by its later calls
 * (mirrors are updated when the inner write completes). The Store never relied on more (it runs over
 * MemoryEngine in Node).
 */
import { inRange, keyOf, schemaOf, type Key, type Migration, type QueryOptions, type ReadTx, type StorageEngine, type StoreSchema, type WriteOp } from './engine.ts';
import { MemoryEngine } from './memory-engine.ts';

/** The homeserver's small, hot object stores (schema.ts): mirrored whole by default. */
export const MIRRORED_STORES: readonly string[] = [
  'meta', 'accounts', 'devices', 'access_tokens', 'rooms', 'current_state', 'memberships', 'account_data', 'receipts',
  'filters', 'push_rules', 'presence', 'device_keys', 'one_time_keys', 'fallback_keys', 'cross_signing_keys',
  'key_signatures', 'device_list_changes', 'aliases', 'txns', 'to_device', 'outbound', 'room_key_versions',
];
/** The big stores read by id: LRU-cached `get`s by default (store → number of keys kept). */
export const CACHED_STORES: Readonly<Record<string, number>> = { events: 4096, state_groups: 1024 };
/** Default row limits of mirrors that can grow large (others: `maxMirrorRows`). */
export const MIRROR_LIMITS: Readonly<Record<string, number>> = { txns: 2000, outbound: 1000 };

export interface CachingEngineOptions {
  /** The inner engine's schema history (the mirrors' MemoryEngine is built from it). */
  migrations: readonly Migration[];
  /** Stores held whole in memory. Default: the MIRRORED_STORES the schema has. */
  mirror?: readonly string[];
  /** Stores whose `get`s are LRU-cached, with each cache's size in keys. Default: the CACHED_STORES the schema has. */
  lru?: Readonly<Record<string, number>>;
  /** A store with more rows than this, when first loaded, is left to the inner engine. Default 5000. */
  maxMirrorRows?: number;
  /** Row limits of particular stores, overriding `maxMirrorRows`. Default: MIRROR_LIMITS. */
  mirrorLimits?: Readonly<Record<string, number>>;
}

/** What the engine did (tests, benchmarks). */
export interface CachingEngineStats {
  /** Inner read transactions opened. */
  innerReads: number;
  /** Calls answered by a mirror. */
  mirrorReads: number;
  /** Mirror loads installed (one per store). */
  mirrorLoads: number;
  lruHits: number;
  lruMisses: number;
}

interface InnerTx {
  tx: ReadTx;
  /** No write was in flight when it began. */
  clean: boolean;
  /** The write epoch when it began. */
  epoch: number;
}
interface LruEntry {
  key: Key;
  /** undefined: the key is known to be absent. */
  value: object | undefined;
}

function stateError(message: string): Error {
  const e = new Error(message);
  e.name = 'InvalidStateError';
  return e;
}

/** An injective string for a key (number/string/array), equal for keys indexedDB.cmp finds equal (0 and -0 too). */
function keyString(k: Key): string {
  if (typeof k === 'number') {
    if (Number.isNaN(k)) throw new TypeError('not a valid key');
    return `n${String(k)}`; // String(-0) is '0'
  }
  if (typeof k === 'string') return `s${JSON.stringify(k)}`;
  if (Array.isArray(k)) return `[${k.map(keyString).join(',')}]`;
  throw new TypeError('not a valid key');
}

export class CachingEngine implements StorageEngine {
  readonly stats: CachingEngineStats = { innerReads: 0, mirrorReads: 0, mirrorLoads: 0, lruHits: 0, lruMisses: 0 };
  private readonly mirror: MemoryEngine;
  private readonly mirrored: ReadonlySet<string>;
  private readonly loaded = new Set<string>();
  /** Mirrored stores found too big to mirror (left to the inner engine for the life of this engine). */
  private readonly tooBig = new Set<string>();
  private readonly caches = new Map<string, { size: number; entries: Map<string, LruEntry> }>();
  private readonly schema: Record<string, StoreSchema>;
  private readonly maxRows: number;
  private readonly limits: Readonly<Record<string, number>>;
  /** Bumped when a write is handed to the inner engine and again when it settles. */
  private epoch = 0;
  private inflight = 0;
  /** Stores some read is loading (other reads do not load them again meanwhile). */
  private readonly loading = new Set<string>();
  private closed = false;

  constructor(private readonly inner: StorageEngine, opts: CachingEngineOptions) {
    this.schema = schemaOf(opts.migrations);
    const has = (s: string) => Object.prototype.hasOwnProperty.call(this.schema, s);
    const mirror = opts.mirror ?? MIRRORED_STORES.filter(has);
    const lru = opts.lru ?? Object.fromEntries(Object.entries(CACHED_STORES).filter(([s]) => has(s)));
    for (const s of [...mirror, ...Object.keys(lru)]) if (!has(s)) throw new Error(`CachingEngine: no object store ${s} in the schema`);
    for (const [s, size] of Object.entries(lru)) {
      if (mirror.includes(s)) throw new Error(`CachingEngine: ${s} is both mirrored and LRU-cached`);
      if (!(size >= 1)) throw new RangeError(`CachingEngine: LRU size of ${s} must be at least 1`);
      this.caches.set(s, { size, entries: new Map() });
    }
    this.mirrored = new Set(mirror);
    this.mirror = new MemoryEngine(opts.migrations);
    this.maxRows = opts.maxMirrorRows ?? 5000;
    this.limits = opts.mirrorLimits ?? MIRROR_LIMITS;
  }

  private live(): void {
    if (this.closed) throw stateError('the engine is closed');
  }

  /** May a value read in `it` enter a cache now? (See "Coherence" above.) */
  private canFill(it: InnerTx): boolean {
    return it.clean && this.inflight === 0 && this.epoch === it.epoch && !this.closed;
  }

  async read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    this.live();
    let opened: Promise<InnerTx> | undefined;
    let release: (() => void) | undefined;
    const loads = new Map<string, Promise<void>>();

    // The inner transaction, opened at first need and held until `fn` settles.
    const innerTx = (): Promise<InnerTx> => {
      if (!opened) {
        const clean = this.inflight === 0;
        const epoch = this.epoch;
        const hold = new Promise<void>((r) => (release = r));
        this.stats.innerReads++;
        opened = new Promise<InnerTx>((resolve, reject) => {
          this.inner.read(async (tx) => {
            resolve({ tx, clean, epoch });
            await hold;
          }).catch(reject);
        });
      }
      return opened;
    };

    const mirrorReady = async (store: string): Promise<boolean> => {
      if (!this.mirrored.has(store) || this.tooBig.has(store)) return false;
      if (!this.loaded.has(store)) {
        let load = loads.get(store);
        if (!load && !this.loading.has(store)) loads.set(store, (load = this.loadMirror(store, innerTx)));
        if (load) await load;
      }
      return this.loaded.has(store);
    };

    const rtx: ReadTx = {
      get: async <V>(store: string, key: Key): Promise<V | undefined> => {
        this.live();
        if (await mirrorReady(store)) {
          this.stats.mirrorReads++;
          return this.mirror.read((m) => m.get<V>(store, key));
        }
        const cache = this.caches.get(store);
        let ks: string | undefined;
        if (cache) {
          try {
            ks = keyString(key);
          } catch {
            ks = undefined; // not a valid key: let the inner engine reject it
          }
        }
        if (cache && ks !== undefined) {
          const hit = cache.entries.get(ks);
          if (hit) {
            this.stats.lruHits++;
            cache.entries.delete(ks);
            cache.entries.set(ks, hit);
            return hit.value === undefined ? undefined : (structuredClone(hit.value) as V);
          }
          this.stats.lruMisses++;
          const it = await innerTx();
          const v = await it.tx.get<V>(store, key);
          if (this.canFill(it)) this.remember(store, ks, structuredClone(key), v === undefined ? undefined : (structuredClone(v) as object));
          return v;
        }
        return (await innerTx()).tx.get<V>(store, key);
      },
      query: async <V>(store: string, opts?: QueryOptions): Promise<V[]> => {
        this.live();
        if (await mirrorReady(store)) {
          this.stats.mirrorReads++;
          return this.mirror.read((m) => m.query<V>(store, opts));
        }
        return (await innerTx()).tx.query<V>(store, opts);
      },
      count: async (store: string, opts?: QueryOptions): Promise<number> => {
        this.live();
        if (await mirrorReady(store)) {
          this.stats.mirrorReads++;
          return this.mirror.read((m) => m.count(store, opts));
        }
        return (await innerTx()).tx.count(store, opts);
      },
    };
    try {
      return await fn(rtx);
    } finally {
      release?.();
    }
  }

  /**
   * Load a mirrored store through the calling read's inner transaction. Installs it only if no write
   * overlapped (else this read is served by the inner engine, and a later read tries again).
   */
  private async loadMirror(store: string, innerTx: () => Promise<InnerTx>): Promise<void> {
    this.loading.add(store);
    try {
      const it = await innerTx();
      if (!this.canFill(it)) return;
      const max = this.limits[store] ?? this.maxRows;
      const rows = await it.tx.query<object>(store, { limit: max + 1 });
      // One synchronous step from the check to the install: no write can start or finish in between.
      if (!this.canFill(it) || this.loaded.has(store)) return;
      if (rows.length > max) {
        this.tooBig.add(store);
        return;
      }
      this.mirror.writeNow(rows.map((value) => ({ op: 'put', store, value })));
      this.loaded.add(store);
      this.stats.mirrorLoads++;
    } finally {
      this.loading.delete(store);
    }
  }

  /** Put an entry in an LRU cache (most recent last), evicting the oldest beyond its size. */
  private remember(store: string, ks: string, key: Key, value: object | undefined): void {
    const cache = this.caches.get(store)!;
    cache.entries.delete(ks);
    cache.entries.set(ks, { key, value });
    while (cache.entries.size > cache.size) cache.entries.delete(cache.entries.keys().next().value!);
  }

  async write(ops: WriteOp[]): Promise<void> {
    this.live();
    // Copy now what the caches will take (a caller may change its objects once write returns a promise).
    let copies: WriteOp[] | undefined;
    const touched = new Set<string>();
    try {
      copies = [];
      for (const op of ops) {
        if (!this.caches.has(op.store) && !this.loaded.has(op.store)) continue;
        touched.add(op.store);
        copies.push(structuredClone(op));
      }
    } catch {
      copies = undefined; // uncloneable: the inner engine rejects it too (else the touched caches are dropped)
    }
    this.inflight++;
    this.epoch++;
    try {
      await this.inner.write(ops);
      if (!this.closed) this.apply(copies, touched);
    } finally {
      this.inflight--;
      this.epoch++;
    }
  }

  /** Apply a committed write to the loaded mirrors and the LRU caches (synchronously). */
  private apply(copies: WriteOp[] | undefined, touched: Set<string>): void {
    if (!copies) {
      for (const s of touched) this.drop(s);
      return;
    }
    const mirrorOps = copies.filter((op) => this.loaded.has(op.store));
    if (mirrorOps.length) {
      try {
        this.mirror.writeNow(mirrorOps);
      } catch {
        // Cannot happen when the mirror holds what the inner engine holds; if it does, forget those mirrors.
        for (const op of mirrorOps) this.drop(op.store);
      }
    }
    for (const op of copies) {
      const cache = this.caches.get(op.store);
      if (!cache) continue;
      if (op.op === 'put') {
        const key = keyOf(op.value, this.schema[op.store].keyPath);
        if (key === undefined) this.drop(op.store);
        else this.remember(op.store, keyString(key), key, op.value);
      } else if (op.op === 'delete') {
        let ks: string | undefined;
        try {
          ks = keyString(op.key);
        } catch {
          ks = undefined;
        }
        if (ks !== undefined) this.remember(op.store, ks, op.key, undefined);
      } else {
        for (const [ks, e] of cache.entries) if (inRange(e.key, op.range)) cache.entries.delete(ks);
      }
    }
  }

  /** Forget what is cached of a store (its mirror is reloaded at next use). */
  private drop(store: string): void {
    if (this.loaded.delete(store)) this.mirror.writeNow([{ op: 'deleteRange', store, range: {} }]);
    this.caches.get(store)?.entries.clear();
  }

  estimateSize(): Promise<number | undefined> {
    return this.inner.estimateSize?.() ?? Promise.resolve(undefined);
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.loaded.clear();
      for (const c of this.caches.values()) c.entries.clear();
      await this.mirror.close();
    }
    await this.inner.close();
  }
}
