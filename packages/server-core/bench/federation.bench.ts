/**
 * Federation benchmark (issue: federation, proof section). Prints figures; asserts nothing.
 *  - ingest: signed PDUs verified (format, signature, hash, auth events, state before, soft-fail) and
 *    persisted per second, through `hs.ingest.receivePdus` (transactions of 50) and through `PUT /send`
 *    (JSON body, X-Matrix verified by the router); one room with a linear chain of messages from one
 *    remote server (BENCH_ROUNDS rounds of BENCH_N PDUs, each printed, and the best); ten rooms at once;
 *    and 10,000 member joins (state events into a growing state);
 *  - join: the time for a new node to join (make_join + send_join, both sides, in process) a room with
 *    10,000 members, BENCH_ROUNDS times.
 * Goals: ingest ≥ 5,000 PDUs/s; joining a 10,000-member room ≤ 2 s. Each figure also gives the process's
 * CPU time (main thread and the threads WebCrypto runs on), which other load on the machine does not inflate.
 *
 * `npm run bench federation` runs only the federation benchmarks; BENCH_ONLY=ingest|direct|http|rooms|join, BENCH_N,
 * BENCH_MEMBERS and BENCH_ROUNDS change what runs.
 */
import {
  authEventTypes, computeEventId, createNetworkedMemoryHomeserver, hashAndSignEvent, InProcessNetwork, roomVersion, stateKey,
  type Homeserver, type JsonObject, type PDU,
} from '../src/index.ts';
import { xMatrixHeader } from '../src/federation/x-matrix.ts';

const N = Number(process.env.BENCH_N ?? 10_000);
const MEMBERS = Number(process.env.BENCH_MEMBERS ?? 10_000);
const quiet = { log: (e: unknown) => console.error('internal error:', e) };
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function register(hs: Homeserver, username: string): Promise<string> {
  const r = await hs.handle(new Request('http://localhost/_matrix/client/v3/register', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'pw', auth: { type: 'm.login.dummy' } }),
  }));
  return ((await r.json()) as { access_token: string }).access_token;
}
async function call(hs: Homeserver, token: string, method: string, path: string, body?: unknown): Promise<any> {
  const r = await hs.handle(new Request(`http://localhost${path}`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  }));
  const j = await r.json();
  if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

