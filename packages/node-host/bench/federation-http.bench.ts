/**
 * Federation between two Node hosts over real HTTP (the `--peer` transport): a user on A sends messages
 * through the client API (8 in flight), and the benchmark measures how fast they reach B — A's send
 * pipeline, its durable outbound queue, signed transactions of up to 50 PDUs over HTTP, and B's ingest —
 * and the time for a message to arrive (p50/p99, one at a time). Prints figures; asserts nothing.
 */
import { loadavg } from 'node:os';
import { startNodeHost, type NodeHost } from '../src/index.ts';
import { freePort } from '../test/serve-process.ts';

const N = Number(process.env.BENCH_HTTP_N ?? 3000);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];


async function json(node: NodeHost, method: string, path: string, body?: unknown, token?: string): Promise<any> {
  const r = await fetch(node.url + path, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

const [pa, pb] = [await freePort(), await freePort()];
const quiet = { log: () => {} };
const a = await startNodeHost({ port: pa, peers: [`http://127.0.0.1:${pb}`], federation: { retryMs: 50, maxRetryMs: 500 }, log: quiet.log });
const b = await startNodeHost({ port: pb, peers: [a.url], federation: { retryMs: 50, maxRetryMs: 500 }, log: quiet.log });
try {
  if (!(await a.federation!.ready(10_000)) || !(await b.federation!.ready(10_000))) throw new Error('the hosts did not learn each other');
  const alice = (await json(a, 'POST', '/_matrix/client/v3/register', { username: 'alice', password: 'pw', auth: { type: 'm.login.dummy' } })).access_token;
  const bob = (await json(b, 'POST', '/_matrix/client/v3/register', { username: 'bob', password: 'pw', auth: { type: 'm.login.dummy' } })).access_token;
  const roomId = (await json(a, 'POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }, alice)).room_id as string;
  await json(b, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?via=${a.hs.serverName}`, {}, bob);
  const onB = async () => (await b.hs.store.rooms.timeline(roomId, { dir: 'b', limit: 1 }))[0]?.stream ?? 0;
  const count = async () => (await b.hs.store.rooms.timeline(roomId, { dir: 'f', limit: 1_000_000 })).filter((e) => e.type === 'm.room.message').length;

  console.log(`# federation over HTTP between two node hosts (Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  // Throughput: N messages, 8 in flight on A's client API.
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < N) {
      const i = next++;
      await json(a, 'PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t${i}`, { msgtype: 'm.text', body: `message ${i}` }, alice);
    }
  }));
  const sent = performance.now() - t0;
  while ((await count()) < N) await new Promise((r) => setTimeout(r, 5));
  const all = performance.now() - t0;
  console.log(`${`${fmt(N)} messages sent on A (client API, 8 in flight)`.padEnd(60)} ${fmt((N / sent) * 1000).padStart(8)} msgs/s`);
  console.log(`${`... all of them in B's timeline (over HTTP federation)`.padEnd(60)} ${fmt((N / all) * 1000).padStart(8)} msgs/s  (${fmt(all)} ms)`);

  // Latency: one message at a time, from A's send to B's timeline.
  const times: number[] = [];
  for (let i = 0; i < 100; i++) {
    const before = await onB();
    const t = performance.now();
    await json(a, 'PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/l${i}`, { msgtype: 'm.text', body: `latency ${i}` }, alice);
    while ((await onB()) === before) await new Promise((r) => setImmediate(r));
    times.push(performance.now() - t);
  }
  console.log(`${'one message, A\'s send → B\'s timeline (n=100)'.padEnd(60)} p50 ${pct(times, 50).toFixed(1)} ms, p99 ${pct(times, 99).toFixed(1)} ms`);
} finally {
  await a.close();
  await b.close();
}
