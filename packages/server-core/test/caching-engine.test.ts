// CachingEngine over MemoryEngine: the engine and Store conformance suites in several cache layouts,
// then cache coherence (mirrors, LRU caches, failed writes, overlapping reads and writes, a random model check).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CachingEngine, tinyTails, type CachingEngineOptions } from '../src/store/caching-engine.ts';
import { engineConformance } from '../src/store/engine-conformance.ts';
import { prefixRange, schemaOf, type Key, type Migration, type QueryOptions, type ReadTx, type StorageEngine, type WriteOp } from '../src/store/engine.ts';
import { MemoryEngine } from '../src/store/memory-engine.ts';
import { MIGRATIONS } from '../src/store/schema.ts';
import { storeConformance } from '../src/store/store-conformance.ts';
import { Store } from '../src/store/store.ts';

const h = { describe, it, expect };
const storesOf = (m: Migration[]) => Object.keys(schemaOf(m));

// Every store mirrored; every store LRU-cached (tiny caches, so eviction runs); half and half; mirrors
// so small that most stores overflow them and fall back to the inner engine.
engineConformance('CachingEngine(MemoryEngine), all mirrored', async (m) => new CachingEngine(new MemoryEngine(m), { migrations: m, mirror: storesOf(m), lru: {} }), h);
engineConformance('CachingEngine(MemoryEngine), all LRU', async (m) =>
  new CachingEngine(new MemoryEngine(m), { migrations: m, mirror: [], lru: Object.fromEntries(storesOf(m).map((s) => [s, 3])) }), h);
engineConformance('CachingEngine(MemoryEngine), mixed', async (m) => {
  const s = storesOf(m);
  return new CachingEngine(new MemoryEngine(m), { migrations: m, mirror: s.filter((_, i) => i % 2 === 0), lru: Object.fromEntries(s.filter((_, i) => i % 2).map((x) => [x, 1000])) });
}, h);
engineConformance('CachingEngine(MemoryEngine), 4-row mirrors', async (m) => new CachingEngine(new MemoryEngine(m), { migrations: m, mirror: storesOf(m), lru: {}, maxMirrorRows: 4 }), h);
engineConformance('CachingEngine(MemoryEngine), tails and LRU', async (m) =>
  new CachingEngine(new MemoryEngine(m), { migrations: m, mirror: [], lru: Object.fromEntries(storesOf(m).map((s) => [s, 2])), tails: tinyTails(m) }), h);
engineConformance('CachingEngine(MemoryEngine), big tails', async (m) =>
  new CachingEngine(new MemoryEngine(m), { migrations: m, mirror: [], lru: {}, tails: Object.fromEntries(Object.entries(tinyTails(m)).map(([s, t]) => [s, { ...t, seed: 1e9, keep: 1e6 }])) }), h);

storeConformance('CachingEngine(MemoryEngine), defaults', async (m) => new CachingEngine(new MemoryEngine(m), { migrations: m }), h);
storeConformance('CachingEngine(MemoryEngine), 2-row mirrors, 2-key LRU, 3-row tail', async (m) =>
  new CachingEngine(new MemoryEngine(m), { migrations: m, maxMirrorRows: 2, lru: { events: 2, state_groups: 2 }, tails: { events: { index: 'by_stream', seed: 1, keep: 3 } } }), h);

/** An engine that counts its transactions, and can hold writes and reads back (to make them overlap). */
class Probe implements StorageEngine {
  reads = 0;
  writes = 0;
  /** When set, each write waits for this before reaching the inner engine. */
  writeGate?: Promise<void>;
  /** When set, each write (once through the gate) is applied, then resolves only after this. */
  ackGate?: Promise<void>;
  constructor(readonly inner: StorageEngine) {}
  read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    this.reads++;
    return this.inner.read(fn);
  }
  async write(ops: WriteOp[]): Promise<void> {
    this.writes++;
    if (this.writeGate) await this.writeGate;
    await this.inner.write(ops);
    if (this.ackGate) await this.ackGate;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}
const tick = () => new Promise((r) => setTimeout(r, 0));
/** A ReadTx whose answers come back after a macrotask or two (so reads and writes overlap in the model checks). */
let slowCalls = 0;
function slowTx(tx: ReadTx): ReadTx {
  // Delays before and after the read: the answer may be older than a write that completes meanwhile.
  const later = async <T>(p: () => Promise<T>): Promise<T> => {
    for (let i = 0; i < slowCalls++ % 3; i++) await tick();
    const v = await p();
    for (let i = 0; i < slowCalls++ % 2; i++) await tick();
    return v;
  };
  return {
    get: (store, key) => later(() => tx.get(store, key)),
    query: (store, opts) => later(() => tx.query(store, opts)),
    count: (store, opts) => later(() => tx.count(store, opts)),
  };
}

