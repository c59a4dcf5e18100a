import { startRendezvous } from '/work/main/rendezvous/src/index.ts';
import { createP2PNode, DISCOVERY_TOPIC } from '/work/main/packages/transport-libp2p/src/index.ts';
const rv = await startRendezvous({ port: 0, keyFile: '/tmp/p2ptest/rv.key' });
const seed = (n: number) => new Uint8Array(32).fill(n);
const mk = (n: number) => createP2PNode({ seed: seed(n), rendezvousAddrs: rv.multiaddrs, webrtc: false });
const a = await mk(1), b = await mk(2);
await a.start(); await b.start();
for (let i = 0; i < 8; i++) {
  await new Promise((r) => setTimeout(r, 1000));
  const ps: any = a.libp2p!.services.pubsub; const rps: any = rv.libp2p.services.pubsub;
  console.log(i, 'a topics', ps.getTopics(), 'a subs', ps.getSubscribers(DISCOVERY_TOPIC).map(String), 'a peers', ps.getPeers().map(String), 'rv subs', rps.getSubscribers(DISCOVERY_TOPIC).map(String), 'a addrs', a.libp2p!.getMultiaddrs().map(String), 'rv protos', (await a.libp2p!.peerStore.get(rv.libp2p.peerId)).protocols);
}
process.exit(0);
