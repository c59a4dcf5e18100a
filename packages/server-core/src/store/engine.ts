/**
 * The storage engine under the Store: a small, IndexedDB-shaped key/value contract (object stores with
 * in-line keys, secondary indexes, key ranges, atomic multi-store writes). The Store's access-pattern
 * methods are written once over it; engines are in-memory (tests, Node host) and IndexedDB (browsers).
 *
 * Keys follow IndexedDB's key model restricted to numbers, strings and arrays of keys, ordered as
 * `indexedDB.cmp` orders them: numbers < strings < arrays; strings by UTF-16 code unit; arrays
 * element by element, a prefix before a longer array.
 */
export type Key = number | string | Key[];

export interface KeyRange {
  lower?: Key;
  upper?: Key;
  lowerOpen?: boolean;
  upperOpen?: boolean;
}

export interface QueryOptions {
  /** Query a secondary index instead of the primary key. */
  index?: string;
  range?: KeyRange;
  direction?: 'next' | 'prev';
  limit?: number;
  /**
   * The caller only reads the values and never changes them: an engine that holds them in memory may hand
   * out its own objects instead of copies (for scans whose copies would cost more than the reading).
   */
  shared?: boolean;
}

export interface ReadTx {
  get<T = unknown>(store: string, key: Key): Promise<T | undefined>;
  /** Values in key order (of the index when `index` is given; ties by primary key). */
  query<T = unknown>(store: string, opts?: QueryOptions): Promise<T[]>;
  count(store: string, opts?: QueryOptions): Promise<number>;
}

export type WriteOp =
  | { op: 'put'; store: string; value: object }
  | { op: 'delete'; store: string; key: Key }
  | { op: 'deleteRange'; store: string; range: KeyRange };

export interface WriteOptions {
  /**
   * Called once (synchronously, from inside `write`) when reads through this engine can see the ops. An
   * engine that applies a write only when it is durable need not call it (the caller takes the resolution
   * of `write` for it); the CachingEngine calls it as soon as the write is issued to IndexedDB, so that
   * what waits for the write (a long-poll `/sync`) works while the commit is in flight. Until `write`
   * resolves, what reads saw of it may still be lost: nothing read may leave the node before `settled()`
   * (the Store's `durable`).
   */
  onVisible?: () => void;
}

export interface StorageEngine {
  /**
   * Run `fn` in one read transaction across all stores. `fn` must await only the ReadTx's own
   * calls (IndexedDB commits a transaction that waits on anything else).
   */
  read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T>;
  /** Apply all ops atomically (all or none), in order. Resolves once durable (IndexedDB: `complete`). */
  write(ops: WriteOp[], opts?: WriteOptions): Promise<void>;
  /**
   * True when a read begun after `write` was called sees that write (unless it fails), even before it
   * resolves: IndexedDB orders a read-only transaction after the read/write ones created before it that
   * it overlaps ("transaction scheduling"); MemoryEngine applies a write at once. A cache over the engine
   * may then keep what it reads while a write is in flight (CachingEngine).
   */
  readonly readsSeeIssuedWrites?: boolean;
  /**
   * Engines that show a write to reads before it is durable (CachingEngine; see `WriteOptions.onVisible`):
   * resolves once every write issued so far has settled (become durable or failed).
   */
  settled?(): Promise<void>;
  /**
   * Such engines: how many writes have failed after reads could see them (never decreases). What was read
   * while one of them was pending may be gone: see `Store.durable`.
   */
  failedVisibleWrites?(): number;
  /** Estimated bytes used, when the engine can tell. */
  estimateSize?(): Promise<number | undefined>;
  close(): Promise<void>;
}

/** A key path: one property name, or several (a compound array key). */
export type KeyPath = string | string[];

export interface IndexSchema {
  keyPath: KeyPath;
  unique?: boolean;
}

export interface StoreSchema {
  keyPath: KeyPath;
  indexes?: Record<string, IndexSchema>;
}

/** A schema migration: the object stores and indexes it creates or deletes (IndexedDB upgrades replay these in order). */
export interface Migration {
  createStores?: Record<string, StoreSchema>;
  deleteStores?: string[];
  createIndexes?: Record<string, Record<string, IndexSchema>>;
  deleteIndexes?: Record<string, string[]>;
}

/** Compare two keys as indexedDB.cmp does (for the subset of keys we use). */
export function compareKeys(a: Key, b: Key): number {
  const ta = keyTypeRank(a);
  const tb = keyTypeRank(b);
  if (ta !== tb) return ta - tb;
  if (ta === 0) return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
  if (ta === 1) return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
  const x = a as Key[];
  const y = b as Key[];
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const c = compareKeys(x[i], y[i]);
    if (c) return c;
  }
  return x.length - y.length;
}

function keyTypeRank(k: Key): number {
  if (typeof k === 'number') return 0;
  if (typeof k === 'string') return 1;
  if (Array.isArray(k)) return 2;
  throw new TypeError(`not a valid key: ${String(k)}`);
}

/** Extract a key from a value by key path; undefined when a component is missing or not a valid key. */
export function keyOf(value: object, path: KeyPath): Key | undefined {
  const v = value as Record<string, unknown>;
  if (typeof path === 'string') return validKey(v[path]);
  const out: Key[] = [];
  for (const p of path) {
    const k = validKey(v[p]);
    if (k === undefined) return undefined;
    out.push(k);
  }
  return out;
}

function validKey(x: unknown): Key | undefined {
  if (typeof x === 'number') return Number.isNaN(x) ? undefined : x;
  if (typeof x === 'string') return x;
  if (Array.isArray(x)) {
    const out: Key[] = [];
    for (const e of x) {
      const k = validKey(e);
      if (k === undefined) return undefined;
      out.push(k);
    }
    return out;
  }
  return undefined;
}

/** Whether `k` lies in `range`. */
export function inRange(k: Key, range: KeyRange | undefined): boolean {
  if (!range) return true;
  if (range.lower !== undefined) {
    const c = compareKeys(k, range.lower);
    if (c < 0 || (c === 0 && range.lowerOpen)) return false;
  }
  if (range.upper !== undefined) {
    const c = compareKeys(k, range.upper);
    if (c > 0 || (c === 0 && range.upperOpen)) return false;
  }
  return true;
}

/** A range covering every compound key that starts with `prefix` (e.g. all `[roomId, *]`). */
export function prefixRange(...prefix: Key[]): KeyRange {
  // Arrays sort after every number and string, so [...prefix, []] is above any [...prefix, x] with a scalar x.
  return { lower: prefix, upper: [...prefix, []] };
}

/** The final schema: every migration applied in order. */
export function schemaOf(migrations: readonly Migration[]): Record<string, StoreSchema> {
  const stores: Record<string, StoreSchema> = {};
  for (const m of migrations) {
    for (const name of m.deleteStores ?? []) delete stores[name];
    for (const [name, s] of Object.entries(m.createStores ?? {})) stores[name] = { keyPath: s.keyPath, indexes: { ...(s.indexes ?? {}) } };
    for (const [name, idx] of Object.entries(m.createIndexes ?? {})) Object.assign((stores[name].indexes ??= {}), idx);
    for (const [name, idxs] of Object.entries(m.deleteIndexes ?? {})) for (const i of idxs) delete stores[name].indexes?.[i];
  }
  return stores;
}