const M: Migration[] = [
  {
    createStores: {
      small: { keyPath: 'id', indexes: { byTag: { keyPath: 'tag' }, byMail: { keyPath: 'mail', unique: true } } },
      big: { keyPath: ['room', 'n'], indexes: { byN: { keyPath: 'n' } } },
      plain: { keyPath: 'k' },
    },
  },
];
const OPTS: CachingEngineOptions = { migrations: M, mirror: ['small'], lru: { big: 100 } };
const T: Migration[] = [{ createStores: { ev: { keyPath: 'id', indexes: { byPos: { keyPath: 'pos' }, byRoomPos: { keyPath: ['room', 'pos'] } } } } }];
function setup(opts: Partial<CachingEngineOptions> = {}) {
  const mem = new MemoryEngine(M);
  const probe = new Probe(mem);
  const engine = new CachingEngine(probe, { ...OPTS, ...opts });
  return { mem, probe, engine };
}
const put = (store: string, ...values: object[]): WriteOp[] => values.map((value) => ({ op: 'put', store, value }));
const get = (e: StorageEngine, store: string, key: Key) => e.read((tx) => tx.get<Record<string, unknown>>(store, key));
const all = (e: StorageEngine, store: string, opts?: QueryOptions) => e.read((tx) => tx.query<Record<string, unknown>>(store, opts));

