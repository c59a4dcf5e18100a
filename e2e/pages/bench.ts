/**
 * Bench page (packages/sw-host/bench/sw.bench.ts): the same homeserver run directly in the page, over
 * MemoryEngine and over the real IndexedDB engine, without the worker in between. Splitting the local
 * echo this way shows what the worker adds and what the store costs.
 */
import { CachingEngine, createHomeserver, InProcessNetwork, MemoryEngine, MIGRATIONS, type Homeserver, type StorageEngine } from '../../packages/server-core/src/index.ts';
import { openIdbEngine } from '../../packages/store-idb/src/index.ts';
import { mx, registerUser } from './worker-client.ts';

async function call(hs: Homeserver, method: string, path: string, token?: string, body?: unknown): Promise<any> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await hs.handle(new Request(`${location.origin}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }));
  return r.json();
}

export interface CoreEcho {
  echoes: number[];
  sends: number[];
  /** An incremental /sync (timeout 0) over one new event, not waiting. */
  syncs: number[];
  idbGet: number[];
  /** Engine transactions per PUT send and per incremental sync (averages). */
  transactions: { send: { read: number; write: number }; sync: { read: number; write: number } };
  /** How long each write transaction of the echo loop took (the commit a send waits for). */
  writes: number[];
}

type EchoKind = 'memory' | 'idb' | 'idb-relaxed' | 'idb-cached';

async function echo(kind: EchoKind, n: number): Promise<CoreEcho> {
  const name = `bench-${kind}-${Date.now()}`;
  const inner =
    kind === 'memory'
      ? new MemoryEngine(MIGRATIONS)
      : await openIdbEngine({ name, migrations: MIGRATIONS, durability: kind === 'idb-relaxed' ? 'relaxed' : undefined });
  // Count the engine's transactions (each IndexedDB transaction is a round trip to the browser's storage), and
  // time the writes.
  const counts = { read: 0, write: 0 };
  const writes: number[] = [];
  let timing = false;
  const engine = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (prop === 'read' || prop === 'write') {
        return (...args: unknown[]) => {
          counts[prop]++;
          const t = performance.now();
          const r = (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (prop === 'write' && timing) void r.then(() => writes.push(performance.now() - t), () => {});
          return r;
        };
      }
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }) as StorageEngine;
  // 'idb-cached': the worker's own configuration (services/caching-engine.ts over IndexedDB; the counts are
  // then real IndexedDB transactions, the ones the mirrors and caches did not absorb).
  const hs = await createHomeserver({ engine: kind === 'idb-cached' ? new CachingEngine(engine, { migrations: MIGRATIONS }) : engine, log: () => {} });
  const first = await call(hs, 'POST', '/_matrix/client/v3/register', undefined, { username: 'u', password: 'p' });
  const reg = await call(hs, 'POST', '/_matrix/client/v3/register', undefined, { username: 'u', password: 'p', auth: { type: 'm.login.dummy', session: first.session } });
  const token = reg.access_token as string;
  const { room_id: roomId } = await call(hs, 'POST', '/_matrix/client/v3/createRoom', token, {});
  let since = (await call(hs, 'GET', '/_matrix/client/v3/sync?timeout=0', token)).next_batch as string;
  const echoes: number[] = [];
  const sends: number[] = [];
  timing = true;
  for (let i = 0; i < n; i++) {
    const pending = call(hs, 'GET', `/_matrix/client/v3/sync?since=${since}&timeout=30000`, token);
    await new Promise((r) => setTimeout(r, 5));
    const t0 = performance.now();
    let at = 0;
    const got = pending.then((b) => ((at = performance.now()), b));
    await call(hs, 'PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t${i}`, token, { msgtype: 'm.text', body: `echo ${i}` });
    sends.push(performance.now() - t0);
    since = (await got).next_batch;
    echoes.push(at - t0);
  }
  timing = false;
  const syncs: number[] = [];
  const perSend = { read: 0, write: 0 };
  const perSync = { read: 0, write: 0 };
  for (let i = 0; i < n; i++) {
    const c0 = { ...counts };
    await call(hs, 'PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/s${i}`, token, { msgtype: 'm.text', body: `sync ${i}` });
    const c1 = { ...counts };
    const t0 = performance.now();
    since = (await call(hs, 'GET', `/_matrix/client/v3/sync?since=${since}&timeout=0`, token)).next_batch;
    syncs.push(performance.now() - t0);
    perSend.read += c1.read - c0.read;
    perSend.write += c1.write - c0.write;
    perSync.read += counts.read - c1.read;
    perSync.write += counts.write - c1.write;
  }
  const transactions = {
    send: { read: perSend.read / n, write: perSend.write / n },
    sync: { read: perSync.read / n, write: perSync.write / n },
  };
  // The cost of one IndexedDB read transaction with one get (the unit a store read pays).
  const idbGet: number[] = [];
  if (kind !== 'memory') {
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await engine.read((tx) => tx.get('meta', 'stream'));
      idbGet.push(performance.now() - t);
    }
  }
  await hs.stop();
  if (kind !== 'memory') indexedDB.deleteDatabase(name);
  return { echoes, sends, syncs, idbGet, transactions, writes };
}

