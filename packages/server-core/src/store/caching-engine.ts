/**
 * CachingEngine: a StorageEngine over another one (IndexedDB in the Service Worker) that answers most
 * reads from memory. Every IndexedDB transaction is a round trip to the browser's storage process
 * (~0.2–0.6 ms); an incremental /sync or a send makes tens of small reads, almost all of small,
 * per-node object stores. It relies on one fact: THIS ENGINE IS THE ONLY WRITER of the inner database
 * (the worker owns it; tabs share the worker), so every change passes through `write` below.
 *
 * Three kinds of cache:
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
 * - A tail of a big, stream-ordered store (`events`): every row whose position (its `stream`, the key
 *   of a scalar index) is above a floor, kept in the same MemoryEngine. It is seeded at first use with
 *   the rows within `seed` positions of the highest (one forward range read), then grows with writes;
 *   beyond `keep` rows the floor rises. It answers queries over an index ordered by position within one
 *   prefix (`by_room_stream` for one room, `by_stream`, `by_relation` for one event): wholly when the
 *   range starts above the floor (an incremental /sync's timeline), and, going backwards with a limit,
 *   whenever the tail alone yields that many rows (every row not in it sorts below every row in it):
 *   "the newest n events of this room" is answered from memory once the room has n recent events.
 *
 * Writes: the ops go to the inner engine unchanged (atomic there), which issues its transaction at once;
 * in the same step the same ops are applied, synchronously, to the loaded mirrors (`MemoryEngine.writeNow`),
 * to the tails (a put of a row at or below the floor becomes a delete of its key) and to the LRU caches
 * (put: cached; delete: cached as absent; deleteRange: entries in range dropped), and `onVisible` is
 * called: reads see the write while IndexedDB commits it (~1 ms), so a long-poll /sync computes its answer
 * meanwhile. A read that goes to the inner engine then is ordered after the write too (IndexedDB runs a
 * read-only transaction after the earlier read/write ones it overlaps; MemoryEngine applies at once).
 * `write` still resolves only when the write is durable, and `settled()` waits for every write in flight:
 * the Store's `durable` holds answers and outbound transactions until what they read is stored. A write
 * that fails after being shown drops the caches it touched (they load again from the inner engine) and
 * counts in `failedVisibleWrites`, which tells those readers to refuse what they read. The values are
 * copied when `write` is called (as IndexedDB does), so a caller changing its objects afterwards changes
 * nothing.
 *
 * Reads: `read(fn)` gives `fn` a ReadTx that routes each call: to a loaded mirror, to a tail that can
 * answer it, to an LRU hit (each a resolved promise: a microtask, which keeps an IndexedDB transaction
 * alive), or else to ONE inner read transaction, opened lazily at the first call that needs it and shared
 * by the rest of `fn`. Loading a mirror or a tail happens through that same inner transaction (its own
 * requests), never by awaiting anything foreign inside it.
 *
 * Coherence: a value read from the inner engine may enter a cache (a mirror or tail load, an LRU fill)
 * only if it is exactly the state the caches hold. Over an engine whose reads see the writes issued before
 * them (`readsSeeIssuedWrites`: IndexedDB, MemoryEngine), that is when no write was issued, and none
 * failed, between the inner transaction's start and the value's arrival: the value is then the state after
 * every write issued so far, durable or not, as the caches are (a write that fails later drops the caches
 * it touched, fills included). So stores first read while a write commits (the federation queue reads
 * some while it signs the transaction a send woke) are cached too. Over any other engine, only if the
 * transaction began with no write in flight and none started or finished until the value arrived (a
 * write counter, `epoch`, and the number in flight). Either way the check and the install happen in one
 * synchronous step; otherwise the value is just returned, not cached.
 *
 * Isolation: each call sees whole write batches. As with MemoryEngine (not raw IndexedDB), one `read(fn)`
 * is not a snapshot across calls: a batch that completes while `fn` runs may be seen by its later calls
 * (caches are updated when the write is issued). The Store never relied on more (it runs over MemoryEngine
 * in Node).
 *
 * Memory: the mirrors (small stores, each at most its row limit), at most `keep` tail rows and the LRU
 * entries (recent events are in both): with the defaults, about 3,000 events and 256 state groups, a
 * few MB for ordinary events (bounded by count, not bytes). `stats` counts what was served from where.
 */
