/**
 * In-memory StorageEngine: sorted arrays with binary search for the primary key and each index.
 * Values are structured-cloned in and out, as IndexedDB does, so callers can never alias stored data.
 */
import {
  compareKeys, inRange, keyOf, schemaOf, type Key, type KeyRange, type Migration, type QueryOptions, type ReadTx,
  type StorageEngine, type StoreSchema, type WriteOp,
} from './engine.ts';

interface Row {
  key: Key;
  value: object;
}
interface IndexRow {
  ik: Key;
  pk: Key;
}

function lowerBound<T>(arr: T[], cmp: (x: T) => number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(arr[mid]) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

class MemoryObjectStore {
  rows: Row[] = [];
  indexes = new Map<string, { keyPath: StoreSchema['keyPath']; unique: boolean; rows: IndexRow[] }>();
  constructor(readonly name: string, readonly schema: StoreSchema) {
    for (const [n, idx] of Object.entries(schema.indexes ?? {})) this.indexes.set(n, { keyPath: idx.keyPath, unique: !!idx.unique, rows: [] });
  }
  find(key: Key): number {
    const i = lowerBound(this.rows, (r) => compareKeys(r.key, key));
    return i < this.rows.length && compareKeys(this.rows[i].key, key) === 0 ? i : -1;
  }
  private removeIndexRows(value: object, pk: Key) {
    for (const idx of this.indexes.values()) {
      const ik = keyOf(value, idx.keyPath);
      if (ik === undefined) continue;
      const i = lowerBound(idx.rows, (r) => compareKeys(r.ik, ik) || compareKeys(r.pk, pk));
      if (i < idx.rows.length && compareKeys(idx.rows[i].ik, ik) === 0 && compareKeys(idx.rows[i].pk, pk) === 0) idx.rows.splice(i, 1);
    }
  }
  checkPut(value: object): Key {
    const key = keyOf(value, this.schema.keyPath);
    if (key === undefined) throw new DOMExceptionLike('DataError', `${this.name}: value has no valid key`);
    for (const [n, idx] of this.indexes) {
      if (!idx.unique) continue;
      const ik = keyOf(value, idx.keyPath);
      if (ik === undefined) continue;
      const i = lowerBound(idx.rows, (r) => compareKeys(r.ik, ik));
      if (i < idx.rows.length && compareKeys(idx.rows[i].ik, ik) === 0 && compareKeys(idx.rows[i].pk, key) !== 0) {
        throw new DOMExceptionLike('ConstraintError', `${this.name}.${n}: unique index violated`);
      }
    }
    return key;
  }
  /** Store `value` under `key`; returns the value it replaced, if any. */
  put(key: Key, value: object): object | undefined {
    let prev: object | undefined;
    const i = lowerBound(this.rows, (r) => compareKeys(r.key, key));
    if (i < this.rows.length && compareKeys(this.rows[i].key, key) === 0) {
      prev = this.rows[i].value;
      this.removeIndexRows(prev, key);
      this.rows[i] = { key, value };
    } else {
      this.rows.splice(i, 0, { key, value });
    }
    for (const idx of this.indexes.values()) {
      const ik = keyOf(value, idx.keyPath);
      if (ik === undefined) continue;
      const j = lowerBound(idx.rows, (r) => compareKeys(r.ik, ik) || compareKeys(r.pk, key));
      idx.rows.splice(j, 0, { ik, pk: key });
    }
    return prev;
  }
  /** Remove `key`; returns the removed row, if any. */
  delete(key: Key): Row | undefined {
    const i = this.find(key);
    if (i < 0) return undefined;
    const row = this.rows[i];
    this.removeIndexRows(row.value, row.key);
    this.rows.splice(i, 1);
    return row;
  }
  /** Remove every key in `range`; returns the removed rows. */
  deleteRange(range: KeyRange): Row[] {
    const rows = this.select({ range });
    for (const r of rows) this.delete(r.key);
    return rows;
  }
  /** Rows matching the options, in order. */
  select(opts: QueryOptions = {}): Row[] {
    const { range, direction = 'next', limit = Infinity } = opts;
    const out: Row[] = [];
    if (opts.index) {
      const idx = this.indexes.get(opts.index);
      if (!idx) throw new DOMExceptionLike('NotFoundError', `${this.name}: no index ${opts.index}`);
      const rows = idx.rows;
      const take = (r: IndexRow) => {
        const p = this.find(r.pk);
        if (p >= 0) out.push(this.rows[p]);
      };
      if (direction === 'next') {
        let i = range?.lower !== undefined ? lowerBound(rows, (r) => compareKeys(r.ik, range.lower!)) : 0;
        for (; i < rows.length && out.length < limit; i++) {
          if (!inRange(rows[i].ik, range)) {
            if (range?.upper !== undefined && compareKeys(rows[i].ik, range.upper) > 0) break;
            continue;
          }
          take(rows[i]);
        }
      } else {
        let i = range?.upper !== undefined ? lowerBound(rows, (r) => (compareKeys(r.ik, range.upper!) <= 0 ? -1 : 1)) - 1 : rows.length - 1;
        for (; i >= 0 && out.length < limit; i--) {
          if (!inRange(rows[i].ik, range)) {
            if (range?.lower !== undefined && compareKeys(rows[i].ik, range.lower) < 0) break;
            continue;
          }
          take(rows[i]);
        }
      }
      return out;
    }
    const rows = this.rows;
    if (direction === 'next') {
      let i = range?.lower !== undefined ? lowerBound(rows, (r) => compareKeys(r.key, range.lower!)) : 0;
      for (; i < rows.length && out.length < limit; i++) {
        if (!inRange(rows[i].key, range)) {
          if (range?.upper !== undefined && compareKeys(rows[i].key, range.upper) > 0) break;
          continue;
        }
        out.push(rows[i]);
      }
    } else {
      let i = range?.upper !== undefined ? lowerBound(rows, (r) => (compareKeys(r.key, range.upper!) <= 0 ? -1 : 1)) - 1 : rows.length - 1;
      for (; i >= 0 && out.length < limit; i--) {
        if (!inRange(rows[i].key, range)) {
          if (range?.lower !== undefined && compareKeys(rows[i].key, range.lower) < 0) break;
          continue;
        }
        out.push(rows[i]);
      }
    }
    return out;
  }
}

class DOMExceptionLike extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export class MemoryEngine implements StorageEngine {
  readonly readsSeeIssuedWrites = true;
  private stores = new Map<string, MemoryObjectStore>();
  private closed = false;
  constructor(migrations: readonly Migration[]) {
    for (const [name, s] of Object.entries(schemaOf(migrations))) this.stores.set(name, new MemoryObjectStore(name, s));
  }
  private store(name: string): MemoryObjectStore {
    const s = this.stores.get(name);
    if (!s) throw new DOMExceptionLike('NotFoundError', `no object store ${name}`);
    return s;
  }
  async read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    this.live();
    const tx: ReadTx = {
      get: async <V>(store: string, key: Key) => {
        const s = this.store(store);
        const i = s.find(key);
        return (i < 0 ? undefined : structuredClone(s.rows[i].value)) as V | undefined;
      },
      query: async <V>(store: string, opts?: QueryOptions) => {
        const rows = this.store(store).select(opts);
        return (opts?.shared ? rows.map((r) => r.value) : rows.map((r) => structuredClone(r.value))) as V[];
      },
      count: async (store: string, opts?: QueryOptions) => this.store(store).select(opts).length,
    };
    return fn(tx);
  }
  async write(ops: WriteOp[]): Promise<void> {
    this.writeNow(ops);
  }
  /**
   * The values a query selects, in order, NOT copied (for wrappers that only look at them: changing
   * them would change the stored data).
   */
  select(store: string, opts?: QueryOptions): object[] {
    this.live();
    return this.store(store).select(opts).map((r) => r.value);
  }
  /**
   * `write`, synchronously: applies every op atomically before returning, or throws (nothing applied).
   * For wrappers that must update a memory copy in the same turn as they decide to (CachingEngine).
   */
  writeNow(ops: readonly WriteOp[]): void {
    this.live();
    // Apply in order, checking each op against the state the earlier ops left (so a unique-index clash
    // between two puts of one batch is caught); on any failure, undo what was applied, newest first.
    const undo: (() => void)[] = [];
    try {
      for (const op of ops) {
        const s = this.store(op.store);
        if (op.op === 'put') {
          // As IndexedDB does: clone first, then take the keys from the clone.
          const value = structuredClone(op.value);
          const key = s.checkPut(value);
          const prev = s.put(key, value);
          undo.push(prev === undefined ? () => s.delete(key) : () => s.put(key, prev));
        } else if (op.op === 'delete') {
          const row = s.delete(op.key);
          if (row) undo.push(() => s.put(row.key, row.value));
        } else {
          const rows = s.deleteRange(op.range);
          if (rows.length) undo.push(() => { for (const r of rows) s.put(r.key, r.value); });
        }
      }
    } catch (err) {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]();
      throw err;
    }
  }
  async estimateSize(): Promise<number | undefined> {
    return undefined;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  private live(): void {
    if (this.closed) throw new DOMExceptionLike('InvalidStateError', 'the engine is closed');
  }
}