/** Re-opening an existing node, in steps: IndexedDB open, then createHomeserver (Store.open, signing key, router). */
async function openSteps(n: number): Promise<{ idbOpen: number[]; createHomeserver: number[] }> {
  const name = `bench-open-${Date.now()}`;
  const first = await createHomeserver({ engine: await openIdbEngine({ name, migrations: MIGRATIONS }) });
  await first.stop();
  const idbOpen: number[] = [];
  const create: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const engine = await openIdbEngine({ name, migrations: MIGRATIONS });
    const t1 = performance.now();
    const hs = await createHomeserver({ engine });
    create.push(performance.now() - t1);
    idbOpen.push(t1 - t0);
    await hs.stop();
  }
  indexedDB.deleteDatabase(name);
  return { idbOpen, createHomeserver: create };
}

/**
 * Federation without the worker and without the network: two homeservers in this page, each over the worker's
 * engine (cached IndexedDB), on an in-process network. Send in A → in B's pending /sync: what the two cores cost
 * (signing, checks, commits, sync), against which the browser-to-browser figure can be read.
 */
async function fedEcho(n: number): Promise<{ echoes: number[] }> {
  const net = new InProcessNetwork();
  const make = async (tag: string) => {
    let name = '';
    const engine = new CachingEngine(await openIdbEngine({ name: `bench-fed-${tag}-${Date.now()}`, migrations: MIGRATIONS }), { migrations: MIGRATIONS });
    const hs = await createHomeserver({ engine, log: () => {}, transport: net.transportFor(() => name) });
    name = hs.serverName;
    net.attach(hs);
    return hs;
  };
  const a = await make('a');
  const b = await make('b');
  const reg = async (hs: Homeserver, u: string) => {
    const first = await call(hs, 'POST', '/_matrix/client/v3/register', undefined, { username: u, password: 'p' });
    return (await call(hs, 'POST', '/_matrix/client/v3/register', undefined, { username: u, password: 'p', auth: { type: 'm.login.dummy', session: first.session } })).access_token as string;
  };
  const ta = await reg(a, 'alice');
  const tb = await reg(b, 'bob');
  const { room_id: roomId } = await call(a, 'POST', '/_matrix/client/v3/createRoom', ta, { preset: 'public_chat' });
  await call(b, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?server_name=${a.serverName}`, tb, {});
  let since = (await call(b, 'GET', '/_matrix/client/v3/sync?timeout=0', tb)).next_batch as string;
  const echoes: number[] = [];
  for (let i = 0; i < n; i++) {
    const body = `fed ${i}`;
    const waiting = (async () => {
      for (;;) {
        const r = await call(b, 'GET', `/_matrix/client/v3/sync?since=${since}&timeout=10000`, tb);
        since = r.next_batch;
        if ((r.rooms?.join?.[roomId]?.timeline?.events ?? []).some((e: any) => e.content?.body === body)) return performance.now();
      }
    })();
    await new Promise((r) => setTimeout(r, 5));
    const t0 = performance.now();
    await call(a, 'PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/f${i}`, ta, { msgtype: 'm.text', body });
    echoes.push((await waiting) - t0);
  }
  await a.stop();
  await b.stop();
  return { echoes };
}

