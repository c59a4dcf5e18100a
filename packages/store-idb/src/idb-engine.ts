/**
 * The IndexedDB StorageEngine (browsers, Service Workers; fake-indexeddb in Node tests).
 *
 * - One database per engine; its version is `migrations.length`, and the upgrade replays the migrations
 *   from the stored version to the new one, in order, inside the versionchange transaction.
 * - `read(fn)` runs `fn` in one readonly transaction over every object store. IndexedDB commits a
 *   transaction as soon as no request of it is pending when control returns to the event loop, so `fn`
 *   must await only its `tx` calls (never fetch, crypto, timers, other engines…); a call made after the
 *   transaction committed rejects with a TransactionInactiveError explaining this.
 * - `write(ops)` runs one readwrite transaction over the stores the ops touch and resolves on `complete`.
 *   Any failing op (unique index, missing key, uncloneable value, unknown store) aborts the whole
 *   transaction, so nothing of the batch is applied, and `write` rejects with that op's error.
 * - When another connection (a newer version of the app in another tab or worker) wants to upgrade, this
 *   connection closes itself (`versionchange`) so the upgrade can proceed; later calls reject with an
 *   InvalidStateError, and `onVersionChange` lets the host reload or re-open.
 *
 * idb's wrappers test values against the IndexedDB interface classes (IDBRequest, IDBTransaction, …)
 * as globals. Browsers and workers have them; in Node, `import 'fake-indexeddb/auto'` installs them (the
 * `indexedDB` option can still be a fresh `new IDBFactory()` from fake-indexeddb per test).
 */
import { wrap, type IDBPDatabase, type IDBPIndex, type IDBPObjectStore, type IDBPTransaction } from 'idb';
import type { Key, KeyRange, Migration, QueryOptions, ReadTx, StorageEngine, WriteOp } from '@matrix-p2p/server-core';

export interface IdbEngineOptions {
  /** The IndexedDB database name. */
  name: string;
  /** The schema history; the database version is `migrations.length` (at least 1). */
  migrations: readonly Migration[];
  /** The IndexedDB factory; defaults to `globalThis.indexedDB`. */
  indexedDB?: IDBFactory;
  /** Write durability hint (default: the browser's default). 'strict' waits for the OS to flush. */
  durability?: IDBTransactionDurability;
  /**
   * Called when opening waits on other connections (other tabs / workers at an older version) that do
   * not close. The open completes once they close; a host may ask the user to close other tabs.
   */
  onBlocked?: (oldVersion: number, newVersion: number | null) => void;
  /** Called after this engine closed itself because another connection needs to upgrade or delete the database. */
  onVersionChange?: (oldVersion: number, newVersion: number | null) => void;
}

type DB = IDBPDatabase<unknown>;
type Source = IDBPObjectStore<unknown, string[], string, IDBTransactionMode> | IDBPIndex<unknown, string[], string, string, IDBTransactionMode>;

function domError(name: string, message: string): Error {
  if (typeof DOMException === 'function') return new DOMException(message, name);
  const e = new Error(message);
  e.name = name;
  return e;
}

/** Replay `migrations[from..to)` in the versionchange transaction. */
function upgrade(db: IDBDatabase, tx: IDBTransaction, migrations: readonly Migration[], from: number, to: number): void {
  for (let v = from; v < to; v++) {
    const m = migrations[v];
    for (const name of m.deleteStores ?? []) db.deleteObjectStore(name);
    for (const [name, s] of Object.entries(m.createStores ?? {})) {
      const store = db.createObjectStore(name, { keyPath: s.keyPath });
      for (const [iname, idx] of Object.entries(s.indexes ?? {})) store.createIndex(iname, idx.keyPath, { unique: !!idx.unique });
    }
    for (const [name, idxs] of Object.entries(m.createIndexes ?? {})) {
      const store = tx.objectStore(name);
      for (const [iname, idx] of Object.entries(idxs)) store.createIndex(iname, idx.keyPath, { unique: !!idx.unique });
    }
    for (const [name, idxs] of Object.entries(m.deleteIndexes ?? {})) {
      const store = tx.objectStore(name);
      for (const iname of idxs) store.deleteIndex(iname);
    }
  }
}

