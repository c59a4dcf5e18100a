// fake-indexeddb/auto installs the IndexedDB interface classes as globals (idb needs them); each
// database below still gets its own fresh IDBFactory, so tests never share state.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { compareKeys, type Key, type Migration, type StorageEngine } from '../../server-core/src/store/engine.ts';
import { engineConformance } from '../../server-core/src/store/engine-conformance.ts';
import { openIdbEngine } from '../src/index.ts';

// A fresh factory per unnamed engine; one factory per database name, so re-opening by name finds the data.
const named = new Map<string, IDBFactory>();
async function make(migrations: Migration[], dbName?: string): Promise<StorageEngine> {
  let factory = new IDBFactory();
  if (dbName !== undefined) {
    factory = named.get(dbName) ?? factory;
    named.set(dbName, factory);
  }
  return openIdbEngine({ name: dbName ?? 'conformance', migrations, indexedDB: factory });
}

engineConformance('IndexedDB engine (fake-indexeddb)', make, { describe, it, expect }, { persistent: true });

const M: Migration[] = [{ createStores: { s: { keyPath: 'k', indexes: { byV: { keyPath: 'v', unique: true } } } } }];
const M2: Migration[] = [...M, { createStores: { t: { keyPath: 'k' } } }];

describe('IndexedDB engine specifics', () => {
  it('compareKeys agrees with indexedDB.cmp', () => {
    const f = new IDBFactory();
    const keys: Key[] = [-Infinity, -2, -0.5, 0, 3, Infinity, '', 'a', 'B', '\ud83d\ude00', '\ue000', [], [0], [0, 'a'], ['a', []], [[]], [[1, 'x']]];
    for (const a of keys) for (const b of keys) expect([a, b, Math.sign(compareKeys(a, b))]).toEqual([a, b, f.cmp(a, b)]);
  });

  it('opens at version migrations.length and refuses an empty migration list', async () => {
    const f = new IDBFactory();
    const e = await openIdbEngine({ name: 'v', migrations: M2, indexedDB: f });
    await e.close();
    const dbs = await f.databases();
    expect(dbs).toEqual([{ name: 'v', version: 2 }]);
    await expect(openIdbEngine({ name: 'v', migrations: [], indexedDB: f })).rejects.toThrow(/at least one migration/);
    // An older app (fewer migrations) cannot open a newer database.
    await expect(openIdbEngine({ name: 'v', migrations: M, indexedDB: f })).rejects.toMatchObject({ name: 'VersionError' });
  });

  it('a failing migration fails the open and leaves the database at its old version, data intact', async () => {
    const f = new IDBFactory();
    const e = await openIdbEngine({ name: 'bad', migrations: M, indexedDB: f });
    await e.write([{ op: 'put', store: 's', value: { k: 1, v: 'x', w: 'same' } }, { op: 'put', store: 's', value: { k: 2, v: 'y', w: 'same' } }]);
    await e.close();
    // A unique index over clashing data.
    const clash: Migration[] = [...M, { createIndexes: { s: { byW: { keyPath: 'w', unique: true } } } }];
    await expect(openIdbEngine({ name: 'bad', migrations: clash, indexedDB: f })).rejects.toMatchObject({ name: 'ConstraintError' });
    // A migration naming a store that does not exist.
    const missing: Migration[] = [...M, { createIndexes: { nope: { i: { keyPath: 'x' } } } }];
    await expect(openIdbEngine({ name: 'bad', migrations: missing, indexedDB: f })).rejects.toMatchObject({ name: 'NotFoundError' });
    expect((await f.databases()).map((d) => d.version)).toEqual([1]);
    const again = await openIdbEngine({ name: 'bad', migrations: M, indexedDB: f });
    expect(await again.read((tx) => tx.count('s'))).toBe(2);
    await again.close();
  });

  it('closes itself on versionchange so another connection can upgrade, and reports it', async () => {
    const f = new IDBFactory();
    const changes: [number, number | null][] = [];
    const old = await openIdbEngine({ name: 'vc', migrations: M, indexedDB: f, onVersionChange: (o, n) => changes.push([o, n]) });
    await old.write([{ op: 'put', store: 's', value: { k: 1, v: 'a' } }]);
    const blocked: unknown[] = [];
    // The old engine is still open: the upgrade proceeds because it closes itself.
    const upgraded = await openIdbEngine({ name: 'vc', migrations: M2, indexedDB: f, onBlocked: () => blocked.push(1) });
    expect(changes).toEqual([[1, 2]]);
    expect(blocked).toEqual([]);
    expect(await upgraded.read((tx) => tx.get('s', 1))).toEqual({ k: 1, v: 'a' });
    await expect(old.read((tx) => tx.count('s'))).rejects.toMatchObject({ name: 'InvalidStateError' });
    await expect(old.write([{ op: 'put', store: 's', value: { k: 2, v: 'b' } }])).rejects.toMatchObject({ name: 'InvalidStateError' });
    await upgraded.close();
  });

  it('reports blocked while a foreign connection holds the old version, then opens once it closes', async () => {
    const f = new IDBFactory();
    await (await openIdbEngine({ name: 'bl', migrations: M, indexedDB: f })).close();
    // A connection that ignores versionchange (e.g. old code in another tab).
    const foreign = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = f.open('bl', 1);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const blocked: [number, number | null][] = [];
    let opened = false;
    const pending = openIdbEngine({ name: 'bl', migrations: M2, indexedDB: f, onBlocked: (o, n) => blocked.push([o, n]) }).then((e) => {
      opened = true;
      return e;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(blocked).toEqual([[1, 2]]);
    expect(opened).toBe(false);
    foreign.close();
    const e = await pending;
    expect(await e.read((tx) => tx.count('t'))).toBe(0);
    await e.close();
  });

  it('a read fn that awaits something else loses its transaction, with an explanation', async () => {
    const e = await make(M);
    await e.write([{ op: 'put', store: 's', value: { k: 1, v: 'a' } }]);
    const err = await e
      .read(async (tx) => {
        await tx.get('s', 1);
        await new Promise((r) => setTimeout(r, 10));
        return tx.get('s', 1);
      })
      .then(() => undefined, (x: Error) => x);
    expect(err?.message).toMatch(/read\(fn\) must await only its tx calls/);
    await e.close();
  });

  it('a constraint failure reports the ConstraintError and the engine keeps working', async () => {
    const e = await make(M);
    await e.write([{ op: 'put', store: 's', value: { k: 1, v: 'a' } }]);
    await expect(e.write([{ op: 'put', store: 's', value: { k: 2, v: 'a' } }])).rejects.toMatchObject({ name: 'ConstraintError' });
    await e.write([{ op: 'put', store: 's', value: { k: 2, v: 'b' } }]);
    expect(await e.read((tx) => tx.query('s', { index: 'byV', direction: 'prev' }))).toEqual([{ k: 2, v: 'b' }, { k: 1, v: 'a' }]);
    await e.close();
  });

  it('takes a durability hint; a database with no stores still answers (with NotFoundError)', async () => {
    const e = await openIdbEngine({ name: 'd', migrations: M, indexedDB: new IDBFactory(), durability: 'strict' });
    await e.write([{ op: 'put', store: 's', value: { k: 1, v: 'a' } }]);
    expect(await e.read((tx) => tx.get('s', 1))).toEqual({ k: 1, v: 'a' });
    await e.close();
    const empty = await openIdbEngine({ name: 'empty', migrations: [{}], indexedDB: new IDBFactory() });
    await expect(empty.read((tx) => tx.get('s', 1))).rejects.toMatchObject({ name: 'NotFoundError' });
    await expect(empty.write([{ op: 'put', store: 's', value: { k: 1 } }])).rejects.toMatchObject({ name: 'NotFoundError' });
    await empty.write([]);
    await empty.close();
  });

  it('estimateSize uses navigator.storage.estimate when there is one, else undefined', async () => {
    const e = await make(M);
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    const setNavigator = (value: unknown) => Object.defineProperty(globalThis, 'navigator', { value, configurable: true, writable: true });
    try {
      setNavigator({ storage: { estimate: async () => ({ usage: 1234, quota: 1e9 }) } });
      expect(await e.estimateSize!()).toBe(1234);
      setNavigator({});
      expect(await e.estimateSize!()).toBe(undefined);
      setNavigator({ storage: { estimate: async () => { throw new Error('denied'); } } });
      expect(await e.estimateSize!()).toBe(undefined);
    } finally {
      if (saved) Object.defineProperty(globalThis, 'navigator', saved);
      else delete (globalThis as { navigator?: unknown }).navigator;
    }
    await e.close();
  });
});