/** Idle time before each send (the long-poll is waiting in the worker, the threads on the way fall asleep). */
const ECHO_IDLE_MS = 15;

/**
 * Local echo through the homeserver worker, as a client sees it: with `fetch` from this page (which the worker
 * controls), a long-poll `/sync` is waiting when the page PUTs a message; the time is until that `/sync` has
 * returned and its body is parsed. A fresh account and room each run.
 */
async function workerEcho(n: number): Promise<{ echoes: number[]; sends: number[] }> {
  const json = async (method: string, path: string, token?: string, body?: unknown) => (await mx(method, path, token, body)).json;
  const token = await registerUser(`echo${Date.now()}`);
  const { room_id: roomId } = await json('POST', '/_matrix/client/v3/createRoom', token, { name: 'echo bench' });
  const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/`;
  let since = (await json('GET', '/_matrix/client/v3/sync?timeout=0', token)).next_batch as string;
  const echoes: number[] = [];
  const sends: number[] = [];
  for (let i = -10; i < n; i++) {
    const txn = `echo-${Date.now()}-${i}`;
    const pending = json('GET', `/_matrix/client/v3/sync?since=${encodeURIComponent(since)}&timeout=30000`, token);
    await new Promise((r) => setTimeout(r, ECHO_IDLE_MS));
    const t0 = performance.now();
    let echoedAt = 0;
    const got = pending.then((b) => ((echoedAt = performance.now()), b));
    await json('PUT', path + txn, token, { msgtype: 'm.text', body: `echo ${i}` });
    const sent = performance.now() - t0;
    const body = await got;
    const events: Array<{ unsigned?: { transaction_id?: string } }> = body.rooms?.join?.[roomId]?.timeline?.events ?? [];
    if (!events.some((e) => e.unsigned?.transaction_id === txn)) throw new Error('the long-poll returned without the echo');
    since = body.next_batch;
    if (i < 0) continue; // warm-up
    sends.push(sent);
    echoes.push(echoedAt - t0);
  }
  return { echoes, sends };
}

/**
 * The floor under the echo: round trips of a request the worker answers with a constant (`/versions`, no store),
 * each after `idleMs` of nothing (the threads on the way fall asleep, as they do between a person's sends)
 * or back to back (`idleMs` 0: they are awake). The difference is what waking them costs on this machine.
 */
async function noopRoundTrips(n: number, idleMs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = -5; i < n; i++) {
    if (idleMs > 0) await new Promise((r) => setTimeout(r, idleMs));
    const t0 = performance.now();
    await (await fetch('/_matrix/client/versions')).json();
    if (i >= 0) out.push(performance.now() - t0);
  }
  return out;
}

/** Until the homeserver worker controls this page (registering it when this browser profile has none yet). */
async function controlled(): Promise<void> {
  if (navigator.serviceWorker.controller) return;
  const changed = new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
  await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  await changed;
}

declare global {
  interface Window {
    benchWorkerEcho: typeof workerEcho;
    benchOpenSteps: typeof openSteps;
    benchCoreEcho: (kind: EchoKind, n: number) => Promise<CoreEcho>;
    benchFedEcho: typeof fedEcho;
  }
}
window.benchCoreEcho = echo;
window.benchOpenSteps = openSteps;
window.benchFedEcho = fedEcho;
window.benchWorkerEcho = workerEcho;

// Run on its own (no automation attached; sw.bench.ts starts Chromium on `?run=worker-echo&n=…` and reads the
// browser's log): prints one line `MATRIX_P2P_BENCH <json>` to the console.
const params = new URLSearchParams(location.search);
if (params.get('run') === 'worker-echo') {
  void (async () => {
    try {
      await controlled();
      const n = Number(params.get('n') ?? 200);
      const result = await workerEcho(n);
      const noopIdle = await noopRoundTrips(n, ECHO_IDLE_MS);
      const noopBusy = await noopRoundTrips(n, 0);
      console.log(`MATRIX_P2P_BENCH ${JSON.stringify({ ...result, noopIdle, noopBusy })}`);
    } catch (e) {
      console.log(`MATRIX_P2P_BENCH ${JSON.stringify({ error: String(e) })}`);
    }
  })();
}
document.getElementById('out')!.textContent = 'ready';