describe('CachingEngine coherence', () => {
  it('mirrors: loaded once, at first use, then served from memory and kept current by writes', async () => {
    const { probe, engine } = setup();
    await engine.write(put('small', { id: 1, tag: 'a' }, { id: 2, tag: 'b' }));
    expect(probe.reads).toBe(0);
    expect(await all(engine, 'small')).toEqual([{ id: 1, tag: 'a' }, { id: 2, tag: 'b' }]);
    expect(probe.reads).toBe(1);
    expect(engine.stats.mirrorLoads).toBe(1);
    await engine.write(put('small', { id: 3, tag: 'a' }, { id: 1, tag: 'c' }));
    expect(await all(engine, 'small', { index: 'byTag' })).toEqual([{ id: 3, tag: 'a' }, { id: 2, tag: 'b' }, { id: 1, tag: 'c' }]);
    expect(await engine.read((tx) => tx.count('small', { index: 'byTag', range: { lower: 'a', upper: 'a' } }))).toBe(1);
    await engine.write([{ op: 'delete', store: 'small', key: 2 }]);
    expect(await get(engine, 'small', 2)).toBe(undefined);
    await engine.write([...put('small', { id: 4 }, { id: 5 }, { id: 6 }), { op: 'deleteRange', store: 'small', range: { lower: 3, upper: 5, upperOpen: true } }]);
    expect((await all(engine, 'small')).map((v) => v.id)).toEqual([1, 5, 6]);
    await engine.write([{ op: 'deleteRange', store: 'small', range: { lower: 6 } }]);
    expect((await all(engine, 'small')).map((v) => v.id)).toEqual([1, 5]);
    // All of that from memory: still the one inner read.
    expect(probe.reads).toBe(1);
    expect(await engine.read((tx) => tx.query('small'))).toEqual(await probe.inner.read((tx) => tx.query('small')));
  });

  it('LRU: a miss reads through, then hits (present or absent); writes update it; deleteRange drops entries', async () => {
    const { probe, engine } = setup();
    await engine.write(put('big', { room: 'r', n: 1, v: 'one' }, { room: 'r', n: 2, v: 'two' }, { room: 's', n: 1, v: 'other' }));
    expect(await get(engine, 'big', ['r', 1])).toEqual({ room: 'r', n: 1, v: 'one' }); // written through
    expect(probe.reads).toBe(0);
    await get(engine, 'big', ['r', 9]); // absent: read through, remembered as absent
    expect(probe.reads).toBe(1);
    expect(await get(engine, 'big', ['r', 9])).toBe(undefined);
    expect(probe.reads).toBe(1);
    await engine.write(put('big', { room: 'r', n: 9, v: 'nine' }));
    expect(await get(engine, 'big', ['r', 9])).toEqual({ room: 'r', n: 9, v: 'nine' });
    await engine.write([{ op: 'delete', store: 'big', key: ['r', 1] }]);
    expect(await get(engine, 'big', ['r', 1])).toBe(undefined);
    expect(probe.reads).toBe(1);
    await engine.write([{ op: 'deleteRange', store: 'big', range: prefixRange('r') }]);
    expect(await get(engine, 'big', ['r', 2])).toBe(undefined);
    expect(await get(engine, 'big', ['s', 1])).toEqual({ room: 's', n: 1, v: 'other' });
    expect(probe.reads).toBe(2); // ['r', 2] was dropped, so read again; ['s', 1] stayed
    // Queries and counts always go to the inner engine.
    expect((await all(engine, 'big', { index: 'byN' })).map((v) => v.v)).toEqual(['other']);
    expect(probe.reads).toBe(3);
    expect(engine.stats.lruHits).toBeGreaterThan(0);
  });

  it('LRU: evicts the least recently used key', async () => {
    const { probe, engine } = setup({ lru: { big: 2 } });
    await engine.write(put('big', { room: 'r', n: 1 }, { room: 'r', n: 2 }, { room: 'r', n: 3 }));
    // The cache holds [r,2] and [r,3]; touching [r,2] makes [r,3] the oldest.
    await get(engine, 'big', ['r', 2]);
    expect(probe.reads).toBe(0);
    await get(engine, 'big', ['r', 1]);
    expect(probe.reads).toBe(1);
    await get(engine, 'big', ['r', 2]);
    expect(probe.reads).toBe(1);
    await get(engine, 'big', ['r', 3]);
    expect(probe.reads).toBe(2);
  });

  it('keys equal under indexedDB.cmp share an LRU entry (0 and -0, equal arrays)', async () => {
    const { probe, engine } = setup({ lru: { big: 10, plain: 10 } });
    await engine.write(put('plain', { k: -0, v: 'zero' }, { k: Infinity, v: 'inf' }, { k: -Infinity, v: '-inf' }, { k: '1', v: 'str' }, { k: 1, v: 'num' }));
    expect((await get(engine, 'plain', 0))?.v).toBe('zero');
    expect((await get(engine, 'plain', Infinity))?.v).toBe('inf');
    expect((await get(engine, 'plain', -Infinity))?.v).toBe('-inf');
    expect((await get(engine, 'plain', '1'))?.v).toBe('str');
    expect((await get(engine, 'plain', 1))?.v).toBe('num');
    await engine.write(put('big', { room: 'a,b', n: 1, v: 1 }, { room: 'a', n: 1, v: 2 }));
    expect((await get(engine, 'big', ['a,b', 1]))?.v).toBe(1);
    expect((await get(engine, 'big', ['a', 1]))?.v).toBe(2);
    expect(probe.reads).toBe(0);
  });

  it('a failed write leaves no trace: the caches it touched are dropped, load again and are right', async () => {
    const { probe, engine } = setup();
    await engine.write([...put('small', { id: 1, mail: 'a@x' }), ...put('big', { room: 'r', n: 1, v: 'kept' })]);
    await all(engine, 'small'); // load the mirror
    // A unique index violation, at the end of a batch that also changes both caches.
    const bad: WriteOp[] = [
      ...put('small', { id: 2, mail: 'b@x' }), { op: 'delete', store: 'small', key: 1 },
      ...put('big', { room: 'r', n: 1, v: 'changed' }, { room: 'r', n: 2, v: 'new' }), { op: 'deleteRange', store: 'big', range: {} },
      ...put('small', { id: 3, mail: 'b@x' }),
    ];
    await expect(engine.write(bad)).rejects.toMatchObject({ name: 'ConstraintError' });
    // Unknown store, and an uncloneable value.
    await expect(engine.write([...put('small', { id: 4 }), ...put('nope', { id: 1 })])).rejects.toThrow();
    await expect(engine.write([...put('big', { room: 'r', n: 1, v: 'x' }), ...put('small', { id: 5, f: () => 1 })])).rejects.toThrow();
    // The second touched no cache (the first dropped the mirror): nothing of it was shown, so it does not count.
    expect(engine.failedVisibleWrites()).toBe(2);
    const reads = probe.reads;
    expect(await all(engine, 'small')).toEqual([{ id: 1, mail: 'a@x' }]);
    expect(await get(engine, 'big', ['r', 1])).toEqual({ room: 'r', n: 1, v: 'kept' });
    expect(await get(engine, 'big', ['r', 2])).toBe(undefined);
    expect(probe.reads).toBe(reads + 3); // the mirror loaded again, both keys read through
    expect(await probe.inner.read((tx) => tx.count('small'))).toBe(1);
    // ... and then served from memory again.
    const again = probe.reads;
    expect(await all(engine, 'small')).toEqual([{ id: 1, mail: 'a@x' }]);
    expect(await get(engine, 'big', ['r', 1])).toEqual({ room: 'r', n: 1, v: 'kept' });
    expect(await get(engine, 'big', ['r', 2])).toBe(undefined);
    expect(probe.reads).toBe(again);
  });

  it('shows a write to reads as soon as it is issued, before it is durable; settled() waits for it', async () => {
    const { probe, engine } = setup();
    await engine.write(put('small', { id: 1, tag: 'a' }));
    await all(engine, 'small');
    await get(engine, 'big', ['r', 1]);
    const ack = gate();
    probe.ackGate = ack.promise;
    let visible = false;
    let durable = false;
    const w = engine.write([...put('small', { id: 2, tag: 'b' }), ...put('big', { room: 'r', n: 1, v: 'new' })], { onVisible: () => (visible = true) });
    void w.then(() => (durable = true));
    expect(visible).toBe(true); // synchronously, from inside write
    expect((await all(engine, 'small')).map((v) => v.id)).toEqual([1, 2]);
    expect(await get(engine, 'big', ['r', 1])).toEqual({ room: 'r', n: 1, v: 'new' });
    let settled = false;
    const s = engine.settled().then(() => (settled = true));
    await tick();
    expect([durable, settled]).toEqual([false, false]);
    ack.open();
    await s;
    expect(durable).toBe(true);
    expect(engine.failedVisibleWrites()).toBe(0);
  });

  it('a write that touches no cache is shown when durable, and settled() does not wait for it', async () => {
    const { probe, engine } = setup();
    const ack = gate();
    probe.ackGate = ack.promise;
    let visible = false;
    const w = engine.write(put('plain', { k: 1 }), { onVisible: () => (visible = true) });
    let settled = false;
    await engine.settled().then(() => (settled = true));
    expect([settled, visible]).toEqual([true, false]);
    ack.open();
    await w;
    expect(visible).toBe(true);
  });

  it('copies values at write time, and hands out copies', async () => {
    const { engine } = setup();
    await all(engine, 'small');
    const v = { id: 1, tag: 'a', nested: { x: 1 } };
    const e = { room: 'r', n: 1, nested: { x: 1 } };
    const p = engine.write([...put('small', v), ...put('big', e)]);
    v.nested.x = 2;
    e.nested.x = 2;
    await p;
    const got = (await get(engine, 'small', 1)) as typeof v;
    const gotE = (await get(engine, 'big', ['r', 1])) as typeof e;
    expect([got.nested.x, gotE.nested.x]).toEqual([1, 1]);
    got.nested.x = 3;
    gotE.nested.x = 3;
    expect(((await get(engine, 'small', 1)) as typeof v).nested.x).toBe(1);
    expect(((await get(engine, 'big', ['r', 1])) as typeof e).nested.x).toBe(1);
  });

  it('does not mirror a store bigger than maxMirrorRows (reads stay correct, through the inner engine)', async () => {
    const { probe, engine } = setup({ maxMirrorRows: 2 });
    await engine.write(put('small', { id: 1 }, { id: 2 }, { id: 3 }));
    expect((await all(engine, 'small')).map((v) => v.id)).toEqual([1, 2, 3]);
    expect((await all(engine, 'small', { direction: 'prev', limit: 1 })).map((v) => v.id)).toEqual([3]);
    expect(engine.stats.mirrorLoads).toBe(0);
    expect(probe.reads).toBe(2);
    await engine.write([{ op: 'delete', store: 'small', key: 3 }]);
    expect((await all(engine, 'small')).map((v) => v.id)).toEqual([1, 2]);
  });

  it('a mirror load overlapping a write is not kept; the next read loads it', async () => {
    const { probe, engine } = setup();
    await engine.write(put('small', { id: 1 }));
    const g = gate();
    probe.writeGate = g.promise;
    const w = engine.write(put('small', { id: 2 }));
    // The write is in flight (not yet in the inner engine): the read is answered by the inner engine.
    expect((await all(engine, 'small')).map((v) => v.id)).toEqual([1]);
    expect(engine.stats.mirrorLoads).toBe(0);
    g.open();
    await w;
    probe.writeGate = undefined;
    expect((await all(engine, 'small')).map((v) => v.id)).toEqual([1, 2]);
    expect(engine.stats.mirrorLoads).toBe(1);
    await engine.write(put('small', { id: 3 }));
    expect((await all(engine, 'small')).map((v) => v.id)).toEqual([1, 2, 3]);
  });

  it('over an engine whose reads see issued writes, caches fill while a write commits, unless another is issued meanwhile', async () => {
    // As IndexedDB: a write is applied (ordered before later reads) when issued, and durable later.
    class Ordered extends Probe {
      readonly readsSeeIssuedWrites = true;
    }
    const mem = new MemoryEngine(M);
    const probe = new Ordered(mem);
    const engine = new CachingEngine(probe, OPTS);
    await engine.write([...put('small', { id: 1 }), ...put('big', { room: 'r', n: 1, v: 'one' })]);
    const ack = gate();
    probe.ackGate = ack.promise;
    let durable = false;
    const w = engine.write([...put('small', { id: 2 }), ...put('big', { room: 'r', n: 2, v: 'two' })]).then(() => (durable = true));
    // While it commits: the mirror loads (with the write in it) and is kept; an LRU miss is kept too.
    expect((await all(engine, 'small')).map((v) => v.id)).toEqual([1, 2]);
    expect(engine.stats.mirrorLoads).toBe(1);
    expect(await get(engine, 'big', ['r', 3])).toBe(undefined);
    const reads = probe.reads;
    expect((await all(engine, 'small')).map((v) => v.id)).toEqual([1, 2]);
    expect(await get(engine, 'big', ['r', 3])).toBe(undefined);
    expect(probe.reads).toBe(reads);
    expect(durable).toBe(false);
    ack.open();
    await w;
    probe.ackGate = undefined;

    // A write issued after a read began, before its answer: that answer is not kept.
    const fresh = new CachingEngine(probe, OPTS);
    const seen = await fresh.read(async (tx) => {
      await tx.query('plain'); // opens the inner transaction
      void fresh.write(put('small', { id: 3 }));
      return tx.query<{ id: number }>('small');
    });
    expect(seen.map((v) => v.id)).toEqual([1, 2, 3]); // (this engine applies at once)
    expect(fresh.stats.mirrorLoads).toBe(0);
  });

  it('a write that lands after a read transaction began keeps that read from filling caches', async () => {
    const { probe, engine } = setup();
    await engine.write([...put('small', { id: 1 }), ...put('big', { room: 'r', n: 1, v: 'old' })]);
    // Empty the LRU entry so the read below misses.
    await engine.write([{ op: 'deleteRange', store: 'big', range: {} }, ...put('big', { room: 'r', n: 1, v: 'old' })]);
    const fresh = new CachingEngine(probe, OPTS); // nothing cached yet
    const g = gate();
    let w: Promise<void> | undefined;
    const seen = await fresh.read(async (tx) => {
      await tx.query('plain'); // opens the inner transaction (no write in flight)
      w = fresh.write(put('big', { room: 'r', n: 1, v: 'new' })); // the memory engine applies it at once
      const ev = await tx.get<{ v: string }>('big', ['r', 1]); // inner: already 'new', but must not be cached as of a stale epoch
      const s = await tx.query('small'); // mirror load refused (a write started since the transaction began)
      g.open();
      return { ev: ev?.v, s: s.length };
    });
    await w;
    expect(seen).toEqual({ ev: 'new', s: 1 });
    expect(fresh.stats.mirrorLoads).toBe(0);
    expect((await get(fresh, 'big', ['r', 1]))?.v).toBe('new');
    await fresh.write(put('big', { room: 'r', n: 1, v: 'newer' }));
    expect((await get(fresh, 'big', ['r', 1]))?.v).toBe('newer');
    expect((await all(fresh, 'small')).length).toBe(1);
    expect(fresh.stats.mirrorLoads).toBe(1);
  });

  it('tail: seeded near the top, grows with writes, answers ranges above its floor and full backward pages', async () => {
    const mem = new MemoryEngine(T);
    const probe = new Probe(mem);
    const rows = (room: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => ({ id: `${room}${from + i}`, room, pos: from + i }));
    await mem.write(put('ev', ...rows('a', 1, 10), ...rows('b', 11, 12), { id: 'outlier', room: 'a' }));
    const e = new CachingEngine(probe, { migrations: T, mirror: [], lru: {}, tails: { ev: { index: 'byPos', seed: 4, keep: 6 } } });
    const room = (r: string, lo: number, hi: number, more: Partial<QueryOptions> = {}) =>
      e.read((tx) => tx.query<{ id: string }>('ev', { index: 'byRoomPos', range: { lower: [r, lo], upper: [r, hi], lowerOpen: true, upperOpen: true }, ...more })).then((x) => x.map((v) => v.id));
    // The first query loads the tail (positions above 12 - 4 = 8: a9, a10, b11, b12) in its own transaction.
    expect(await room('a', 8, Infinity)).toEqual(['a9', 'a10']);
    const loaded = probe.reads;
    expect(await room('a', 8, Infinity, { direction: 'prev' })).toEqual(['a10', 'a9']);
    expect(await e.read((tx) => tx.count('ev', { index: 'byPos', range: { lower: 9 } }))).toBe(4);
    expect(await room('a', -Infinity, Infinity, { direction: 'prev', limit: 2 })).toEqual(['a10', 'a9']); // a full page from the tail
    expect(probe.reads).toBe(loaded);
    // Not answerable from the tail: below the floor, forwards from the start, a page the tail cannot fill.
    expect(await room('a', 5, Infinity)).toEqual(['a6', 'a7', 'a8', 'a9', 'a10']);
    expect(await room('a', -Infinity, Infinity, { limit: 2 })).toEqual(['a1', 'a2']);
    expect(await room('a', -Infinity, Infinity, { direction: 'prev', limit: 3 })).toEqual(['a10', 'a9', 'a8']);
    expect(probe.reads).toBe(loaded + 3);
    // New rows go into the tail; a row rewritten below the floor leaves it; deletes apply.
    await e.write(put('ev', ...rows('a', 13, 14)));
    await e.write([...put('ev', { id: 'a9', room: 'a', pos: 2 }), { op: 'delete', store: 'ev', key: 'a13' }]);
    expect(await room('a', 8, Infinity)).toEqual(['a10', 'a14']);
    expect(await room('a', -Infinity, Infinity, { direction: 'prev', limit: 2 })).toEqual(['a14', 'a10']);
    expect(probe.reads).toBe(loaded + 3);
    // Beyond `keep` rows the floor rises: still correct, older ranges read through.
    await e.write(put('ev', ...rows('a', 15, 24)));
    expect(await room('a', 8, Infinity)).toEqual(['a10', 'a14', ...rows('a', 15, 24).map((r) => r.id)]);
    expect(await room('a', 20, Infinity)).toEqual(['a21', 'a22', 'a23', 'a24']);
    const after = probe.reads;
    expect(await room('a', 20, Infinity)).toEqual(['a21', 'a22', 'a23', 'a24']);
    expect(probe.reads).toBe(after);
    expect(e.stats.tailReads).toBeGreaterThan(0);
    // A range over two prefixes is never answered by the tail.
    expect((await e.read((tx) => tx.query<{ id: string }>('ev', { index: 'byRoomPos', range: { lower: ['a', 23], upper: ['b', 0] } }))).map((v) => v.id)).toEqual(['a23', 'a24']);
  });

  it('one read(fn) shares one inner transaction between its calls, and none when all are cached', async () => {
    const { probe, engine } = setup();
    await engine.write([...put('small', { id: 1 }), ...put('plain', { k: 1 }, { k: 2 })]);
    const before = probe.reads;
    await engine.read(async (tx) => {
      await tx.get('plain', 1);
      await Promise.all([tx.query('small'), tx.get('plain', 2), tx.count('plain'), tx.get('big', ['x', 1])]);
      await tx.get('small', 1);
    });
    expect(probe.reads - before).toBe(1);
    await engine.read(async (tx) => Promise.all([tx.get('small', 1), tx.get('big', ['x', 1]), tx.query('small', { index: 'byTag' })]));
    expect(probe.reads - before).toBe(1);
  });

  it('a second engine over the same data sees everything written (a restarted worker)', async () => {
    const { mem, engine } = setup();
    await engine.write([...put('small', { id: 1, tag: 't' }), ...put('big', { room: 'r', n: 1 }), ...put('plain', { k: 'x' })]);
    await all(engine, 'small');
    await engine.write(put('small', { id: 2, tag: 't' }));
    const again = new CachingEngine(mem, OPTS);
    expect((await all(again, 'small', { index: 'byTag' })).map((v) => v.id)).toEqual([1, 2]);
    expect(await get(again, 'big', ['r', 1])).toEqual({ room: 'r', n: 1 });
    expect(await get(again, 'plain', 'x')).toEqual({ k: 'x' });
  });

  it('after close(), reads and writes reject, also on cached stores', async () => {
    const { engine } = setup();
    await engine.write([...put('small', { id: 1 }), ...put('big', { room: 'r', n: 1 })]);
    await all(engine, 'small');
    await engine.close();
    await expect(get(engine, 'small', 1)).rejects.toMatchObject({ name: 'InvalidStateError' });
    await expect(get(engine, 'big', ['r', 1])).rejects.toMatchObject({ name: 'InvalidStateError' });
    await expect(engine.write(put('small', { id: 2 }))).rejects.toMatchObject({ name: 'InvalidStateError' });
  });

  it('refuses unknown stores and a store both mirrored and cached', () => {
    const mem = new MemoryEngine(M);
    expect(() => new CachingEngine(mem, { migrations: M, mirror: ['nope'] })).toThrow(/nope/);
    expect(() => new CachingEngine(mem, { migrations: M, mirror: ['small'], lru: { small: 4 } })).toThrow(/both/);
    // The defaults take only the homeserver stores the schema has.
    expect(() => new CachingEngine(mem, { migrations: M })).not.toThrow();
  });

  it('model check: random interleaved batches (some failing) and reads agree with the inner engine', async () => {
    const key = fc.integer({ min: 0, max: 7 });
    const tag = fc.constantFrom('a', 'b', 'c');
    const op = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), store: fc.constantFrom('small', 'big', 'plain'), k: key, tag, mail: fc.option(fc.constantFrom('m1', 'm2', 'm3'), { nil: undefined }) }),
      fc.record({ kind: fc.constant('delete' as const), store: fc.constantFrom('small', 'big', 'plain'), k: key }),
      fc.record({ kind: fc.constant('range' as const), store: fc.constantFrom('small', 'big', 'plain'), lo: key, hi: key }),
    );
    const step = fc.oneof(
      fc.record({ t: fc.constant('write' as const), ops: fc.array(op, { minLength: 1, maxLength: 5 }), delay: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ t: fc.constant('read' as const), k: key, delay: fc.integer({ min: 0, max: 2 }) }),
    );
    const toOp = (o: { kind: string; store: string; k?: number; tag?: string; mail?: string; lo?: number; hi?: number }): WriteOp => {
      const pk = (k: number): Key => (o.store === 'big' ? ['r', k] : o.store === 'small' ? k : `k${k}`);
      if (o.kind === 'put') {
        const base = o.store === 'big' ? { room: 'r', n: o.k! } : o.store === 'small' ? { id: o.k! } : { k: `k${o.k!}` };
        return { op: 'put', store: o.store, value: { ...base, tag: o.tag, ...(o.mail ? { mail: o.mail } : {}) } };
      }
      if (o.kind === 'delete') return { op: 'delete', store: o.store, key: pk(o.k!) };
      return { op: 'deleteRange', store: o.store, range: { lower: pk(Math.min(o.lo!, o.hi!)), upper: pk(Math.max(o.lo!, o.hi!)) } };
    };
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), fc.integer({ min: 1, max: 4 }), async (steps, lruSize) => {
        const mem = new MemoryEngine(M);
        // Writes reach the inner engine after a random number of macrotasks, in order (a serial queue),
        // so caches see writes in flight while reads run.
        let queue: Promise<unknown> = Promise.resolve();
        const slow: StorageEngine = {
          read: (fn) => mem.read((tx) => fn(slowTx(tx))),
          write: (ops) => {
            const p = queue.then(async () => {
              for (let i = 0; i < (ops.length % 3); i++) await tick();
              await mem.write(ops);
            });
            queue = p.catch(() => {});
            return p;
          },
          close: () => mem.close(),
        };
        const engine = new CachingEngine(slow, { migrations: M, mirror: ['small'], lru: { big: lruSize, plain: lruSize } });
        const pending: Promise<unknown>[] = [];
        for (const s of steps) {
          if (s.t === 'write') pending.push(engine.write(s.ops.map(toOp)).catch(() => {}));
          else {
            pending.push(engine.read(async (tx) => Promise.all([tx.get('big', ['r', s.k]), tx.query('small', { index: 'byTag' }), tx.get('plain', `k${s.k}`), tx.count('small')])));
          }
          for (let i = 0; i < s.delay; i++) await tick();
        }
        await Promise.all(pending);
        // Everything settled: every cached answer equals the inner engine's.
        const truth = (fn: (tx: ReadTx) => Promise<unknown>) => mem.read(fn);
        const queries: ((tx: ReadTx) => Promise<unknown>)[] = [
          (tx: ReadTx) => tx.query('small'),
          (tx: ReadTx) => tx.query('small', { index: 'byTag' }),
          (tx: ReadTx) => tx.query('small', { index: 'byMail', direction: 'prev' }),
          (tx: ReadTx) => tx.count('small', { index: 'byMail' }),
          (tx: ReadTx) => Promise.all(Array.from({ length: 8 }, (_, k) => tx.get('small', k))),
          (tx: ReadTx) => Promise.all(Array.from({ length: 8 }, (_, k) => tx.get('big', ['r', k]))),
          (tx: ReadTx) => Promise.all(Array.from({ length: 8 }, (_, k) => tx.get('plain', `k${k}`))),
        ];
        for (const q of queries) {
          expect(await engine.read(q)).toEqual(await truth(q));
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('CachingEngine tail model check', () => {
  it('random interleaved writes (some failing) and tail-shaped queries agree with the inner engine', async () => {
    const pos = fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined, freq: 6 });
    const id = fc.integer({ min: 0, max: 12 }).map((n) => `e${String(n).padStart(2, '0')}`);
    const op = fc.oneof(
      { arbitrary: fc.record({ kind: fc.constant('put' as const), id, room: fc.constantFrom('a', 'b'), pos }), weight: 4 },
      { arbitrary: fc.record({ kind: fc.constant('delete' as const), id }), weight: 1 },
      { arbitrary: fc.record({ kind: fc.constant('range' as const), lo: id, hi: id }), weight: 1 },
      { arbitrary: fc.record({ kind: fc.constant('bad' as const) }), weight: 1 },
    );
    const query = fc.record({
      index: fc.constantFrom('byPos', 'byRoomPos'),
      room: fc.constantFrom('a', 'b'),
      lo: fc.option(fc.integer({ min: -1, max: 31 }), { nil: undefined }),
      hi: fc.option(fc.integer({ min: -1, max: 31 }), { nil: undefined }),
      lowerOpen: fc.boolean(),
      upperOpen: fc.boolean(),
      direction: fc.constantFrom('next' as const, 'prev' as const),
      limit: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
    });
    const toQuery = (q: { index: string; room: string; lo?: number; hi?: number; lowerOpen: boolean; upperOpen: boolean; direction: 'next' | 'prev'; limit?: number }): QueryOptions => {
      const lo = q.lo ?? -Infinity;
      const hi = q.hi ?? Infinity;
      const range = q.index === 'byPos' ? { lower: q.lo, upper: q.hi, lowerOpen: q.lowerOpen, upperOpen: q.upperOpen } : { lower: [q.room, lo], upper: [q.room, hi], lowerOpen: q.lowerOpen, upperOpen: q.upperOpen };
      return { index: q.index, range, direction: q.direction, limit: q.limit };
    };
    const toOp = (o: { kind: string; id?: string; room?: string; pos?: number; lo?: string; hi?: string }): WriteOp => {
      if (o.kind === 'put') return { op: 'put', store: 'ev', value: { id: o.id, room: o.room, ...(o.pos === undefined ? {} : { pos: o.pos }) } };
      if (o.kind === 'delete') return { op: 'delete', store: 'ev', key: o.id! };
      if (o.kind === 'range') return { op: 'deleteRange', store: 'ev', range: { lower: o.lo! < o.hi! ? o.lo : o.hi, upper: o.lo! < o.hi! ? o.hi : o.lo } };
      return { op: 'put', store: 'ev', value: { room: 'a' } }; // no key: fails the batch
    };
    const step = fc.oneof(
      fc.record({ t: fc.constant('write' as const), ops: fc.array(op, { minLength: 1, maxLength: 4 }), delay: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ t: fc.constant('read' as const), q: query, delay: fc.integer({ min: 0, max: 2 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30 }), fc.integer({ min: 0, max: 8 }), fc.integer({ min: 1, max: 6 }), fc.array(query, { minLength: 10, maxLength: 10 }), async (steps, seed, keep, finals) => {
        const mem = new MemoryEngine(T);
        await mem.write(Array.from({ length: 8 }, (_, i) => ({ op: 'put' as const, store: 'ev', value: { id: `e${String(i).padStart(2, '0')}`, room: i % 2 ? 'a' : 'b', pos: i * 3 } })));
        let queue: Promise<unknown> = Promise.resolve();
        const slow: StorageEngine = {
          read: (fn) => mem.read((tx) => fn(slowTx(tx))),
          write: (ops) => {
            const p = queue.then(async () => {
              for (let i = 0; i < ops.length % 3; i++) await tick();
              await mem.write(ops);
            });
            queue = p.catch(() => {});
            return p;
          },
          close: () => mem.close(),
        };
        const engine = new CachingEngine(slow, { migrations: T, mirror: [], lru: { ev: 3 }, tails: { ev: { index: 'byPos', seed, keep } } });
        const pending: Promise<unknown>[] = [];
        for (const s of steps) {
          if (s.t === 'write') pending.push(engine.write(s.ops.map(toOp)).catch(() => {}));
          else pending.push(engine.read((tx) => tx.query('ev', toQuery(s.q))));
          for (let i = 0; i < s.delay; i++) await tick();
        }
        await Promise.all(pending);
        for (const q of [...steps.flatMap((s) => (s.t === 'read' ? [s.q] : [])), ...finals]) {
          const opts = toQuery(q);
          expect([opts, await engine.read((tx) => tx.query('ev', opts))]).toEqual([opts, await mem.read((tx) => tx.query('ev', opts))]);
          expect([opts, await engine.read((tx) => tx.count('ev', opts))]).toEqual([opts, await mem.read((tx) => tx.count('ev', opts))]);
        }
        for (let i = 0; i < 13; i++) {
          const k = `e${String(i).padStart(2, '0')}`;
          expect(await engine.read((tx) => tx.get('ev', k))).toEqual(await mem.read((tx) => tx.get('ev', k)));
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('CachingEngine under a homeserver Store', () => {
  it('a Store over it loads each mirror once, then makes no inner reads for cached state', async () => {
    const probe = new Probe(new MemoryEngine(MIGRATIONS));
    const s = await Store.open(new CachingEngine(probe, { migrations: MIGRATIONS }));
    const b = s.batch();
    b.put('accounts', { userId: '@a:x', createdTs: 1 });
    b.put('memberships', { userId: '@a:x', roomId: '!r', membership: 'join', eventId: '$j', stream: b.nextStream() });
    b.put('events', { eventId: '$j', roomId: '!r', stream: 1, depth: 1, type: 'm.room.member', sender: '@a:x', stateKey: '@a:x', pdu: { type: 'm.room.member', content: {} } });
    await b.commit();
    const check = async () => {
      expect((await s.accounts.get('@a:x'))?.createdTs).toBe(1);
      expect((await s.rooms.membershipsOfUser('@a:x')).map((m) => m.roomId)).toEqual(['!r']);
      expect((await s.rooms.event('$j'))?.type).toBe('m.room.member');
      expect(await s.rooms.txn('@a:x', 'D', 't')).toBe(undefined);
    };
    const reads = probe.reads;
    await check(); // loads the accounts, memberships and txns mirrors (events: written through)
    expect(probe.reads).toBe(reads + 3);
    await check();
    await s.batch().put('memberships', { userId: '@a:x', roomId: '!r2', membership: 'invite', eventId: '$i', stream: 5 }).commit();
    expect((await s.rooms.membershipsOfUser('@a:x')).map((m) => m.roomId)).toEqual(['!r', '!r2']);
    expect(probe.reads).toBe(reads + 3);
    await s.close();
  });
});