/** Open (creating or upgrading as needed) the database and return a StorageEngine over it. */
export async function openIdbEngine(opts: IdbEngineOptions): Promise<StorageEngine> {
  const factory = opts.indexedDB ?? globalThis.indexedDB;
  if (!factory) throw new Error('openIdbEngine: no IndexedDB here (pass `indexedDB`)');
  const version = opts.migrations.length;
  if (version < 1) throw new RangeError('openIdbEngine: at least one migration is needed');

  const request = factory.open(opts.name, version);
  let upgradeError: unknown;
  request.addEventListener('upgradeneeded', (ev) => {
    // An upgrade can also fail later, e.g. a unique index built over clashing rows aborts the
    // versionchange transaction with a ConstraintError; the open then fails with a bare AbortError.
    const vtx = request.transaction!;
    vtx.addEventListener('abort', () => {
      upgradeError ??= vtx.error ?? undefined;
    });
    try {
      upgrade(request.result, request.transaction!, opts.migrations, ev.oldVersion, ev.newVersion ?? version);
    } catch (err) {
      // A bad migration (unknown store, duplicate name, unique index over clashing data…): abort the
      // upgrade, which fails the open with the error, and leaves the database at its old version.
      upgradeError = err;
      request.transaction?.abort();
    }
  });
  request.addEventListener('blocked', (ev) => opts.onBlocked?.(ev.oldVersion, ev.newVersion));
  try {
    await wrap(request);
  } catch (err) {
    throw upgradeError ?? err;
  }
  return new IdbEngine(request.result, factory, opts);
}

/** Our KeyRange as an IDBKeyRange (undefined: everything; null: nothing — IDBKeyRange.bound throws for those). */
function toIdbRange(r: KeyRange | undefined, factory: IDBFactory): IDBKeyRange | undefined | null {
  if (!r || (r.lower === undefined && r.upper === undefined)) return undefined;
  if (r.lower !== undefined && r.upper !== undefined) {
    const c = factory.cmp(r.lower, r.upper);
    if (c > 0 || (c === 0 && (r.lowerOpen || r.upperOpen))) return null;
  }
  if (r.upper === undefined) return IDBKeyRange.lowerBound(r.lower, !!r.lowerOpen);
  if (r.lower === undefined) return IDBKeyRange.upperBound(r.upper, !!r.upperOpen);
  return IDBKeyRange.bound(r.lower, r.upper, !!r.lowerOpen, !!r.upperOpen);
}

/** Resolves on `complete`; rejects on abort with the error that caused it. */
function txDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    let firstError: unknown;
    tx.addEventListener('complete', () => resolve());
    // A failing request's error event bubbles to the transaction before the abort; remember the first.
    tx.addEventListener('error', (ev) => {
      firstError ??= (ev.target as IDBRequest | null)?.error ?? undefined;
    });
    tx.addEventListener('abort', () => reject(tx.error ?? firstError ?? domError('AbortError', 'transaction aborted')));
  });
}

class IdbEngine implements StorageEngine {
  /** IndexedDB 3.0, "transaction scheduling": a read-only transaction runs after earlier overlapping read/write ones. */
  readonly readsSeeIssuedWrites = true;
  private closedReason: string | undefined;
  private readonly db: DB;
  /** Every object store: the scope of read transactions (fixed for the life of a connection). */
  private readonly storeNames: string[];

  constructor(private readonly raw: IDBDatabase, private readonly factory: IDBFactory, private readonly opts: IdbEngineOptions) {
    const db = (this.db = wrap(raw) as DB);
    this.storeNames = [...raw.objectStoreNames];
    raw.addEventListener('versionchange', (ev) => {
      this.closedReason = `database "${db.name}" was closed so that another connection could upgrade or delete it`;
      db.close();
      opts.onVersionChange?.(ev.oldVersion, ev.newVersion);
    });
    // Closed by the browser (storage cleared, disk error…).
    raw.addEventListener('close', () => {
      this.closedReason ??= `database "${db.name}" was closed by the browser`;
    });
  }

  /** A call on a finished read transaction: say why that happens (unless the database itself was closed). */
  private explainInactive(err: unknown): unknown {
    if (this.closedReason) return domError('InvalidStateError', this.closedReason);
    if (err instanceof Error && (err.name === 'TransactionInactiveError' || err.name === 'InvalidStateError')) {
      return domError(err.name, `${err.message} (the read transaction had already committed: read(fn) must await only its tx calls)`);
    }
    return err;
  }