/** A (the receiver) with a public room; E (the remote sender, used for its key only) with a member in it. */
async function setup(rooms = 1) {
  const net = new InProcessNetwork();
  const a = await createNetworkedMemoryHomeserver(net, quiet);
  const e = await createNetworkedMemoryHomeserver(net, quiet);
  const at = await register(a, 'alice');
  const et = await register(e, 'eve');
  const roomIds: string[] = [];
  for (let i = 0; i < rooms; i++) {
    const roomId = (await call(a, at, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' })).room_id as string;
    await call(e, et, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?via=${a.serverName}`, {});
    roomIds.push(roomId);
  }
  // E's events are crafted by the benchmark from now on; E itself leaves the network (else A's traffic
  // to it would make it catch up on the room, on the same CPU, while the figures are taken).
  e.federation.stop();
  net.setOnline(e.serverName, false);
  return { net, a, e, roomIds, eve: `@eve:${e.serverName}` };
}

/** `n` messages from `sender`, each on the previous one, starting on A's current extremities. */
async function chain(a: Homeserver, signer: Homeserver, roomId: string, sender: string, n: number, make: (i: number) => Partial<PDU> & { type: string; content: JsonObject; sender?: string }): Promise<PDU[]> {
  const room = (await a.store.rooms.room(roomId))!;
  const rules = roomVersion(room.version)!;
  const state = await a.store.rooms.currentState(roomId);
  let prev = [...room.extremities];
  let depth = room.maxDepth;
  const out: PDU[] = [];
  for (let i = 0; i < n; i++) {
    const draft: PDU = { room_id: roomId, sender, origin_server_ts: Date.now(), depth: ++depth, prev_events: prev, auth_events: [], ...make(i) };
    draft.auth_events = authEventTypes(draft, rules).map(([t, k]) => state.get(stateKey(t, k))).filter((x): x is string => !!x);
    const signed = await hashAndSignEvent(draft, rules, signer.serverName, signer.signingKey);
    const id = computeEventId(signed, rules);
    if (draft.state_key !== undefined) state.set(stateKey(draft.type, draft.state_key), id);
    out.push(signed);
    prev = [id];
  }
  return out;
}

const message = (i: number) => ({ type: 'm.room.message', content: { msgtype: 'm.text', body: `message ${i}: an ordinary chat message of ordinary length` } });

async function timed<T>(fn: () => Promise<T>): Promise<[T, number, number]> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await fn();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return [r, ms, (c.user + c.system) / 1000];
}

function checkAll(results: Record<string, { error?: string }>[], n: number): void {
  let ok = 0;
  const errors = new Set<string>();
  for (const r of results) for (const v of Object.values(r)) v.error ? errors.add(v.error) : ok++;
  if (ok !== n) throw new Error(`only ${ok} of ${n} accepted: ${[...errors].slice(0, 3).join('; ')}`);
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const line = (label: string, figure: string, detail: string) => console.log(`${label.padEnd(66)} ${figure.padStart(14)}  ${detail}`);

/** Rounds of N PDUs each; prints every round (wall and process CPU time) and the best. */
async function ingestRounds(label: string, run: (round: number) => Promise<{ n: number; ms: number; cpu: number }>): Promise<void> {
  let best = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const { n, ms, cpu } = await run(i);
    const rate = (n / ms) * 1000;
    best = Math.max(best, rate);
    line(`${label}, round ${i + 1}`, `${fmt(rate)} PDUs/s`, `(${fmt(n)} in ${fmt(ms)} ms wall, ${fmt(cpu)} ms CPU: ${fmt((n / cpu) * 1000)} PDUs per CPU-second)`);
  }
  line(`${label}: best of ${ROUNDS}`, `${fmt(best)} PDUs/s`, '');
}

async function ingestDirect(): Promise<void> {
  const { a, e, roomIds, eve } = await setup();
  const pdus = await chain(a, e, roomIds[0], eve, N * ROUNDS, message);
  await ingestRounds('federated ingest, hs.ingest.receivePdus, 1 room, txns of 50', async (round) => {
    const mine = pdus.slice(round * N, (round + 1) * N);
    const results: Record<string, { error?: string }>[] = [];
    const [, ms, cpu] = await timed(async () => {
      for (let i = 0; i < mine.length; i += 50) results.push(await a.ingest.receivePdus(e.serverName, mine.slice(i, i + 50)));
    });
    checkAll(results, N);
    return { n: N, ms, cpu };
  });
  await a.stop();
  await e.stop();
}

async function ingestHttp(): Promise<void> {
  const { a, e, roomIds, eve } = await setup();
  const pdus = await chain(a, e, roomIds[0], eve, N * ROUNDS, message);
  // Transactions signed ahead (as the sender's queue would), so the figure is the receiver's.
  const reqs: { uri: string; body: string; auth: string }[] = [];
  for (let i = 0; i < pdus.length; i += 50) {
    const uri = `/_matrix/federation/v1/send/bench${i}`;
    const txn = { origin: e.serverName, origin_server_ts: Date.now(), pdus: pdus.slice(i, i + 50) as unknown as JsonObject[], edus: [] };
    reqs.push({ uri, body: JSON.stringify(txn), auth: await xMatrixHeader(e.signingKey, e.serverName, a.serverName, 'PUT', uri, txn) });
  }
  const per = N / 50;
  await ingestRounds('federated ingest, PUT /send (X-Matrix, JSON), 1 room, txns of 50', async (round) => {
    const results: Record<string, { error?: string }>[] = [];
    const [, ms, cpu] = await timed(async () => {
      for (const r of reqs.slice(round * per, (round + 1) * per)) {
        const res = await a.handle(new Request(`http://${a.serverName}${r.uri}`, { method: 'PUT', headers: { authorization: r.auth, 'content-type': 'application/json' }, body: r.body }), { peer: e.serverName });
        results.push(((await res.json()) as { pdus: Record<string, { error?: string }> }).pdus);
      }
    });
    checkAll(results, N);
    return { n: N, ms, cpu };
  });
  await a.stop();
  await e.stop();
}

