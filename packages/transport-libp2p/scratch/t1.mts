import { startRendezvous } from '/work/main/rendezvous/src/index.ts';
import { createP2PNode } from '/work/main/packages/transport-libp2p/src/index.ts';
const webrtc = process.argv[2] === 'webrtc';
const rv = await startRendezvous({ port: 0, keyFile: '/tmp/p2ptest/rv.key' });
console.log('rv', rv.multiaddrs);
const seed = (n: number) => new Uint8Array(32).fill(n);
const mk = (n: number) => createP2PNode({ seed: seed(n), rendezvousAddrs: rv.multiaddrs, webrtc, log: (m, d) => console.log(`[${n}] ${m}`, d ? String((d as Error).message ?? d) : '') });
const a = await mk(1), b = await mk(2);
for (const [n, x] of [['a', a], ['b', b]] as const) {
  x.on('peer', (p) => console.log(n, 'peer', p.kind, p.remoteAddr));
  x.on('peer-updated', (p) => console.log(n, 'peer-updated', p.kind, p.remoteAddr));
  x.on('peer-gone', (p) => console.log(n, 'peer-gone', p.serverName.slice(0, 8)));
  x.onRequest(async (req, remote) => new Response(JSON.stringify({ path: new URL(req.url).pathname, remote: remote.slice(0, 8), len: (await req.arrayBuffer()).byteLength }), { headers: { 'content-type': 'application/json' } }));
}
const t0 = Date.now();
await a.start(); await b.start();
console.log('started', a.serverName.slice(0, 8), b.serverName.slice(0, 8));
while (a.peers().length === 0 || b.peers().length === 0 || (webrtc && a.peers()[0]!.kind !== 'webrtc')) {
  await new Promise((r) => setTimeout(r, 100));
  if (Date.now() - t0 > 30000) { console.log('TIMEOUT', a.peers(), b.peers()); break; }
}
console.log('connected after', Date.now() - t0, a.peers(), b.peers());
const body = new Uint8Array(100_000).fill(7);
const r = await a.request(b.serverName, new Request('http://federation.invalid/_matrix/federation/v1/echo?x=1', { method: 'POST', body }));
console.log(r.status, await r.text());
const r2 = await b.request(a.serverName, new Request('http://x/_matrix/client/v3/sync'));
console.log('client path', r2.status, await r2.text());
const times: number[] = [];
for (let i = 0; i < 50; i++) { const t = performance.now(); const rr = await a.request(b.serverName, new Request('http://x/_matrix/federation/v1/version')); await rr.text(); times.push(performance.now() - t); }
times.sort((x, y) => x - y); console.log('p50', times[25], 'p99', times[49]);
console.log('stats', a.stats(), b.stats());
await rv.stop();
await new Promise((r) => setTimeout(r, 1500));
console.log('after rv stop', a.peers().map((p) => p.kind), a.rendezvousConnected());
const r3 = await a.request(b.serverName, new Request("http://x/_matrix/federation/v1/version")).catch((e) => ({ status: String(e), text: async () => "" })) ?? await a.request(b.serverName, new Request('http://x/_matrix/federation/v1/version'));
console.log('after rv stop', r3.status, await r3.text());
await a.stop(); await b.stop();
process.exit(0);
