/**
 * @matrix-p2p/rendezvous: where browsers meet. A Node libp2p node with a websockets listener, a circuit relay
 * v2 server (browsers reserve a slot and are reachable at <rendezvous>/p2p-circuit/p2p/<them>; WebRTC between
 * them is signalled through it), identify, and gossipsub carrying pubsub-peer-discovery announcements. It sees
 * who is online, and relays bytes it cannot read (noise end to end) until WebRTC is up.
 */
import { installShims } from '@matrix-p2p/transport-libp2p/shims';
import { broadcastValidator, DEFAULT_RENDEZVOUS_PORT, DIRECTORY_TOPIC, DISCOVERY_TOPIC, GOSSIPSUB_OPTIONS, type RendezvousInfo } from '@matrix-p2p/transport-libp2p/constants';
import { circuitRelayServer } from '@libp2p/circuit-relay-v2';
import { gossipsub, TopicValidatorResult } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { Libp2p } from '@libp2p/interface';
import { noise } from '@libp2p/noise';
import { pubsubPeerDiscovery } from '@libp2p/pubsub-peer-discovery';
import { webSockets } from '@libp2p/websockets';
import { yamux } from '@libp2p/yamux';
import { createLibp2p } from 'libp2p';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attachHttp, infoHandler } from './http.ts';
import { loadOrCreateKey } from './key.ts';

export { loadOrCreateKey } from './key.ts';
export type { RendezvousInfo } from '@matrix-p2p/transport-libp2p/constants';

export const DEFAULT_KEY_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', '.data', 'peer.key');

export interface RendezvousOptions {
  /** Interface to listen on (default 127.0.0.1; 0.0.0.0 for every interface). */
  host?: string;
  /** Port for websockets and the HTTP endpoints (default 9090; 0 picks a free one). */
  port?: number;
  /** Where the private key lives (created on first start). Default rendezvous/.data/peer.key. */
  keyFile?: string;
  /** Multiaddrs to announce instead of the listening ones (behind a proxy: /dns4/example.org/tcp/443/wss). */
  announce?: string[];
  /** The discovery topic (must match the browsers'). */
  topic?: string;
  /** Relay slots (default 1024; libp2p's default of 15 is far too few). */
  maxReservations?: number;
  /** How long one relayed connection may stay open, ms (default 30 min; libp2p: 2 min). */
  relayDurationLimitMs?: number;
  /** How many bytes one relayed connection may carry (default 64 MiB; libp2p: 128 KiB). */
  relayDataLimitBytes?: number;
  /** Most connections at once (default 1024). */
  maxConnections?: number;
  log?: (message: string) => void;
}

export interface Rendezvous {
  peerId: string;
  /** Dialable multiaddrs, each ending in /p2p/<peerId>. */
  multiaddrs: string[];
  /** http://host:port of the HTTP endpoints (same port as the websockets). */
  httpUrl: string;
  /** Whether the key file was created by this start. */
  keyCreated: boolean;
  info(): RendezvousInfo;
  /** Peers with a relay reservation now. */
  reservations(): number;
  stop(): Promise<void>;
  libp2p: Libp2p;
}

export async function startRendezvous(opts: RendezvousOptions = {}): Promise<Rendezvous> {
  await installShims();
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? DEFAULT_RENDEZVOUS_PORT;
  const ipv6 = host.includes(':');
  const { key, created } = await loadOrCreateKey(opts.keyFile ?? DEFAULT_KEY_FILE);
  const relay = circuitRelayServer({
    hopTimeout: 30_000,
    reservations: {
      maxReservations: opts.maxReservations ?? 1024,
      defaultDurationLimit: opts.relayDurationLimitMs ?? 30 * 60_000,
      defaultDataLimit: BigInt(opts.relayDataLimitBytes ?? 64 * 1024 * 1024),
    },
    maxInboundHopStreams: 1024,
    maxOutboundStopStreams: 1024,
  });
  const node = await createLibp2p({
    privateKey: key,
    addresses: {
      listen: [`/${ipv6 ? 'ip6' : 'ip4'}/${host}/tcp/${port}/ws`],
      ...(opts.announce ? { announce: opts.announce } : {}),
    },
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      maxConnections: opts.maxConnections ?? 1024,
      // Browsers on one machine (or behind one NAT) all come from one address.
      inboundConnectionThreshold: 100,
      maxIncomingPendingConnections: 128,
    },
    services: {
      identify: identify(),
      relay,
      pubsub: gossipsub({ ...GOSSIPSUB_OPTIONS }),
      // Subscribe (so gossip flows through here) without announcing the rendezvous itself as a peer.
      discovery: pubsubPeerDiscovery({ topics: [opts.topic ?? DISCOVERY_TOPIC], listenOnly: true }),
    },
  });
  // Carry the room-directory gossip too (the nodes check the announcements; the rendezvous only forwards them).
  const pubsub = node.services.pubsub;
  pubsub.topicValidators.set(DIRECTORY_TOPIC, (peer, msg) => (broadcastValidator(peer, msg) === 'accept' ? TopicValidatorResult.Accept : TopicValidatorResult.Reject));
  pubsub.subscribe(DIRECTORY_TOPIC);
  const peerId = node.peerId.toString();
  const multiaddrs = () => node.getMultiaddrs().map((m) => m.toString());
  const info = (): RendezvousInfo => ({ peerId, multiaddrs: multiaddrs() });
  if (attachHttp(node, infoHandler(info)) === 0) opts.log?.('warning: could not attach the HTTP endpoints to the websocket listener');
  const listening = node.getMultiaddrs()[0]?.getComponents() ?? [];
  const actualPort = Number(listening.find((c) => c.name === 'tcp')?.value ?? port);
  const urlHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : ipv6 ? `[${host}]` : host;
  return {
    peerId,
    multiaddrs: multiaddrs(),
    httpUrl: `http://${urlHost}:${actualPort}`,
    keyCreated: created,
    info,
    reservations: () => (node.services.relay as { reservations: { size: number } }).reservations.size,
    stop: async () => {
      await node.stop();
    },
    libp2p: node as unknown as Libp2p,
  };
}