  private live(): DB {
    if (this.closedReason) throw domError('InvalidStateError', this.closedReason);
    return this.db;
  }

  async read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    const db = this.live();
    const names = this.storeNames;
    const tx: IDBPTransaction<unknown, string[], 'readonly'> | undefined = names.length ? db.transaction(names, 'readonly') : undefined;
    tx?.done.catch(() => {}); // an aborted read is reported through the calls that failed
    const source = (store: string, index?: string): Source => {
      if (!tx) throw domError('NotFoundError', `no object store ${store}`);
      try {
        const s = tx.objectStore(store);
        return index === undefined ? s : s.index(index);
      } catch (err) {
        throw this.explainInactive(err);
      }
    };
    const rtx: ReadTx = {
      get: async <V>(store: string, key: Key) => {
        const s = source(store);
        try {
          return (await s.get(key)) as V | undefined;
        } catch (err) {
          throw this.explainInactive(err);
        }
      },
      query: async <V>(store: string, o: QueryOptions = {}) => {
        const s = source(store, o.index);
        const range = toIdbRange(o.range, this.factory);
        const limit = o.limit ?? Infinity;
        if (range === null || limit <= 0) return [];
        try {
          if (o.direction !== 'prev') {
            // getAll returns index order with ties by primary key, like a 'next' cursor, in one request.
            return (await s.getAll(range, Number.isFinite(limit) ? Math.min(Math.floor(limit), 0xffffffff) : undefined)) as V[];
          }
          const out: V[] = [];
          let c = await s.openCursor(range, 'prev');
          while (c) {
            out.push(c.value as V);
            if (out.length >= limit) break;
            c = await c.continue();
          }
          return out;
        } catch (err) {
          throw this.explainInactive(err);
        }
      },
      count: async (store: string, o: QueryOptions = {}) => {
        const s = source(store, o.index);
        const range = toIdbRange(o.range, this.factory);
        if (range === null) return 0;
        try {
          return Math.max(0, Math.min(await s.count(range), o.limit ?? Infinity));
        } catch (err) {
          throw this.explainInactive(err);
        }
      },
    };
    try {
      return await fn(rtx);
    } catch (err) {
      try {
        tx?.abort();
      } catch {
        // already finished
      }
      throw err;
    }
  }

  async write(ops: WriteOp[]): Promise<void> {
    this.live();
    if (ops.length === 0) return;
    const stores = [...new Set(ops.map((op) => op.store))];
    // The raw transaction: requests are fired without awaiting each, and failures reach us through the
    // transaction's abort. (Throws NotFoundError for an unknown store, before anything is written.)
    const tx = this.raw.transaction(stores, 'readwrite', this.opts.durability ? { durability: this.opts.durability } : undefined);
    const done = txDone(tx);
    try {
      for (const op of ops) {
        const s = tx.objectStore(op.store);
        if (op.op === 'put') s.put(op.value);
        else if (op.op === 'delete') s.delete(op.key);
        else {
          const range = toIdbRange(op.range, this.factory);
          if (range === undefined) s.clear();
          else if (range !== null) s.delete(range);
        }
      }
    } catch (err) {
      // A synchronous failure (DataError: no valid key; DataCloneError): undo the batch.
      try {
        tx.abort();
      } catch {
        // already aborted
      }
      await done.catch(() => {});
      throw err;
    }
    // Every request is issued: commit now rather than when the browser notices the transaction has nothing left
    // to do (IndexedDB 3.0 `commit()`; where it is missing, auto-commit does the same a little later).
    (tx as { commit?: () => void }).commit?.();
    await done;
  }

  async estimateSize(): Promise<number | undefined> {
    const storage = (globalThis as { navigator?: { storage?: { estimate?: () => Promise<{ usage?: number }> } } }).navigator?.storage;
    if (typeof storage?.estimate !== 'function') return undefined;
    try {
      return (await storage.estimate()).usage;
    } catch {
      return undefined;
    }
  }

  async close(): Promise<void> {
    this.closedReason ??= `database "${this.db.name}" is closed`;
    this.db.close();
  }
}
