import { startRendezvous } from '/work/main/rendezvous/src/index.ts';
import { createP2PNode, DISCOVERY_TOPIC } from '/work/main/packages/transport-libp2p/src/index.ts';
const rv = await startRendezvous({ port: 0, keyFile: '/tmp/p2ptest/rv.key' });
const seed = (n: number) => new Uint8Array(32).fill(n);
const mk = (n: number) => createP2PNode({ seed: seed(n), rendezvousAddrs: rv.multiaddrs, webrtc: false });
const a = await mk(1), b = await mk(2);
await a.start(); await b.start();
const bps: any = b.libp2p!.services.pubsub;
bps.addEventListener('message', (e: any) => console.log('b got message', e.detail.topic, e.detail.data.length));
(rv.libp2p.services.pubsub as any).addEventListener('message', (e: any) => console.log('rv got message', e.detail.topic));
(b.libp2p!.services.discovery as any).addEventListener('peer', (e: any) => console.log('b discovery peer', e.detail.id.toString(), e.detail.multiaddrs.map(String)));
b.libp2p!.addEventListener('peer:discovery', (e: any) => console.log('b peer:discovery', e.detail.id.toString()));
for (let i = 0; i < 12; i++) {
  await new Promise((r) => setTimeout(r, 1000));
  const rps: any = rv.libp2p.services.pubsub;
  console.log(i, 'rv mesh', rps.getMeshPeers?.(DISCOVERY_TOPIC)?.map(String), 'a mesh', (a.libp2p!.services.pubsub as any).getMeshPeers?.(DISCOVERY_TOPIC)?.map(String));
}
process.exit(0);