import {
  compareKeys, inRange, keyOf, schemaOf, type Key, type KeyRange, type Migration, type QueryOptions, type ReadTx, type StorageEngine, type StoreSchema,
  type WriteOp, type WriteOptions,
} from './engine.ts';
import { MemoryEngine } from './memory-engine.ts';

/** The homeserver's small, hot object stores (schema.ts): mirrored whole by default. */
export const MIRRORED_STORES: readonly string[] = [
  'meta', 'accounts', 'devices', 'access_tokens', 'rooms', 'current_state', 'memberships', 'account_data', 'receipts',
  'filters', 'push_rules', 'presence', 'device_keys', 'one_time_keys', 'fallback_keys', 'cross_signing_keys',
  'key_signatures', 'device_list_changes', 'aliases', 'txns', 'to_device', 'outbound', 'room_key_versions',
];
/** The big stores read by id: LRU-cached `get`s by default (store → number of keys kept). */
export const CACHED_STORES: Readonly<Record<string, number>> = { events: 2048, state_groups: 256 };
/** Default row limits of mirrors that can grow large (others: `maxMirrorRows`). */
export const MIRROR_LIMITS: Readonly<Record<string, number>> = { txns: 2000, outbound: 1000 };

export interface TailOptions {
  /** A scalar index over the position (the tail holds the rows whose key there is above the floor). */
  index: string;
  /** At first use, the rows within this many positions of the highest are read in. */
  seed: number;
  /** The most rows kept: beyond, the floor rises and the oldest rows go. */
  keep: number;
}

/**
 * A tiny tail (seed 2, keep 3) on every store of `migrations` with a scalar index: the cache layout the
 * conformance runs use so that seeding, trimming and partial answers all happen.
 */
export function tinyTails(migrations: readonly Migration[]): Record<string, TailOptions> {
  const out: Record<string, TailOptions> = {};
  for (const [name, st] of Object.entries(schemaOf(migrations))) {
    const index = Object.entries(st.indexes ?? {}).find(([, i]) => typeof i.keyPath === 'string')?.[0];
    if (index) out[name] = { index, seed: 2, keep: 3 };
  }
  return out;
}
/** Stream-ordered stores with a tail in memory by default. */
export const STREAM_TAILS: Readonly<Record<string, TailOptions>> = { events: { index: 'by_stream', seed: 200, keep: 1000 } };

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
  /** Stores with a tail in memory. Default: the STREAM_TAILS the schema has (with their index). */
  tails?: Readonly<Record<string, TailOptions>>;
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
  /** Queries answered by a tail. */
  tailReads: number;
}

interface InnerTx {
  tx: ReadTx;
  /** No write was in flight when it began. */
  clean: boolean;
  /** The write epoch when it began. */
  epoch: number;
  /** How many writes had been issued, and had failed, when it began. */
  issued: number;
  failed: number;
}
interface LruEntry {
  key: Key;
  /** undefined: the key is known to be absent. */
  value: object | undefined;
}
interface Tail {
  opts: TailOptions;
  /** The position's key path (the scalar index's). */
  position: string;
  /** Indexes ordered by position within a prefix: name → prefix length (0: the position itself). */
  indexes: Map<string, number>;
  /** Every row whose position is above this is in the tail (meaningful once loaded). */
  floor: Key;
  loaded: boolean;
  loading: boolean;
  /** Rows put since the size was last checked. */
  added: number;
}

/**
 * The position bounds of a range over a tail index whose key is `prefix` components then the position:
 * undefined unless the range stays within one prefix (for prefix > 0, both bounds given, equal there).
 */
