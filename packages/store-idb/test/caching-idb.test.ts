// CachingEngine over the IndexedDB engine (fake-indexeddb): the engine and Store conformance suites,
// re-opening, and mirror loads inside a live IndexedDB read transaction.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { CachingEngine, tinyTails } from '../../server-core/src/store/caching-engine.ts';
import { schemaOf, type Migration, type ReadTx, type StorageEngine, type WriteOp } from '../../server-core/src/store/engine.ts';
import { engineConformance } from '../../server-core/src/store/engine-conformance.ts';
import { MIGRATIONS } from '../../server-core/src/store/schema.ts';
import { storeConformance } from '../../server-core/src/store/store-conformance.ts';
import { Store } from '../../server-core/src/store/store.ts';
import { openIdbEngine } from '../src/index.ts';

const h = { describe, it, expect };
const named = new Map<string, IDBFactory>();
function idb(migrations: readonly Migration[], dbName?: string): Promise<StorageEngine> {
  let factory = new IDBFactory();
  if (dbName !== undefined) {
    factory = named.get(dbName) ?? factory;
    named.set(dbName, factory);
  }
  return openIdbEngine({ name: dbName ?? 'caching', migrations, indexedDB: factory });
}
const stores = (m: Migration[]) => Object.keys(schemaOf(m));

engineConformance('CachingEngine(IndexedDB), all mirrored', async (m, db) => new CachingEngine(await idb(m, db), { migrations: m, mirror: stores(m), lru: {} }), h, { persistent: true });
engineConformance('CachingEngine(IndexedDB), all LRU', async (m, db) =>
  new CachingEngine(await idb(m, db), { migrations: m, mirror: [], lru: Object.fromEntries(stores(m).map((s) => [s, 3])) }), h, { persistent: true });
engineConformance('CachingEngine(IndexedDB), mixed, 4-row mirrors', async (m, db) => {
  const s = stores(m);
  return new CachingEngine(await idb(m, db), { migrations: m, mirror: s.filter((_, i) => i % 2 === 0), lru: Object.fromEntries(s.filter((_, i) => i % 2).map((x) => [x, 100])), maxMirrorRows: 4 });
}, h, { persistent: true });
engineConformance('CachingEngine(IndexedDB), tails and LRU', async (m, db) =>
  new CachingEngine(await idb(m, db), { migrations: m, mirror: [], lru: Object.fromEntries(stores(m).map((s) => [s, 2])), tails: tinyTails(m) }), h, { persistent: true });
storeConformance('CachingEngine(IndexedDB), defaults', async (m, db) => new CachingEngine(await idb(m, db), { migrations: m }), h, { persistent: true });

