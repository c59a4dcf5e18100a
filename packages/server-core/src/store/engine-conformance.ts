/**
 * A conformance suite for StorageEngine implementations. It takes the test functions as parameters
 * (describe / it / expect) rather than importing a test runner, so the same suite runs under vitest in
 * Node (MemoryEngine, IndexedDB engine over fake-indexeddb) and later in a real browser harness.
 *
 *   engineConformance('MemoryEngine', async (m) => new MemoryEngine(m), { describe, it, expect });
 *
 * `make(migrations)` must return a fresh, empty, isolated engine. Engines that persist data also take
 * `make(migrations, dbName)`: open (or create) the database called `dbName`, so that a later call with the
 * same name, after the first engine is closed, sees the same data, upgraded to the longer migration list.
 * Pass `{ persistent: true }` to run the re-open tests.
 */
import { compareKeys, prefixRange, type Key, type KeyRange, type Migration, type QueryOptions, type StorageEngine } from './engine.ts';

/** The assertions the suite uses: a structural subset of vitest's / jest's `expect`. */
export interface ConformanceMatchers {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  not: ConformanceMatchers;
}
export interface ConformanceHarness {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void>): void;
  expect(actual: unknown): ConformanceMatchers;
}

/**
 * Builds an engine over `migrations`. Without `dbName`: a fresh, empty database. With `dbName`: that
 * database, created on first use and re-opened (data kept, schema upgraded) on later calls.
 */
export type EngineFactory = (migrations: Migration[], dbName?: string) => Promise<StorageEngine>;

export interface ConformanceOptions {
  /** The engine keeps data across close / re-open by name: run the re-open tests. */
  persistent?: boolean;
}

let dbCounter = 0;

