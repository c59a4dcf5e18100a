/**
 * Browser-to-browser latency with no automation attached (packages/transport-libp2p/bench/p2p.bench.ts starts
 * two Chromiums on this page and reads their logs). Each page is a whole node: it registers the homeserver
 * worker and runs the transport host (the app's own `startTransportHost`), as the app's page does.
 *
 *   ?role=a&n=60      creates a public room `#p2pbench:<A>`, logs `MATRIX_P2P_BENCH_A {"serverName":…}`, waits for
 *                     B to join and for a direct WebRTC link, then sends n + 10 messages 60 ms apart, each
 *                     carrying the time it was sent (performance.timeOrigin + performance.now(): the two
 *                     browsers share the machine's clock)
 *   ?role=b&server=A  joins `#p2pbench:A`, long-polls /sync, and logs `MATRIX_P2P_BENCH {"latencies":[…]}`:
 *                     for each message after the first 10, the time from A's send to B's /sync returning it
 */
import { registerHomeserver } from '../../packages/sw-host/src/client.ts';
import { startTransportHost } from '../../apps/web/src/transport-host.ts';
import { mx, registerUser } from './worker-client.ts';

const params = new URLSearchParams(location.search);
const WARMUP = 10;
const now = () => performance.timeOrigin + performance.now();
const log = (tag: string, value: unknown) => console.log(`${tag} ${JSON.stringify(value)}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function sender(transport: ReturnType<typeof startTransportHost>, n: number): Promise<void> {
  const token = await registerUser('alice');
  const room = await mx('POST', '/_matrix/client/v3/createRoom', token, { preset: 'public_chat', room_alias_name: 'p2pbench' });
  const roomId = room.json.room_id as string;
  if (!roomId) throw new Error(`could not create the room: ${JSON.stringify(room.json)}`);
  log('MATRIX_P2P_BENCH_A', { serverName: transport.serverName });
  await until('B to join', async () => Object.keys((await mx('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`, token)).json.joined ?? {}).length >= 2, 120_000);
  await until('a direct WebRTC link', () => transport.peers().some((p) => p.kind === 'webrtc'), 120_000);
  for (let i = 0; i < n + WARMUP; i++) {
    await sleep(60); // B's long-poll is waiting again
    const t0 = now();
    const r = await mx('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/b${i}`, token, { msgtype: 'm.text', body: `bench ${i} ${t0}` });
    if (r.status !== 200) throw new Error(`send ${i}: HTTP ${r.status}`);
  }
}

async function receiver(transport: ReturnType<typeof startTransportHost>, server: string, n: number): Promise<void> {
  const token = await registerUser('bob');
  const alias = `#p2pbench:${server}`;
  const joined = await until('the join', async () => {
    const j = await mx('POST', `/_matrix/client/v3/join/${encodeURIComponent(alias)}`, token, {});
    return j.status === 200 ? (j.json.room_id as string) : undefined;
  }, 120_000);
  let since = (await mx('GET', '/_matrix/client/v3/sync?timeout=0', token)).json.next_batch as string;
  const latencies: number[] = [];
  let seen = 0;
  while (seen < n + WARMUP) {
    const r = await mx('GET', `/_matrix/client/v3/sync?timeout=30000&since=${encodeURIComponent(since)}`, token);
    const at = now();
    if (r.status !== 200) throw new Error(`sync: HTTP ${r.status}`);
    since = r.json.next_batch;
    for (const e of r.json.rooms?.join?.[joined]?.timeline?.events ?? []) {
      const m = /^bench (\d+) ([\d.]+)$/.exec(e.content?.body ?? '');
      if (!m) continue;
      seen++;
      if (Number(m[1]) >= WARMUP) latencies.push(at - Number(m[2]));
    }
  }
  const link = transport.peers().find((p) => p.serverName === server)?.kind;
  log('MATRIX_P2P_BENCH', { latencies, link });
}

async function main(): Promise<void> {
  // With only loopback, Chromium gathers no ICE candidates for an origin without a media permission (shared
  // notes, browser-p2p.md); the bench's flags grant a fake microphone without a prompt.
  const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
  for (const t of mic.getTracks()) t.stop();
  const registration = await registerHomeserver('/sw.js', { reloadIfNeeded: false });
  const transport = startTransportHost(registration);
  await until('the transport host', () => transport.role === 'host' && transport.serverName);
  const n = Number(params.get('n') ?? 60);
  if (params.get('role') === 'a') await sender(transport, n);
  else await receiver(transport, params.get('server') ?? '', n);
}

main().catch((e) => log(params.get('role') === 'a' ? 'MATRIX_P2P_BENCH_A' : 'MATRIX_P2P_BENCH', { error: String(e) }));