function positionBounds(range: KeyRange | undefined, prefix: number): { lower?: Key; upper?: Key } | undefined {
  const r = range ?? {};
  if (prefix === 0) return { lower: r.lower, upper: r.upper };
  const { lower, upper } = r;
  if (!Array.isArray(lower) || !Array.isArray(upper) || lower.length !== prefix + 1 || upper.length !== prefix + 1) return undefined;
  for (let i = 0; i < prefix; i++) if (compareKeys(lower[i], upper[i]) !== 0) return undefined;
  return { lower: lower[prefix], upper: upper[prefix] };
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
  readonly stats: CachingEngineStats = { innerReads: 0, mirrorReads: 0, mirrorLoads: 0, lruHits: 0, lruMisses: 0, tailReads: 0 };
  private readonly mirror: MemoryEngine;
  private readonly mirrored: ReadonlySet<string>;
  private readonly loaded = new Set<string>();
  /** Mirrored stores found too big to mirror (left to the inner engine for the life of this engine). */
  private readonly tooBig = new Set<string>();
  private readonly caches = new Map<string, { size: number; entries: Map<string, LruEntry> }>();
  private readonly tails = new Map<string, Tail>();
  private readonly schema: Record<string, StoreSchema>;
  private readonly maxRows: number;
  private readonly limits: Readonly<Record<string, number>>;
  /** Bumped when a write is handed to the inner engine and again when it settles. */
  private epoch = 0;
  /** Writes handed to the inner engine so far. */
  private issued = 0;
  private inflight = 0;
  /** Writes issued and not yet settled (each resolves, to whether it succeeded). */
  private readonly pending = new Set<Promise<boolean>>();
  /** Writes that failed after the caches had taken them. */
  private failed = 0;
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
    const tails = opts.tails ?? Object.fromEntries(Object.entries(STREAM_TAILS).filter(([s, t]) => has(s) && typeof this.schema[s].indexes?.[t.index]?.keyPath === 'string'));
    for (const [s, t] of Object.entries(tails)) {
      if (!has(s)) throw new Error(`CachingEngine: no object store ${s} in the schema`);
      if (mirror.includes(s)) throw new Error(`CachingEngine: ${s} is both mirrored and tailed`);
      const position = this.schema[s].indexes?.[t.index]?.keyPath;
      if (typeof position !== 'string') throw new Error(`CachingEngine: the tail of ${s} needs a scalar index, not ${t.index}`);
      if (!(t.keep >= 1) || !(t.seed >= 0)) throw new RangeError(`CachingEngine: bad tail sizes for ${s}`);
      const indexes = new Map<string, number>();
      for (const [name, idx] of Object.entries(this.schema[s].indexes ?? {})) {
        if (idx.keyPath === position) indexes.set(name, 0);
        else if (Array.isArray(idx.keyPath) && idx.keyPath.length > 1 && idx.keyPath[idx.keyPath.length - 1] === position) indexes.set(name, idx.keyPath.length - 1);
      }
      this.tails.set(s, { opts: t, position, indexes, floor: Infinity, loaded: false, loading: false, added: 0 });
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
    if (this.closed) return false;
    // An inner engine whose reads see the writes issued before them: the value read is the state after every
    // write issued until the read began, which is what the caches hold, if none was issued since (and none
    // failed: a failed write drops the caches it touched, and the read may or may not have seen it).
    if (this.inner.readsSeeIssuedWrites) return this.issued === it.issued && this.failed === it.failed;
    // Otherwise only a read that began with no write in flight, and saw none start or finish.
    return it.clean && this.inflight === 0 && this.epoch === it.epoch;
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
        const issued = this.issued;
        const failed = this.failed;
        const hold = new Promise<void>((r) => (release = r));
        this.stats.innerReads++;
        opened = new Promise<InnerTx>((resolve, reject) => {
          this.inner.read(async (tx) => {
            resolve({ tx, clean, epoch, issued, failed });
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

    // The tail of `store`, loaded, when the query is over one of its indexes.
    const tailFor = async (store: string, opts: QueryOptions | undefined): Promise<Tail | undefined> => {
      const tail = this.tails.get(store);
      if (!tail || opts?.index === undefined || !tail.indexes.has(opts.index)) return undefined;
      if (!tail.loaded) {
        let load = loads.get(store);
        if (!load && !tail.loading) loads.set(store, (load = this.loadTail(store, tail, innerTx)));
        if (load) await load;
      }
      return tail.loaded ? tail : undefined;
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
        const tail = await tailFor(store, opts);
        const served = tail && this.tailQuery<V>(store, tail, opts!);
        if (served) return served;
        return (await innerTx()).tx.query<V>(store, opts);
      },
      count: async (store: string, opts?: QueryOptions): Promise<number> => {
        this.live();
        if (await mirrorReady(store)) {
          this.stats.mirrorReads++;
          return this.mirror.read((m) => m.count(store, opts));
        }
        const tail = await tailFor(store, opts);
        if (tail && this.tailCovers(tail, opts!) === 'all') {
          this.stats.tailReads++;
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
   * Load a mirrored store through the calling read's inner transaction. Installs it only if `canFill`
   * (else this read is served by the inner engine, and a later read tries again).
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

  /**
   * Seed a tail through the calling read's inner transaction: the highest position, then every row
   * within `seed` positions of it (one forward range read). Installed only if no write overlapped.
   */
  private async loadTail(store: string, tail: Tail, innerTx: () => Promise<InnerTx>): Promise<void> {
    tail.loading = true;
    try {
      const it = await innerTx();
      if (!this.canFill(it)) return;
      const index = tail.opts.index;
      const [top] = await it.tx.query<object>(store, { index, direction: 'prev', limit: 1 });
      const highest = top && keyOf(top, tail.position);
      let floor: Key = highest === undefined ? -Infinity : typeof highest === 'number' ? highest - tail.opts.seed : highest;
      let rows = await it.tx.query<object>(store, { index, range: { lower: floor, lowerOpen: true } });
      if (!this.canFill(it) || tail.loaded) return;
      if (rows.length > tail.opts.keep) {
        floor = keyOf(rows[rows.length - tail.opts.keep - 1], tail.position)!;
        rows = rows.filter((r) => compareKeys(keyOf(r, tail.position)!, floor) > 0);
      }
      this.mirror.writeNow(rows.map((value) => ({ op: 'put', store, value })));
      tail.floor = floor;
      tail.loaded = true;
      tail.added = 0;
    } finally {
      tail.loading = false;
    }
  }

  /** Whether a query over a tail index lies wholly above the floor ('all'), or may be served by a backward scan ('prev'). */
  private tailCovers(tail: Tail, opts: QueryOptions): 'all' | 'prev' | undefined {
    const bounds = positionBounds(opts.range, tail.indexes.get(opts.index!)!);
    if (!bounds) return undefined;
    if (bounds.lower !== undefined) {
      const c = compareKeys(bounds.lower, tail.floor);
      if (c > 0 || (c === 0 && opts.range?.lowerOpen)) return 'all';
    }
    return opts.direction === 'prev' && opts.limit !== undefined && opts.limit > 0 && Number.isFinite(opts.limit) ? 'prev' : undefined;
  }

  /** A query answered by a tail (copies), or undefined when the tail cannot tell. */
  private tailQuery<V>(store: string, tail: Tail, opts: QueryOptions): V[] | undefined {
    const covers = this.tailCovers(tail, opts);
    if (!covers) return undefined;
    const rows = this.mirror.select(store, opts);
    // Backwards with a limit: rows not in the tail all sort below the tail's, so a full page is the answer.
    if (covers === 'prev' && rows.length < opts.limit!) return undefined;
    this.stats.tailReads++;
    return (opts.shared ? rows : rows.map((r) => structuredClone(r))) as V[];
  }

  /** Raise a tail's floor so that it keeps at most `keep` rows. */
  private trimTail(store: string, tail: Tail): void {
    tail.added = 0;
    const all = this.mirror.select(store, { index: tail.opts.index });
    if (all.length <= tail.opts.keep) return;
    const floor = keyOf(all[all.length - tail.opts.keep - 1], tail.position)!;
    const keyPath = this.schema[store].keyPath;
    const drop: WriteOp[] = [];
    for (const r of all) {
      if (compareKeys(keyOf(r, tail.position)!, floor) > 0) break;
      drop.push({ op: 'delete', store, key: keyOf(r, keyPath)! });
    }
    this.mirror.writeNow(drop);
    tail.floor = floor;
  }

  /** Put an entry in an LRU cache (most recent last), evicting the oldest beyond its size. */
  private remember(store: string, ks: string, key: Key, value: object | undefined): void {
    const cache = this.caches.get(store)!;
    cache.entries.delete(ks);
    cache.entries.set(ks, { key, value });
    while (cache.entries.size > cache.size) cache.entries.delete(cache.entries.keys().next().value!);
  }

  async write(ops: WriteOp[], opts?: WriteOptions): Promise<void> {
    this.live();
    const cached = ops.filter((op) => this.caches.has(op.store) || this.loaded.has(op.store) || this.tails.get(op.store)?.loaded);
    const touched = new Set(cached.map((op) => op.store));
    if (touched.size === 0) {
      // Nothing cached changes (media, say, whose writes can be big and slow): reads see it through the inner
      // engine once it is durable, and nobody has to wait for it.
      this.inflight++;
      this.epoch++;
      this.issued++;
      try {
        await this.inner.write(ops);
      } finally {
        this.inflight--;
        this.epoch++;
      }
      opts?.onVisible?.();
      return;
    }
    this.inflight++;
    this.epoch++;
    this.issued++;
    // The inner engine issues its transaction now (IndexedDB: the requests and `commit()`, synchronously
    // inside its `write`): a read transaction opened from here on is ordered after it (IndexedDB 3.0,
    // "transaction scheduling": a read-only transaction waits for earlier overlapping read/write ones).
    // So the caches take the write at once, and reads, here or there, all see it while it commits.
    let inner: Promise<void>;
    try {
      inner = this.inner.write(ops);
    } catch (err) {
      inner = Promise.reject(err);
    }
    const done = inner.then(
      () => true,
      () => false,
    );
    this.pending.add(done);
    try {
      // In this same step, after the transaction is issued (copying is not on the way to IndexedDB): the
      // caches take copies of the values (a caller may change its objects once write returns a promise).
      if (!this.closed) this.apply(cached);
      opts?.onVisible?.();
      await inner;
    } catch (err) {
      // Reads may have seen it: the caches it touched go (they load again from the inner engine), and
      // `failedVisibleWrites` tells whoever read meanwhile not to let it out.
      this.failed++;
      for (const s of touched) this.drop(s);
      throw err;
    } finally {
      this.pending.delete(done);
      this.inflight--;
      this.epoch++;
    }
  }

  async settled(): Promise<void> {
    if (this.pending.size) await Promise.all([...this.pending]);
  }

  failedVisibleWrites(): number {
    return this.failed;
  }

  /** Apply a write (issued to the inner engine) to the loaded mirrors and the LRU caches (synchronously). */
  private apply(ops: WriteOp[]): void {
    const mirrorOps: WriteOp[] = [];
    const tailed = new Set<string>();
    for (const op of ops) {
      if (this.loaded.has(op.store)) mirrorOps.push(op);
      const tail = this.tails.get(op.store);
      if (!tail?.loaded) continue;
      tailed.add(op.store);
      if (op.op !== 'put') mirrorOps.push(op);
      else {
        // The tail holds exactly the rows above the floor: a row put at or below it leaves (if it was there).
        const position = keyOf(op.value, tail.position);
        if (position !== undefined && compareKeys(position, tail.floor) > 0) {
          mirrorOps.push(op);
          tail.added++;
        } else {
          const key = keyOf(op.value, this.schema[op.store].keyPath);
          if (key !== undefined) mirrorOps.push({ op: 'delete', store: op.store, key });
        }
      }
    }
    if (mirrorOps.length) {
      try {
        this.mirror.writeNow(mirrorOps); // (it copies what it keeps)
      } catch {
        // A value that cannot be copied (the inner engine rejects the batch too), or a mirror that differs from
        // the inner engine (cannot happen): forget those mirrors.
        for (const op of mirrorOps) this.drop(op.store);
      }
    }
    for (const store of tailed) {
      const tail = this.tails.get(store)!;
      if (tail.loaded && tail.added > tail.opts.keep / 4) this.trimTail(store, tail);
    }
    for (const op of ops) {
      const cache = this.caches.get(op.store);
      if (!cache) continue;
      if (op.op === 'put') {
        const key = keyOf(op.value, this.schema[op.store].keyPath);
        let copy: object | undefined;
        try {
          copy = key === undefined ? undefined : (structuredClone(op.value) as object);
        } catch {
          copy = undefined; // cannot be copied: the inner engine rejects the batch too
        }
        if (key === undefined || copy === undefined) this.drop(op.store);
        else this.remember(op.store, keyString(key), structuredClone(key), copy);
      } else if (op.op === 'delete') {
        let ks: string | undefined;
        try {
          ks = keyString(op.key);
        } catch {
          ks = undefined;
        }
        if (ks !== undefined) this.remember(op.store, ks, structuredClone(op.key), undefined);
      } else {
        for (const [ks, e] of cache.entries) if (inRange(e.key, op.range)) cache.entries.delete(ks);
      }
    }
  }

  /** Forget what is cached of a store (its mirror or tail is reloaded at next use). */
  private drop(store: string): void {
    const tail = this.tails.get(store);
    if (this.loaded.delete(store) || tail?.loaded) this.mirror.writeNow([{ op: 'deleteRange', store, range: {} }]);
    if (tail) tail.loaded = false;
    this.caches.get(store)?.entries.clear();
  }

  estimateSize(): Promise<number | undefined> {
    return this.inner.estimateSize?.() ?? Promise.resolve(undefined);
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.loaded.clear();
      for (const t of this.tails.values()) t.loaded = false;
      for (const c of this.caches.values()) c.entries.clear();
      await this.mirror.close();
    }
    await this.inner.close();
  }
}