export function engineConformance(name: string, make: EngineFactory, t: ConformanceHarness, options: ConformanceOptions = {}): void {
  const { describe, it, expect } = t;

  /** Run `fn` over a fresh engine, closing it afterwards whatever happens. */
  async function withEngine(migrations: Migration[], fn: (e: StorageEngine) => Promise<void>, dbName?: string): Promise<void> {
    const e = await make(migrations, dbName);
    try {
      await fn(e);
    } finally {
      await e.close();
    }
  }
  /** The error a promise rejects with; fails when it resolves. */
  async function rejection(p: Promise<unknown>): Promise<Error> {
    let outcome: 'resolved' | Error = 'resolved';
    try {
      await p;
    } catch (err) {
      outcome = err instanceof Error ? err : new Error(`non-Error rejection: ${String(err)}`);
    }
    expect(outcome === 'resolved' ? 'resolved' : 'rejected').toBe('rejected');
    return outcome as Error;
  }
  const put = (store: string, ...values: object[]) => values.map((value) => ({ op: 'put' as const, store, value }));
  const all = <T = Record<string, unknown>>(e: StorageEngine, store: string, opts?: QueryOptions) => e.read((tx) => tx.query<T>(store, opts));
  const ids = async (e: StorageEngine, store: string, opts?: QueryOptions, field = 'id') => (await all(e, store, opts)).map((v) => v[field]);
  const get = <T = Record<string, unknown>>(e: StorageEngine, store: string, key: Key) => e.read((tx) => tx.get<T>(store, key));
  const count = (e: StorageEngine, store: string, opts?: QueryOptions) => e.read((tx) => tx.count(store, opts));

  const BASIC: Migration[] = [
    {
      createStores: {
        items: { keyPath: 'id', indexes: { byTag: { keyPath: 'tag' }, byPair: { keyPath: ['tag', 'n'] } } },
        other: { keyPath: 'k' },
      },
    },
  ];
  const EVENTS: Migration[] = [
    {
      createStores: {
        // An event-like store: compound primary key [room, seq], plus indexes.
        events: {
          keyPath: ['room', 'seq'],
          indexes: { byId: { keyPath: 'eventId', unique: true }, byTs: { keyPath: 'ts' }, byRoomTs: { keyPath: ['room', 'ts'] } },
        },
      },
    },
  ];
  const UNIQUE: Migration[] = [
    { createStores: { users: { keyPath: 'id', indexes: { byEmail: { keyPath: 'email', unique: true } } }, side: { keyPath: 'k' } } },
  ];

  describe(`${name}: StorageEngine conformance`, () => {
    describe('values', () => {
      it('put then get round-trips a structured value; a missing key reads undefined', async () => {
        await withEngine(BASIC, async (e) => {
          const value = {
            id: 'a', tag: 't', n: 1, nested: { list: [1, 'two', { three: 3 }], nil: null, yes: true },
            text: 'h\u00e9llo \ud83d\ude00', bytes: new Uint8Array([1, 2, 3]), neg: -1.5,
          };
          await e.write(put('items', value));
          expect(await get(e, 'items', 'a')).toEqual(value);
          expect(await get(e, 'items', 'b')).toBe(undefined);
          expect(await get(e, 'other', 'a')).toBe(undefined);
        });
      });

      it('stores copies: mutating a put object or a returned object does not change stored data', async () => {
        await withEngine(BASIC, async (e) => {
          const value = { id: 'a', tag: 't', nested: { x: 1, list: [1, 2] } };
          await e.write(put('items', value));
          value.nested.x = 2;
          value.nested.list.push(3);
          value.tag = 'changed';
          const got = await get<typeof value>(e, 'items', 'a');
          expect(got).toEqual({ id: 'a', tag: 't', nested: { x: 1, list: [1, 2] } });
          got!.nested.x = 99;
          got!.nested.list.length = 0;
          expect(await get(e, 'items', 'a')).toEqual({ id: 'a', tag: 't', nested: { x: 1, list: [1, 2] } });
          const [q] = await all<typeof value>(e, 'items');
          q.nested.x = 42;
          const [q2] = await all<typeof value>(e, 'items', { index: 'byTag' });
          q2.nested.x = 43;
          expect(await get(e, 'items', 'a')).toEqual({ id: 'a', tag: 't', nested: { x: 1, list: [1, 2] } });
          // The index still finds it under the original tag, not the mutated one.
          expect(await count(e, 'items', { index: 'byTag', range: { lower: 't', upper: 't' } })).toBe(1);
          expect(await count(e, 'items', { index: 'byTag', range: { lower: 'changed', upper: 'changed' } })).toBe(0);
        });
      });

      it('readsSeeIssuedWrites: a read begun once write() was called sees that write, before it resolves', async () => {
        await withEngine(BASIC, async (e) => {
          if (!e.readsSeeIssuedWrites) return; // (an engine that does not claim it)
          await e.write(put('items', { id: 'a', tag: 'old' }));
          let resolved = false;
          const w = e.write(put('items', { id: 'a', tag: 'new' }, { id: 'b', tag: 'new' })).then(() => (resolved = true));
          const seen = await e.read(async (tx) => [await tx.get<{ tag: string }>('items', 'a'), await tx.count('items')]);
          expect(seen).toEqual([{ id: 'a', tag: 'new' }, 2]);
          await w;
          expect(resolved).toBe(true);
        });
      });

      it('a shared query (the caller only reads) returns the same values, in the same order, as a copying one', async () => {
        await withEngine(BASIC, async (e) => {
          await e.write(put('items', { id: 'a', tag: 't', n: { x: 1 } }, { id: 'b', tag: 's', n: { x: 2 } }, { id: 'c', tag: 't', n: { x: 3 } }));
          for (const opts of [{}, { index: 'byTag' }, { direction: 'prev' as const, limit: 2 }, { index: 'byTag', range: { lower: 't', upper: 't' } }]) {
            expect(await all(e, 'items', { ...opts, shared: true })).toEqual(await all(e, 'items', opts));
          }
        });
      });

      it('overwriting a key replaces the whole value', async () => {
        await withEngine(BASIC, async (e) => {
          await e.write(put('items', { id: 'a', tag: 't', extra: 1 }));
          await e.write(put('items', { id: 'a', tag: 'u' }));
          expect(await get(e, 'items', 'a')).toEqual({ id: 'a', tag: 'u' });
          expect(await count(e, 'items')).toBe(1);
        });
      });
      it('after close(), reads and writes reject', async () => {
        const e = await make(BASIC);
        await e.write(put('other', { k: 1 }));
        await e.close();
        await rejection(e.read((tx) => tx.get('other', 1)));
        await rejection(e.write(put('other', { k: 2 })));
      });
    });

    describe('keys', () => {
      it('compound primary keys: get by the full array key, overwrite, no match on a partial key', async () => {
        await withEngine(EVENTS, async (e) => {
          await e.write(put('events',
            { room: '!a', seq: 1, eventId: '$1', ts: 10 },
            { room: '!a', seq: 2, eventId: '$2', ts: 20 },
            { room: '!b', seq: 1, eventId: '$3', ts: 30 }));
          expect(await get(e, 'events', ['!a', 2])).toEqual({ room: '!a', seq: 2, eventId: '$2', ts: 20 });
          expect(await get(e, 'events', ['!b', 1])).toEqual({ room: '!b', seq: 1, eventId: '$3', ts: 30 });
          expect(await get(e, 'events', ['!a'])).toBe(undefined);
          expect(await get(e, 'events', ['!a', 2, 0])).toBe(undefined);
          expect(await get(e, 'events', ['!b', '1'])).toBe(undefined);
          await e.write(put('events', { room: '!a', seq: 2, eventId: '$2', ts: 25 }));
          expect(await get(e, 'events', ['!a', 2])).toEqual({ room: '!a', seq: 2, eventId: '$2', ts: 25 });
          expect(await count(e, 'events')).toBe(3);
          expect((await all(e, 'events')).map((v) => [v.room, v.seq])).toEqual([['!a', 1], ['!a', 2], ['!b', 1]]);
        });
      });

      // The expected order of indexedDB.cmp: numbers < strings < arrays; strings by UTF-16 code unit
      // (so U+1F600, stored as the surrogate pair D83D DE00, sorts before U+E000 and U+FFFF); arrays
      // element by element, a prefix before a longer array.
      const ORDERED: Key[] = [
        -Infinity, -1e10, -1.5, -1, 0, 1e-9, 1, 1.5, 2, 10, 1e10, Infinity,
        '', ' ', '0', '10', '9', 'A', 'Z', '_', 'a', 'ab', 'abc', 'b', '\u00e9', '\u4e00',
        '\ud83d\ude00', '\ue000', '\uffff',
        [], [-1], [0], [0, 0], [0, 1], [0, ''], [0, 'a'], [0, []], [0, [0]], [1], ['a'], ['a', 0], ['b'], [[]], [[0]], [[0], 0], [[1]],
      ];

      it('primary keys order as indexedDB.cmp: numbers < strings < arrays, code-unit strings, prefix-first arrays', async () => {
        // compareKeys itself agrees with the expected order.
        for (let i = 0; i < ORDERED.length; i++) {
          for (let j = 0; j < ORDERED.length; j++) expect([i, j, Math.sign(compareKeys(ORDERED[i], ORDERED[j]))]).toEqual([i, j, Math.sign(i - j)]);
        }
        await withEngine(BASIC, async (e) => {
          const shuffled = ORDERED.map((k, i) => ({ k, i })).sort((a, b) => ((a.i * 7919) % 53) - ((b.i * 7919) % 53));
          // Several batches, so that ordering is not an artifact of one batch's insertion order.
          for (let i = 0; i < shuffled.length; i += 10) await e.write(put('other', ...shuffled.slice(i, i + 10)));
          expect(await ids(e, 'other', undefined, 'k')).toEqual(ORDERED);
          expect(await ids(e, 'other', { direction: 'prev' }, 'k')).toEqual([...ORDERED].reverse());
          // Each key is found by an equal (not identical) key.
          for (const [i, k] of ORDERED.entries()) expect((await get(e, 'other', structuredClone(k)))?.i).toBe(i);
        });
      });

      it('index keys order as indexedDB.cmp too', async () => {
        await withEngine(BASIC, async (e) => {
          await e.write(ORDERED.map((tag, i) => ({ op: 'put' as const, store: 'items', value: { id: `id${String(1000 - i)}`, tag, i } })));
          expect(await ids(e, 'items', { index: 'byTag' }, 'i')).toEqual(ORDERED.map((_, i) => i));
          expect(await ids(e, 'items', { index: 'byTag', direction: 'prev' }, 'i')).toEqual(ORDERED.map((_, i) => i).reverse());
        });
      });

      it('0 and -0 are the same key', async () => {
        await withEngine(BASIC, async (e) => {
          await e.write(put('other', { k: -0, v: 'neg' }));
          expect((await get(e, 'other', 0))?.v).toBe('neg');
          await e.write(put('other', { k: 0, v: 'pos' }));
          expect(await count(e, 'other')).toBe(1);
          expect((await get(e, 'other', -0))?.v).toBe('pos');
        });
      });
    });

    describe('queries', () => {
      const TEN = Array.from({ length: 10 }, (_, i) => ({ k: i + 1, v: `v${i + 1}` }));
      const cases: [string, QueryOptions, number[]][] = [
        ['no range', {}, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
        ['closed [3, 7]', { range: { lower: 3, upper: 7 } }, [3, 4, 5, 6, 7]],
        ['lower open (3, 7]', { range: { lower: 3, upper: 7, lowerOpen: true } }, [4, 5, 6, 7]],
        ['upper open [3, 7)', { range: { lower: 3, upper: 7, upperOpen: true } }, [3, 4, 5, 6]],
        ['both open (3, 7)', { range: { lower: 3, upper: 7, lowerOpen: true, upperOpen: true } }, [4, 5, 6]],
        ['bounds between keys [2.5, 4.5]', { range: { lower: 2.5, upper: 4.5 } }, [3, 4]],
        ['lower only [8, ∞)', { range: { lower: 8 } }, [8, 9, 10]],
        ['lower only open (8, ∞)', { range: { lower: 8, lowerOpen: true } }, [9, 10]],
        ['upper only (-∞, 3]', { range: { upper: 3 } }, [1, 2, 3]],
        ['upper only open (-∞, 3)', { range: { upper: 3, upperOpen: true } }, [1, 2]],
        ['single key [5, 5]', { range: { lower: 5, upper: 5 } }, [5]],
        ['empty (5, 5]', { range: { lower: 5, upper: 5, lowerOpen: true } }, []],
        ['inverted [7, 3] matches nothing', { range: { lower: 7, upper: 3 } }, []],
        ['beyond the data', { range: { lower: 11 } }, []],
        ['a string range misses all number keys', { range: { lower: '', upper: '\uffff' } }, []],
        ['prev over [3, 7]', { range: { lower: 3, upper: 7 }, direction: 'prev' }, [7, 6, 5, 4, 3]],
        ['prev over (3, 7)', { range: { lower: 3, upper: 7, lowerOpen: true, upperOpen: true }, direction: 'prev' }, [6, 5, 4]],
        ['prev, upper only open', { range: { upper: 3, upperOpen: true }, direction: 'prev' }, [2, 1]],
        ['prev, lower only', { range: { lower: 8 }, direction: 'prev' }, [10, 9, 8]],
        ['limit 2', { range: { lower: 3, upper: 7 }, limit: 2 }, [3, 4]],
        ['prev limit 2', { range: { lower: 3, upper: 7 }, direction: 'prev', limit: 2 }, [7, 6]],
        ['prev limit 3, no range', { direction: 'prev', limit: 3 }, [10, 9, 8]],
        ['limit beyond the matches', { range: { lower: 9 }, limit: 50 }, [9, 10]],
        ['limit 0', { limit: 0 }, []],
        ['limit 1', { limit: 1 }, [1]],
      ];

      it('by primary key: bounds open/closed, one-sided, both directions, limit; count agrees', async () => {
        await withEngine(BASIC, async (e) => {
          await e.write(put('other', ...TEN));
          for (const [label, opts, want] of cases) {
            expect([label, await ids(e, 'other', opts, 'k')]).toEqual([label, want]);
            expect([label, await count(e, 'other', opts)]).toEqual([label, want.length]);
          }
        });
      });

      it('by index: the same cases over an index key', async () => {
        await withEngine(BASIC, async (e) => {
          // Primary keys run against the index order, so a primary-key scan would give different answers.
          await e.write(put('items', ...TEN.map(({ k }) => ({ id: `id${String(100 - k)}`, tag: k, n: k }))));
          for (const [label, opts, want] of cases) {
            expect([label, await ids(e, 'items', { ...opts, index: 'byTag' }, 'n')]).toEqual([label, want]);
            expect([label, await count(e, 'items', { ...opts, index: 'byTag' })]).toEqual([label, want.length]);
          }
        });
      });

      it('index ties are ordered by primary key (reversed for prev), also under ranges and limits', async () => {
        await withEngine(BASIC, async (e) => {
          const pks = ['m', 'c', 'x', 'a', 'q', 'b'];
          await e.write(put('items', ...pks.map((id) => ({ id, tag: 'same' }))));
          await e.write(put('items', { id: 'z0', tag: 'before' }, { id: 'a0', tag: 'tie2' }, { id: '00', tag: 'tie2' }));
          const sorted = [...pks].sort();
          expect(await ids(e, 'items', { index: 'byTag', range: { lower: 'same', upper: 'same' } })).toEqual(sorted);
          expect(await ids(e, 'items', { index: 'byTag', range: { lower: 'same', upper: 'same' }, direction: 'prev' })).toEqual([...sorted].reverse());
          expect(await ids(e, 'items', { index: 'byTag', range: { lower: 'same', upper: 'same' }, limit: 2 })).toEqual(['a', 'b']);
          expect(await ids(e, 'items', { index: 'byTag', range: { lower: 'same', upper: 'same' }, direction: 'prev', limit: 2 })).toEqual(['x', 'q']);
          expect(await ids(e, 'items', { index: 'byTag' })).toEqual(['z0', ...sorted, '00', 'a0']);
          expect(await ids(e, 'items', { index: 'byTag', direction: 'prev' })).toEqual(['a0', '00', ...[...sorted].reverse(), 'z0']);
        });
      });

      it('prefixRange selects every compound key with a prefix, by primary key and by index', async () => {
        await withEngine(EVENTS, async (e) => {
          const rows = [
            { room: '!a', seq: 1, ts: 50 }, { room: '!a', seq: 2, ts: 40 }, { room: '!a', seq: 3, ts: 60 }, { room: '!a', seq: 10, ts: 5 },
            { room: '!ab', seq: 1, ts: 1 }, { room: '!b', seq: 1, ts: 2 }, { room: '!', seq: 7, ts: 3 },
          ].map((r, i) => ({ ...r, eventId: `$${i}` }));
          await e.write(put('events', ...rows));
          const seqs = async (opts: QueryOptions) => (await all(e, 'events', opts)).map((v) => `${String(v.room)}/${String(v.seq)}`);
          expect(await seqs({ range: prefixRange('!a') })).toEqual(['!a/1', '!a/2', '!a/3', '!a/10']);
          expect(await seqs({ range: prefixRange('!a'), direction: 'prev', limit: 2 })).toEqual(['!a/10', '!a/3']);
          expect(await seqs({ range: prefixRange('!ab') })).toEqual(['!ab/1']);
          expect(await seqs({ range: prefixRange('!c') })).toEqual([]);
          expect(await count(e, 'events', { range: prefixRange('!a') })).toBe(4);
          // By the [room, ts] index: one room's events in ts order.
          expect(await seqs({ index: 'byRoomTs', range: prefixRange('!a') })).toEqual(['!a/10', '!a/2', '!a/1', '!a/3']);
          expect(await seqs({ index: 'byRoomTs', range: prefixRange('!a'), direction: 'prev' })).toEqual(['!a/3', '!a/1', '!a/2', '!a/10']);
          expect(await seqs({ index: 'byRoomTs', range: prefixRange('!a', 40) })).toEqual(['!a/2']);
          expect(await seqs({ index: 'byRoomTs', range: { lower: ['!a', 40], upper: ['!a', []] } })).toEqual(['!a/2', '!a/1', '!a/3']);
          expect(await count(e, 'events', { index: 'byRoomTs', range: prefixRange('!b') })).toBe(1);
        });
      });

      it('prefixRange over a longer prefix of a three-part key', async () => {
        const m: Migration[] = [{ createStores: { s: { keyPath: ['a', 'b', 'c'] } } }];
        await withEngine(m, async (e) => {
          const rows = [['x', 1, 'p'], ['x', 1, 'q'], ['x', 1, 2], ['x', 2, 'a'], ['x', '1', 'z'], ['y', 1, 'a']].map(([a, b, c]) => ({ a, b, c }));
          await e.write(put('s', ...rows));
          expect((await all(e, 's', { range: prefixRange('x', 1) })).map((v) => v.c)).toEqual([2, 'p', 'q']);
          expect(await count(e, 's', { range: prefixRange('x') })).toBe(5);
          expect(await count(e, 's', { range: prefixRange() })).toBe(6);
        });
      });

      it('count over a whole store, an empty store, a range, an index', async () => {
        await withEngine(BASIC, async (e) => {
          expect(await count(e, 'items')).toBe(0);
          expect(await count(e, 'items', { index: 'byTag' })).toBe(0);
          await e.write(put('items', { id: 1, tag: 'a' }, { id: 2, tag: 'b' }, { id: 3, tag: 'b' }, { id: 4 }));
          expect(await count(e, 'items')).toBe(4);
          expect(await count(e, 'items', { range: { lower: 2 } })).toBe(3);
          expect(await count(e, 'items', { index: 'byTag' })).toBe(3);
          expect(await count(e, 'items', { index: 'byTag', range: { lower: 'b', upper: 'b' } })).toBe(2);
          expect(await count(e, 'items', { index: 'byTag', range: { lower: 'b', upper: 'b' }, limit: 1 })).toBe(1);
          expect(await count(e, 'other')).toBe(0);
        });
      });

      it('a read transaction serves several awaited calls, sequential and concurrent, and returns fn’s result', async () => {
        await withEngine(BASIC, async (e) => {
          await e.write([...put('items', { id: 1, tag: 'a' }, { id: 2, tag: 'b' }), ...put('other', { k: 'x' })]);
          const out = await e.read(async (tx) => {
            const a = await tx.get<{ tag: string }>('items', 1);
            const n = await tx.count('items');
            const [b, xs, c] = await Promise.all([tx.get<{ tag: string }>('items', 2), tx.query('other'), tx.count('other')]);
            const again = await tx.query('items', { index: 'byTag', direction: 'prev' });
            return { a: a?.tag, n, b: b?.tag, xs, c, again: again.length };
          });
          expect(out).toEqual({ a: 'a', n: 2, b: 'b', xs: [{ k: 'x' }], c: 1, again: 2 });
          const err = await rejection(e.read(async () => { throw new Error('boom'); }));
          expect(err.message).toBe('boom');
        });
      });

      it('reads of an unknown store or index reject', async () => {
        await withEngine(BASIC, async (e) => {
          await rejection(e.read((tx) => tx.get('nope', 1)));
          await rejection(e.read((tx) => tx.query('nope')));
          await rejection(e.read((tx) => tx.count('nope')));
          await rejection(e.read((tx) => tx.query('items', { index: 'nope' })));
          await rejection(e.read((tx) => tx.count('items', { index: 'nope' })));
        });
      });
    });

    describe('deletes and index maintenance', () => {
      it('delete removes one key; deleting an absent key is a no-op', async () => {
        await withEngine(BASIC, async (e) => {
          await e.write(put('items', { id: 1, tag: 'a' }, { id: 2, tag: 'a' }, { id: 3, tag: 'b' }));
          await e.write([{ op: 'delete', store: 'items', key: 2 }]);
          expect(await ids(e, 'items')).toEqual([1, 3]);
          await e.write([{ op: 'delete', store: 'items', key: 2 }, { op: 'delete', store: 'items', key: '1' }]);
          expect(await ids(e, 'items')).toEqual([1, 3]);
          expect(await ids(e, 'items', { index: 'byTag' })).toEqual([1, 3]);
        });
      });

      it('delete by compound key', async () => {
        await withEngine(EVENTS, async (e) => {
          await e.write(put('events', { room: '!a', seq: 1, eventId: '$1', ts: 1 }, { room: '!a', seq: 2, eventId: '$2', ts: 2 }));
          await e.write([{ op: 'delete', store: 'events', key: ['!a', 1] }]);
          expect((await all(e, 'events')).map((v) => v.eventId)).toEqual(['$2']);
          expect((await all(e, 'events', { index: 'byId' })).map((v) => v.eventId)).toEqual(['$2']);
        });
      });

      it('deleteRange removes exactly the keys in the range (open and closed bounds, prefixes)', async () => {
        await withEngine(BASIC, async (e) => {
          await e.write(put('other', ...Array.from({ length: 10 }, (_, i) => ({ k: i + 1 }))));
          await e.write([{ op: 'deleteRange', store: 'other', range: { lower: 3, upper: 5 } }]);
          expect(await ids(e, 'other', undefined, 'k')).toEqual([1, 2, 6, 7, 8, 9, 10]);
          await e.write([{ op: 'deleteRange', store: 'other', range: { lower: 6, upper: 9, lowerOpen: true, upperOpen: true } }]);
          expect(await ids(e, 'other', undefined, 'k')).toEqual([1, 2, 6, 9, 10]);
          await e.write([{ op: 'deleteRange', store: 'other', range: { lower: 9 } }]);
          expect(await ids(e, 'other', undefined, 'k')).toEqual([1, 2, 6]);
          await e.write([{ op: 'deleteRange', store: 'other', range: { upper: 2, upperOpen: true } }]);
          expect(await ids(e, 'other', undefined, 'k')).toEqual([2, 6]);
          await e.write([{ op: 'deleteRange', store: 'other', range: { lower: 7, upper: 3 } }]);
          expect(await ids(e, 'other', undefined, 'k')).toEqual([2, 6]);
          await e.write([{ op: 'deleteRange', store: 'other', range: {} }]);
          expect(await count(e, 'other')).toBe(0);
        });
        await withEngine(EVENTS, async (e) => {
          const rows = ['!a', '!ab', '!b'].flatMap((room) => [1, 2, 3].map((seq) => ({ room, seq, eventId: `${room}${seq}`, ts: seq })));
          await e.write(put('events', ...rows));
          await e.write([{ op: 'deleteRange', store: 'events', range: prefixRange('!a') }]);
          expect((await all(e, 'events')).map((v) => v.eventId)).toEqual(['!ab1', '!ab2', '!ab3', '!b1', '!b2', '!b3']);
          // Index entries of the deleted rows are gone too.
          expect(await count(e, 'events', { index: 'byTs' })).toBe(6);
          expect(await count(e, 'events', { index: 'byRoomTs', range: prefixRange('!a') })).toBe(0);
          expect(await get(e, 'events', ['!a', 1])).toBe(undefined);
        });
      });

      it('index entries follow overwrites and deletes: no stale hits', async () => {
        await withEngine(BASIC, async (e) => {
          const byTag = (tag: Key) => ids(e, 'items', { index: 'byTag', range: { lower: tag, upper: tag } });
          await e.write(put('items', { id: 1, tag: 'a', n: 1 }, { id: 2, tag: 'a', n: 2 }));
          expect(await byTag('a')).toEqual([1, 2]);
          await e.write(put('items', { id: 1, tag: 'b', n: 1 }));
          expect(await byTag('a')).toEqual([2]);
          expect(await byTag('b')).toEqual([1]);
          expect(await count(e, 'items', { index: 'byTag' })).toBe(2);
          // Same index key, new value: one entry, new value served.
          await e.write(put('items', { id: 2, tag: 'a', n: 20 }));
          expect(await all(e, 'items', { index: 'byTag', range: { lower: 'a', upper: 'a' } })).toEqual([{ id: 2, tag: 'a', n: 20 }]);
          expect(await ids(e, 'items', { index: 'byPair' })).toEqual([2, 1]);
          await e.write(put('items', { id: 2, tag: 'a', n: 0 }));
          expect(await all(e, 'items', { index: 'byPair' })).toEqual([{ id: 2, tag: 'a', n: 0 }, { id: 1, tag: 'b', n: 1 }]);
          await e.write([{ op: 'delete', store: 'items', key: 1 }]);
          expect(await byTag('b')).toEqual([]);
          expect(await ids(e, 'items', { index: 'byPair' })).toEqual([2]);
          // Overwriting with a value that lacks the indexed property drops it from the index.
          await e.write(put('items', { id: 2 }));
          expect(await count(e, 'items', { index: 'byTag' })).toBe(0);
          expect(await count(e, 'items', { index: 'byPair' })).toBe(0);
          expect(await count(e, 'items')).toBe(1);
        });
      });

      it('values lacking an index key path, or holding a non-key there, are not in that index', async () => {
        await withEngine(BASIC, async (e) => {
          await e.write(put('items',
            { id: 1, tag: 'a', n: 1 },
            { id: 2 },
            { id: 3, tag: null, n: 1 },
            { id: 4, tag: true, n: 1 },
            { id: 5, tag: { nested: 1 }, n: 1 },
            { id: 6, tag: 'b' },
            { id: 7, tag: NaN, n: 1 },
            { id: 8, n: 2 },
            { id: 9, tag: [1, 'x'], n: [0] }));
          expect(await count(e, 'items')).toBe(9);
          expect(await ids(e, 'items', { index: 'byTag' })).toEqual([1, 6, 9]);
          // A compound index needs every component.
          expect(await ids(e, 'items', { index: 'byPair' })).toEqual([1, 9]);
          expect(await ids(e, 'items', { index: 'byTag', direction: 'prev' })).toEqual([9, 6, 1]);
          // Gaining the property later adds it to the index.
          await e.write(put('items', { id: 2, tag: 'c', n: 3 }));
          expect(await ids(e, 'items', { index: 'byTag' })).toEqual([1, 6, 2, 9]);
          expect(await ids(e, 'items', { index: 'byPair' })).toEqual([1, 2, 9]);
        });
      });
    });

    describe('atomic writes', () => {
      it('a batch applies its ops in order, across stores', async () => {
        await withEngine(BASIC, async (e) => {
          await e.write([
            ...put('items', { id: 1, tag: 'a' }),
            { op: 'delete', store: 'items', key: 1 },
            { op: 'delete', store: 'items', key: 2 },
            ...put('items', { id: 2, tag: 'first' }, { id: 2, tag: 'second' }),
            ...put('other', { k: 1 }, { k: 2 }, { k: 3 }),
            { op: 'deleteRange', store: 'other', range: { lower: 2 } },
            ...put('other', { k: 3, again: true }),
          ]);
          expect(await all(e, 'items')).toEqual([{ id: 2, tag: 'second' }]);
          expect(await ids(e, 'items', { index: 'byTag' })).toEqual([2]);
          expect(await all(e, 'other')).toEqual([{ k: 1 }, { k: 3, again: true }]);
        });
      });

      it('write([]) is a no-op', async () => {
        await withEngine(BASIC, async (e) => {
          await e.write([]);
          expect(await count(e, 'items')).toBe(0);
        });
      });

      it('a unique index violation rejects the whole batch and applies nothing', async () => {
        await withEngine(UNIQUE, async (e) => {
          await e.write(put('users', { id: 1, email: 'a@x' }, { id: 3, email: 'c@x' }));
          const before = await all(e, 'users');
          const err = await rejection(e.write([
            ...put('users', { id: 2, email: 'b@x' }),
            ...put('side', { k: 'x' }),
            { op: 'delete', store: 'users', key: 3 },
            { op: 'deleteRange', store: 'side', range: {} },
            ...put('users', { id: 4, email: 'a@x' }),
          ]));
          expect(err.name).toBe('ConstraintError');
          expect(await all(e, 'users')).toEqual(before);
          expect(await count(e, 'side')).toBe(0);
          expect(await ids(e, 'users', { index: 'byEmail' })).toEqual([1, 3]);
          expect(await ids(e, 'users', { index: 'byEmail', range: { lower: 'a@x', upper: 'a@x' } })).toEqual([1]);
        });
      });

      it('a unique violation between two puts of the same batch rejects it', async () => {
        await withEngine(UNIQUE, async (e) => {
          await e.write(put('side', { k: 'kept' }));
          const err = await rejection(e.write([...put('side', { k: 'new' }), ...put('users', { id: 5, email: 'z@x' }, { id: 6, email: 'z@x' })]));
          expect(err.name).toBe('ConstraintError');
          expect(await count(e, 'users')).toBe(0);
          expect(await count(e, 'users', { index: 'byEmail' })).toBe(0);
          expect(await ids(e, 'side', undefined, 'k')).toEqual(['kept']);
          // The engine is still usable afterwards.
          await e.write(put('users', { id: 5, email: 'z@x' }));
          expect(await ids(e, 'users', { index: 'byEmail' })).toEqual([5]);
        });
      });

      it('unique indexes allow re-putting the same record, and reusing a value freed earlier in the batch', async () => {
        await withEngine(UNIQUE, async (e) => {
          await e.write(put('users', { id: 1, email: 'a@x', v: 1 }, { id: 2, email: 'b@x' }, { id: 3 }, { id: 4 }));
          await e.write(put('users', { id: 1, email: 'a@x', v: 2 }));
          expect(await get(e, 'users', 1)).toEqual({ id: 1, email: 'a@x', v: 2 });
          await e.write([{ op: 'delete', store: 'users', key: 1 }, ...put('users', { id: 7, email: 'a@x' })]);
          await e.write([...put('users', { id: 2, email: 'moved@x' }, { id: 8, email: 'b@x' })]);
          expect(await ids(e, 'users', { index: 'byEmail' })).toEqual([7, 8, 2]);
          // Values without the unique property never collide.
          expect(await count(e, 'users')).toBe(5);
        });
      });

      it('a write naming an unknown store rejects and applies nothing', async () => {
        await withEngine(BASIC, async (e) => {
          await rejection(e.write([...put('items', { id: 1, tag: 'a' }), ...put('nope', { id: 1 })]));
          await rejection(e.write([...put('other', { k: 1 }), { op: 'delete', store: 'nope', key: 1 }]));
          await rejection(e.write([...put('other', { k: 1 }), { op: 'deleteRange', store: 'nope', range: {} }]));
          expect(await count(e, 'items')).toBe(0);
          expect(await count(e, 'other')).toBe(0);
        });
      });

      it('a value without a valid primary key, or that cannot be cloned, rejects the batch and applies nothing', async () => {
        await withEngine(EVENTS, async (e) => {
          const ok = { room: '!a', seq: 1, eventId: '$1', ts: 1 };
          const e1 = await rejection(e.write(put('events', ok, { room: '!a', eventId: '$2', ts: 2 })));
          expect(e1.name).toBe('DataError');
          await rejection(e.write(put('events', ok, { room: '!a', seq: true, eventId: '$2', ts: 2 })));
          await rejection(e.write(put('events', ok, { room: '!a', seq: 2, eventId: '$2', ts: 2, f: () => 1 })));
          expect(await count(e, 'events')).toBe(0);
          expect(await count(e, 'events', { index: 'byId' })).toBe(0);
        });
      });

      it('concurrent writes and reads all complete; each read sees whole batches', async () => {
        await withEngine(BASIC, async (e) => {
          const writes = Array.from({ length: 40 }, (_, i) =>
            e.write(put('other', { k: i * 2 }, { k: i * 2 + 1 })));
          const reads = Array.from({ length: 10 }, () => count(e, 'other'));
          await Promise.all(writes);
          for (const n of await Promise.all(reads)) expect(n % 2).toBe(0);
          expect(await count(e, 'other')).toBe(80);
        });
      });
    });

    describe('schema and migrations', () => {
      const M1: Migration = {
        createStores: {
          a: { keyPath: 'id', indexes: { byX: { keyPath: 'x' } } },
          b: { keyPath: ['p', 'q'] },
        },
      };
      const M2: Migration = { createIndexes: { a: { byY: { keyPath: 'y', unique: true } } } };
      const M3: Migration = { deleteIndexes: { a: ['byX'] }, createStores: { c: { keyPath: 'k', indexes: { byV: { keyPath: 'v' } } } } };
      const M4: Migration = { deleteStores: ['b'], createIndexes: { c: { byW: { keyPath: ['v', 'w'] } } } };

      /** Checks the schema after M1..M4, on an engine holding whatever `a` rows `rows` lists. */
      async function expectFinalSchema(e: StorageEngine, rows: { id: number; x?: number; y?: string }[]): Promise<void> {
        await rejection(e.read((tx) => tx.get('b', ['p', 'q'])));
        await rejection(e.write(put('b', { p: 1, q: 2 })));
        await rejection(e.read((tx) => tx.query('a', { index: 'byX' })));
        const withY = rows.filter((r) => r.y !== undefined).sort((r, s) => compareKeys(r.y!, s.y!)).map((r) => r.id);
        expect(await ids(e, 'a', { index: 'byY' })).toEqual(withY);
        await e.write(put('c', { k: 1, v: 'v', w: 2 }, { k: 2, v: 'v', w: 1 }, { k: 3, v: 'u' }));
        expect(await ids(e, 'c', { index: 'byV' }, 'k')).toEqual([3, 1, 2]);
        expect(await ids(e, 'c', { index: 'byW' }, 'k')).toEqual([2, 1]);
        // byY is unique.
        await e.write(put('a', { id: 100, y: 'unique-y' }));
        expect((await rejection(e.write(put('a', { id: 101, y: 'unique-y' })))).name).toBe('ConstraintError');
        await e.write([{ op: 'delete', store: 'a', key: 100 }, { op: 'deleteRange', store: 'c', range: {} }]);
      }

      it('the schema after several migrations (create store, add index, delete index, delete store) is what the engine exposes', async () => {
        await withEngine([M1, M2, M3, M4], async (e) => {
          const rows = [{ id: 1, x: 1, y: 'b' }, { id: 2, x: 2 }, { id: 3, y: 'a' }];
          await e.write(put('a', ...rows));
          await expectFinalSchema(e, rows);
        });
      });

      it('a store deleted and re-created by a later migration starts empty with the new schema', async () => {
        const m: Migration[] = [
          { createStores: { s: { keyPath: 'id', indexes: { old: { keyPath: 'o' } } } } },
          { deleteStores: ['s'] },
          { createStores: { s: { keyPath: 'k', indexes: { fresh: { keyPath: 'f' } } } } },
        ];
        await withEngine(m, async (e) => {
          await e.write(put('s', { k: 1, f: 'x' }));
          await rejection(e.write(put('s', { id: 2 })));
          await rejection(e.read((tx) => tx.query('s', { index: 'old' })));
          expect(await ids(e, 's', { index: 'fresh' }, 'k')).toEqual([1]);
        });
      });

      if (options.persistent) {
        it('re-opening a database by name keeps its data', async () => {
          const db = `conformance-reopen-${++dbCounter}`;
          await withEngine([M1], (e) => e.write([...put('a', { id: 1, x: 10 }, { id: 2, x: 5 }), ...put('b', { p: 'p', q: 1 })]), db);
          await withEngine([M1], async (e) => {
            expect(await all(e, 'a')).toEqual([{ id: 1, x: 10 }, { id: 2, x: 5 }]);
            expect(await ids(e, 'a', { index: 'byX' })).toEqual([2, 1]);
            expect(await get(e, 'b', ['p', 1])).toEqual({ p: 'p', q: 1 });
            await e.write(put('a', { id: 3, x: 7, y: 'later' }));
          }, db);
          await withEngine([M1], async (e) => {
            expect(await ids(e, 'a', { index: 'byX' })).toEqual([2, 3, 1]);
          }, db);
        });

        it('re-opening with more migrations upgrades the schema in place and keeps the data', async () => {
          const db = `conformance-upgrade-${++dbCounter}`;
          const rows = [{ id: 1, x: 1, y: 'b' }, { id: 2, x: 2 }, { id: 3, y: 'a' }];
          await withEngine([M1], (e) => e.write([...put('a', ...rows), ...put('b', { p: 1, q: 1 })]), db);
          // M2 adds a unique index over existing rows: it is built from them.
          await withEngine([M1, M2], async (e) => {
            expect(await ids(e, 'a', { index: 'byY' })).toEqual([3, 1]);
            expect(await ids(e, 'a', { index: 'byX' })).toEqual([1, 2]);
            expect(await count(e, 'b')).toBe(1);
          }, db);
          // M3 and M4 in one upgrade.
          await withEngine([M1, M2, M3, M4], async (e) => {
            expect(await all(e, 'a')).toEqual(rows);
            await expectFinalSchema(e, rows);
          }, db);
          // And once more at the same version: nothing changes.
          await withEngine([M1, M2, M3, M4], async (e) => {
            expect(await all(e, 'a')).toEqual(rows);
            expect(await count(e, 'c')).toBe(0);
          }, db);
        });
      }
    });
  });
}