async function ingestRooms(rooms: number): Promise<void> {
  const { a, e, roomIds, eve } = await setup(rooms);
  const per = Math.ceil(N / rooms);
  const chains = await Promise.all(roomIds.map((r) => chain(a, e, r, eve, per, message)));
  // Each transaction carries events of every room (as a busy sender's would).
  const txns: PDU[][] = [];
  const step = Math.max(1, Math.floor(50 / rooms));
  for (let i = 0; i < per; i += step) txns.push(chains.flatMap((c) => c.slice(i, i + step)));
  const results: Record<string, { error?: string }>[] = [];
  const [, ms, cpu] = await timed(async () => {
    for (const t of txns) results.push(await a.ingest.receivePdus(e.serverName, t));
  });
  checkAll(results, per * rooms);
  const n = per * rooms;
  line(`federated ingest, hs.ingest.receivePdus, ${rooms} rooms, txns of 50`, `${fmt((n / ms) * 1000)} PDUs/s`, `(${fmt(n)} in ${fmt(ms)} ms wall, ${fmt(cpu)} ms CPU)`);
  await a.stop();
  await e.stop();
}

async function join(): Promise<void> {
  const { net, a, e, roomIds, eve } = await setup();
  const roomId = roomIds[0];
  // MEMBERS remote users join the room (through A's ingest: the state A will serve).
  const joins = await chain(a, e, roomId, eve, MEMBERS, (i) => ({ type: 'm.room.member', state_key: `@m${i}:${e.serverName}`, sender: `@m${i}:${e.serverName}`, content: { membership: 'join', displayname: `Member ${i}` } }));
  const [, setupMs, setupCpu] = await timed(async () => {
    for (let i = 0; i < joins.length; i += 50) checkAll([await a.ingest.receivePdus(e.serverName, joins.slice(i, i + 50))], Math.min(50, joins.length - i));
  });
  const stateSize = (await a.store.rooms.currentState(roomId)).size;
  line(`federated ingest of ${fmt(MEMBERS)} member joins (state events, growing state)`, `${fmt((MEMBERS / setupMs) * 1000)} PDUs/s`, `(${fmt(setupMs)} ms wall, ${fmt(setupCpu)} ms CPU; the room now has ${fmt(stateSize)} state events)`);

  let best = Infinity;
  for (let i = 0; i < ROUNDS; i++) {
    // A new node each time; the previous one leaves the network (so A's traffic to it costs nothing).
    const b = await createNetworkedMemoryHomeserver(net, quiet);
    const bt = await register(b, `bob${i}`);
    const [, ms, cpu] = await timed(() => call(b, bt, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?via=${a.serverName}`, {}));
    const got = (await b.store.rooms.currentState(roomId)).size;
    if (got !== stateSize + 1 + i) throw new Error(`B has ${got} state events, expected ${stateSize + 1 + i}`);
    // Once joined, B takes part: a message from bob reaches A.
    const sent = await call(b, bt, 'PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/1`, { msgtype: 'm.text', body: 'hi' });
    for (let k = 0; k < 500 && !(await a.store.rooms.event(sent.event_id))?.stream; k++) await new Promise((r) => setTimeout(r, 10));
    if (!(await a.store.rooms.event(sent.event_id))?.stream) throw new Error('bob\'s message did not reach A');
    best = Math.min(best, ms);
    line(`join a room with ${fmt(got - 1)} state events (make_join + send_join, both sides), round ${i + 1}`, `${fmt(ms)} ms`, `(${fmt(cpu)} ms CPU, both nodes)`);
    net.setOnline(b.serverName, false);
    await b.stop();
  }
  line(`join a room with ~${fmt(stateSize)} state events: best of ${ROUNDS}`, `${fmt(best)} ms`, '');
  await a.stop();
  await e.stop();
  void eve;
}

const { loadavg, cpus } = await import('node:os');
console.log(`# federation benchmark (Node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}), ${fmt(N)} PDUs a round, ${fmt(MEMBERS)} members`);
console.log('# wall-clock figures suffer from other load on the machine; the CPU time is the process\'s (main thread and crypto threads)');
const only = process.env.BENCH_ONLY;
const runs = (what: string) => !only || only === what || (only === 'ingest' && ['direct', 'http', 'rooms'].includes(what));
if (runs('direct')) await ingestDirect();
if (runs('http')) await ingestHttp();
if (runs('rooms')) await ingestRooms(10);
if (runs('join')) await join();
console.log(`# load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
