/**
 * Federation benchmark (issue: federation, proof section). Prints figures; asserts nothing.
 *  - ingest: signed PDUs verified (format, signature, hash, auth, state) and persisted per second,
 *    through `hs.ingest.receivePdus` (transactions of 50) and through `PUT /send` (X-Matrix verified);
 *    one room, a linear chain of messages from one remote server; and ten rooms at once;
 *  - join: the time for a node to join (make_join + send_join, both sides) a room with 10,000 members.
 * Goals: ingest ≥ 5,000 PDUs/s; join of a 10,000-member room ≤ 2 s.
 *
 * `npm run bench federation` runs only this file; `BENCH_N=20000` changes the number of PDUs.
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

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, performance.now() - t0];
}

function checkAll(results: Record<string, { error?: string }>[], n: number): void {
  let ok = 0;
  const errors = new Set<string>();
  for (const r of results) for (const v of Object.values(r)) v.error ? errors.add(v.error) : ok++;
  if (ok !== n) throw new Error(`only ${ok} of ${n} accepted: ${[...errors].slice(0, 3).join('; ')}`);
}

async function ingestDirect(): Promise<void> {
  const { a, e, roomIds, eve } = await setup();
  const pdus = await chain(a, e, roomIds[0], eve, N, message);
  const results: Record<string, { error?: string }>[] = [];
  const [, ms] = await timed(async () => {
    for (let i = 0; i < pdus.length; i += 50) results.push(await a.ingest.receivePdus(e.serverName, pdus.slice(i, i + 50)));
  });
  checkAll(results, N);
  console.log(`${'federated ingest, hs.ingest.receivePdus, 1 room, txns of 50'.padEnd(64)} ${fmt((N / ms) * 1000).padStart(8)} PDUs/s  (${N} in ${fmt(ms)} ms)`);
  await a.stop();
  await e.stop();
}

async function ingestHttp(): Promise<void> {
  const { a, e, roomIds, eve } = await setup();
  const pdus = await chain(a, e, roomIds[0], eve, N, message);
  // Transactions signed ahead (as the sender's queue would), so the figure is the receiver's.
  const reqs: { uri: string; body: string; auth: string }[] = [];
  for (let i = 0; i < pdus.length; i += 50) {
    const uri = `/_matrix/federation/v1/send/bench${i}`;
    const txn = { origin: e.serverName, origin_server_ts: Date.now(), pdus: pdus.slice(i, i + 50) as unknown as JsonObject[], edus: [] };
    reqs.push({ uri, body: JSON.stringify(txn), auth: await xMatrixHeader(e.signingKey, e.serverName, a.serverName, 'PUT', uri, txn) });
  }
  const results: Record<string, { error?: string }>[] = [];
  const [, ms] = await timed(async () => {
    for (const r of reqs) {
      const res = await a.handle(new Request(`http://${a.serverName}${r.uri}`, { method: 'PUT', headers: { authorization: r.auth, 'content-type': 'application/json' }, body: r.body }), { peer: e.serverName });
      results.push(((await res.json()) as { pdus: Record<string, { error?: string }> }).pdus);
    }
  });
  checkAll(results, N);
  console.log(`${'federated ingest, PUT /send (X-Matrix), 1 room, txns of 50'.padEnd(64)} ${fmt((N / ms) * 1000).padStart(8)} PDUs/s  (${N} in ${fmt(ms)} ms)`);
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
  const [, ms] = await timed(async () => {
    for (const t of txns) results.push(await a.ingest.receivePdus(e.serverName, t));
  });
  checkAll(results, per * rooms);
  console.log(`${`federated ingest, hs.ingest.receivePdus, ${rooms} rooms, txns of 50`.padEnd(64)} ${fmt(((per * rooms) / ms) * 1000).padStart(8)} PDUs/s  (${per * rooms} in ${fmt(ms)} ms)`);
  await a.stop();
  await e.stop();
}

async function join(): Promise<void> {
  const { net, a, e, roomIds, eve } = await setup();
  const roomId = roomIds[0];
  // MEMBERS remote users join the room (through A's ingest: the state A will serve).
  const joins = await chain(a, e, roomId, eve, MEMBERS, (i) => ({ type: 'm.room.member', state_key: `@m${i}:${e.serverName}`, sender: `@m${i}:${e.serverName}`, content: { membership: 'join', displayname: `Member ${i}` } }));
  const [, setupMs] = await timed(async () => {
    for (let i = 0; i < joins.length; i += 50) checkAll([await a.ingest.receivePdus(e.serverName, joins.slice(i, i + 50))], Math.min(50, joins.length - i));
  });
  const stateSize = (await a.store.rooms.currentState(roomId)).size;
  console.log(`  (setup: ${fmt(MEMBERS)} member joins ingested in ${fmt(setupMs)} ms; the room has ${fmt(stateSize)} state events)`);

  const b = await createNetworkedMemoryHomeserver(net, quiet);
  const bt = await register(b, 'bob');
  const [, ms] = await timed(() => call(b, bt, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?via=${a.serverName}`, {}));
  const got = (await b.store.rooms.currentState(roomId)).size;
  if (got !== stateSize + 1) throw new Error(`B has ${got} state events, expected ${stateSize + 1}`);
  console.log(`${`join a room with ${fmt(stateSize)} state events (make_join + send_join, both sides)`.padEnd(64)} ${fmt(ms).padStart(8)} ms`);
  // Once joined, B takes part: a message from bob reaches A.
  const sent = await call(b, bt, 'PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/1`, { msgtype: 'm.text', body: 'hi' });
  for (let i = 0; i < 500 && !(await a.store.rooms.event(sent.event_id))?.stream; i++) await new Promise((r) => setTimeout(r, 10));
  if (!(await a.store.rooms.event(sent.event_id))?.stream) throw new Error('bob\'s message did not reach A');
  await a.stop();
  await b.stop();
  await e.stop();
  void eve;
}

console.log(`# federation benchmark (Node ${process.version}), ${fmt(N)} PDUs, ${fmt(MEMBERS)} members`);
const only = process.env.BENCH_ONLY;
if (!only || only === 'ingest') {
  await ingestDirect();
  await ingestDirect();
  await ingestHttp();
  await ingestRooms(10);
}
if (!only || only === 'join') await join();