class Counting implements StorageEngine {
  reads = 0;
  constructor(readonly inner: StorageEngine) {}
  read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    this.reads++;
    return this.inner.read(fn);
  }
  write(ops: WriteOp[]): Promise<void> {
    return this.inner.write(ops);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('CachingEngine over IndexedDB', () => {
  const M: Migration[] = [{ createStores: { hot: { keyPath: 'id', indexes: { byTag: { keyPath: 'tag' } } }, ev: { keyPath: 'id' }, log: { keyPath: 'n' } } }];
  const opts = { migrations: M, mirror: ['hot'], lru: { ev: 10 } };
  const put = (store: string, ...values: object[]): WriteOp[] => values.map((value) => ({ op: 'put', store, value }));

  it('loads mirrors inside a live read transaction: inner calls before and after the load share it', async () => {
    const inner = new Counting(await idb(M));
    await inner.write([...put('hot', { id: 1, tag: 'a' }, { id: 2, tag: 'b' }), ...put('ev', { id: 'x' }, { id: 'y' }), ...put('log', { n: 1 }, { n: 2 })]);
    const e = new CachingEngine(inner, opts);
    const out = await e.read(async (tx) => {
      const a = await tx.query('log'); // opens the IndexedDB transaction
      const hot = await tx.query<{ id: number }>('hot', { index: 'byTag', direction: 'prev' }); // loads the mirror through it
      const [x, n] = await Promise.all([tx.get<{ id: string }>('ev', 'x'), tx.count('log')]); // still live
      const y = await tx.get<{ id: string }>('ev', 'y');
      return { a: a.length, hot: hot.map((r) => r.id), x: x?.id, n, y: y?.id };
    });
    expect(out).toEqual({ a: 2, hot: [2, 1], x: 'x', n: 2, y: 'y' });
    expect(inner.reads).toBe(1);
    expect(e.stats.mirrorLoads).toBe(1);
    // Warm: no IndexedDB transaction for mirrored stores and cached events.
    await e.read(async (tx) => Promise.all([tx.get('hot', 1), tx.get('ev', 'x'), tx.query('hot')]));
    expect(inner.reads).toBe(1);
    await e.close();
  });

  it('seeds a tail inside a live read transaction, then answers recent ranges from memory', async () => {
    const T: Migration[] = [{ createStores: { ev: { keyPath: 'id', indexes: { byPos: { keyPath: 'pos' }, byRoomPos: { keyPath: ['room', 'pos'] } } }, other: { keyPath: 'k' } } }];
    const inner = new Counting(await idb(T));
    await inner.write([...put('ev', ...Array.from({ length: 20 }, (_, i) => ({ id: `e${i}`, room: i % 2 ? 'a' : 'b', pos: i }))), ...put('other', { k: 1 })]);
    const e = new CachingEngine(inner, { migrations: T, mirror: [], lru: {}, tails: { ev: { index: 'byPos', seed: 6, keep: 10 } } });
    const page = (r: string, limit: number) => (tx: ReadTx) => tx.query<{ id: string }>('ev', { index: 'byRoomPos', range: { lower: [r, -Infinity], upper: [r, Infinity] }, direction: 'prev', limit });
    const out = await e.read(async (tx) => {
      const o = await tx.get('other', 1); // the IndexedDB transaction is open
      const p = await page('a', 3)(tx); // seeds the tail (positions 14..19) through it, then answers
      const q = await page('b', 5)(tx); // the tail has only b14, b16, b18: read through, same transaction
      return { o, p: p.map((v) => v.id), q: q.map((v) => v.id) };
    });
    expect(out).toEqual({ o: { k: 1 }, p: ['e19', 'e17', 'e15'], q: ['e18', 'e16', 'e14', 'e12', 'e10'] });
    expect(inner.reads).toBe(1);
    await e.write(put('ev', { id: 'e20', room: 'b', pos: 20 }, { id: 'e21', room: 'a', pos: 21 }));
    expect((await e.read(page('b', 2))).map((v) => v.id)).toEqual(['e20', 'e18']);
    expect((await e.read((tx) => tx.query<{ id: string }>('ev', { index: 'byRoomPos', range: { lower: ['a', 19], upper: ['a', Infinity], lowerOpen: true } }))).map((v) => v.id)).toEqual(['e21']);
    expect(inner.reads).toBe(1);
    await e.close();
  });

  it('writes reach IndexedDB and the caches; a re-opened engine sees them; a failed write changes nothing', async () => {
    const name = `caching-reopen-${Date.now()}`;
    const e1 = new CachingEngine(await idb(M, name), opts);
    await e1.write([...put('hot', { id: 1, tag: 'a' }), ...put('ev', { id: 'x', v: 1 })]);
    expect((await e1.read((tx) => tx.query('hot'))).length).toBe(1);
    await e1.write([...put('hot', { id: 2, tag: 'a' }), ...put('ev', { id: 'x', v: 2 }), { op: 'deleteRange', store: 'hot', range: { upper: 1 } }]);
    await expect(e1.write([...put('hot', { id: 3 }), ...put('ev', { id: 'x', v: 3 }), ...put('hot', { nokey: true })])).rejects.toMatchObject({ name: 'DataError' });
    expect(await e1.read((tx) => tx.query('hot'))).toEqual([{ id: 2, tag: 'a' }]);
    expect(await e1.read((tx) => tx.get('ev', 'x'))).toEqual({ id: 'x', v: 2 });
    await e1.close();
    const e2 = new CachingEngine(await idb(M, name), opts);
    expect(await e2.read((tx) => tx.query('hot', { index: 'byTag' }))).toEqual([{ id: 2, tag: 'a' }]);
    expect(await e2.read((tx) => tx.get('ev', 'x'))).toEqual({ id: 'x', v: 2 });
    await e2.close();
  });

  it('a homeserver Store over it: counters and data survive a restart', async () => {
    const name = `caching-store-${Date.now()}`;
    const s1 = await Store.open(new CachingEngine(await idb(MIGRATIONS, name), { migrations: MIGRATIONS }));
    const b = s1.batch();
    const p = b.nextStream();
    b.put('rooms', { roomId: '!r', version: '11', extremities: ['$e'], maxDepth: 1, stateGroup: b.newStateGroupId(), createdTs: 0 });
    b.put('events', { eventId: '$e', roomId: '!r', stream: p, depth: 1, type: 'm.room.create', sender: '@a:x', pdu: { type: 'm.room.create', content: {} } });
    await b.commit();
    expect((await s1.rooms.room('!r'))?.extremities).toEqual(['$e']);
    await s1.close();
    const s2 = await Store.open(new CachingEngine(await idb(MIGRATIONS, name), { migrations: MIGRATIONS }));
    expect(s2.stream).toBe(p);
    expect((await s2.rooms.room('!r'))?.stateGroup).toBe(1);
    expect((await s2.rooms.event('$e'))?.type).toBe('m.room.create');
    expect((await s2.rooms.timeline('!r', { dir: 'b', limit: 5 })).map((ev) => ev.eventId)).toEqual(['$e']);
    await s2.close();
  });
});
