/**
 * StorageEngine micro benchmark: puts per second of ~1 KB event-like records (batches of 1 and of 100)
 * and the time of an index range query for the last 50 of 20,000 records, for MemoryEngine and for the
 * IndexedDB engine under fake-indexeddb (a pure-JS IndexedDB: its figures say nothing about a browser's,
 * only about this engine's overhead over it). Prints figures; asserts nothing.
 *
 *   npx tsx packages/store-idb/bench/engine.bench.ts
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { prefixRange, type Migration, type StorageEngine } from '../../server-core/src/store/engine.ts';
import { MemoryEngine } from '../../server-core/src/store/memory-engine.ts';
import { openIdbEngine } from '../src/index.ts';

const MIGRATIONS: Migration[] = [
  {
    createStores: {
      events: {
        keyPath: ['room', 'seq'],
        indexes: { byId: { keyPath: 'eventId', unique: true }, byRoomTs: { keyPath: ['room', 'ts'] } },
      },
    },
  },
];

const ROOMS = ['!aaaaaaaaaaaaaaaaaa:example.org', '!bbbbbbbbbbbbbbbbbb:example.org', '!cccccccccccccccccc:example.org', '!dddddddddddddddddd:example.org'];
/** An event-like record of about 1 KB (as JSON). */
function record(i: number): object {
  const room = ROOMS[i % ROOMS.length];
  return {
    room,
    seq: i,
    ts: 1_700_000_000_000 + i,
    eventId: `$${i.toString(36).padStart(8, '0')}abcdefghijklmnopqrstuvwxyz0123456789ABCDE`,
    pdu: {
      type: 'm.room.message',
      sender: `@user${i % 97}:example.org`,
      room_id: room,
      origin_server_ts: 1_700_000_000_000 + i,
      depth: i,
      prev_events: [`$prev${i}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`],
      auth_events: ['$create00000000000000000000000000000000000000', '$power0000000000000000000000000000000000000000', '$member000000000000000000000000000000000000000'],
      content: { msgtype: 'm.text', body: `message ${i} `.padEnd(420, 'lorem ipsum ') },
      hashes: { sha256: 'x7Y8aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789abc' },
      signatures: { 'example.org': { 'ed25519:a_AbCd': 'S'.repeat(86) } },
    },
  };
}
const size = JSON.stringify(record(12345)).length;

type Factory = () => Promise<StorageEngine>;
const engines: [string, Factory][] = [
  ['MemoryEngine', async () => new MemoryEngine(MIGRATIONS)],
  ['IDB engine (fake-indexeddb)', () => openIdbEngine({ name: 'bench', migrations: MIGRATIONS, indexedDB: new IDBFactory() })],
];

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const line = (label: string, value: string) => console.log(`${label.padEnd(58)} ${value.padStart(14)}`);

/** Puts `total` records in sequential writes of `batch`; returns puts per second. */
async function putRate(make: Factory, total: number, batch: number): Promise<number> {
  const e = await make();
  try {
    // Warm up on a different key range, so the timed puts are inserts.
    for (let i = 0; i < 200; i += batch) await e.write(Array.from({ length: batch }, (_, j) => ({ op: 'put' as const, store: 'events', value: record(10_000_000 + i + j) })));
    const values = Array.from({ length: total }, (_, i) => record(i));
    const t0 = performance.now();
    for (let i = 0; i < total; i += batch) {
      await e.write(values.slice(i, i + batch).map((value) => ({ op: 'put' as const, store: 'events', value })));
    }
    return (total / (performance.now() - t0)) * 1000;
  } finally {
    await e.close();
  }
}

/** Fills 20,000 records in one room, then times reading the newest 50 through the [room, ts] index. */
async function queryTimes(make: Factory): Promise<{ prev: number; next: number; fill: number }> {
  const e = await make();
  try {
    const N = 20_000;
    const room = ROOMS[0];
    const t0 = performance.now();
    for (let i = 0; i < N; i += 500) {
      await e.write(Array.from({ length: 500 }, (_, j) => ({ op: 'put' as const, store: 'events', value: { ...record(i + j), room } })));
    }
    const fill = performance.now() - t0;
    const reps = 200;
    const time = async (fn: () => Promise<unknown[]>) => {
      for (let i = 0; i < 10; i++) await fn();
      const t = performance.now();
      for (let i = 0; i < reps; i++) {
        const got = await fn();
        if (got.length !== 50) throw new Error(`expected 50 rows, got ${got.length}`);
      }
      return (performance.now() - t) / reps;
    };
    // Newest first, as a timeline back-paginates: a 'prev' cursor (IDB) over the room's prefix.
    const prev = await time(() => e.read((tx) => tx.query('events', { index: 'byRoomTs', range: prefixRange(room), direction: 'prev', limit: 50 })));
    // The same 50 in ascending order, from a known lower bound: one getAll (IDB).
    const from = 1_700_000_000_000 + N - 50;
    const next = await time(() => e.read((tx) => tx.query('events', { index: 'byRoomTs', range: { lower: [room, from], upper: [room, []] }, limit: 50 })));
    return { prev, next, fill };
  } finally {
    await e.close();
  }
}

console.log(`StorageEngine bench — records of ~${fmt(size)} bytes (JSON), Node ${process.version}\n`);
for (const [name, make] of engines) {
  console.log(name);
  line('  put, batches of 1 (2,000 records)', `${fmt(await putRate(make, 2_000, 1))} /s`);
  line('  put, batches of 100 (20,000 records)', `${fmt(await putRate(make, 20_000, 100))} /s`);
  const q = await queryTimes(make);
  line('  fill 20,000 records in one room (batches of 500)', `${fmt(q.fill)} ms`);
  line('  last 50 of 20,000 by [room, ts] index, prev + limit', `${fmt(q.prev, 3)} ms`);
  line('  last 50 of 20,000 by [room, ts] index, bounded next', `${fmt(q.next, 3)} ms`);
  console.log();
}
