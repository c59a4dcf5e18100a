/**
 * Names shared by the browser node and the rendezvous (importable alone, without libp2p:
 * `@matrix-p2p/transport-libp2p/constants`).
 */

/** HTTP over libp2p streams, kept alive between exchanges (see src/http/wire.ts for the framing). */
export const HTTP_PROTOCOL = '/matrix-p2p/http/1';

/** Methods a request may be sent again with when a link fails under it (RFC 9110 §9.2.2: idempotent). Matrix
 *  federation's PUTs are (transaction and event ids); some POSTs are not (`/user/keys/claim` takes one-time
 *  keys), so a POST is never sent twice. */
export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** The gossipsub topic pubsub-peer-discovery announces matrix-p2p nodes on (the rendezvous subscribes too). */
export const DISCOVERY_TOPIC = 'matrix-p2p._peer-discovery._p2p._pubsub';

/** The gossipsub topic nodes broadcast their signed room-directory announcements on (the rendezvous subscribes
 *  too, so the gossip flows through it; server-core's PeerDirectory checks every message). */
export const DIRECTORY_TOPIC = 'matrix-p2p.directory/1';

/** Largest message gossiped on the broadcast topic: bigger ones are refused (not delivered, not forwarded) by
 *  every node and the rendezvous (server-core refuses announcements over 64 KiB anyway). */
export const MAX_BROADCAST_BYTES = 64 * 1024;

/** The gossipsub validator of the broadcast topic: refuses what is too big to be an announcement. */
export function broadcastValidator(_peer: unknown, message: { data: Uint8Array }): 'accept' | 'reject' {
  return message.data.byteLength <= MAX_BROADCAST_BYTES ? 'accept' : 'reject';
}

/** Gossipsub parameters for small meshes (2–10 peers), measured in shared/notes/browser-p2p.md. */
export const GOSSIPSUB_OPTIONS = {
  D: 4,
  Dlo: 2,
  Dhi: 8,
  allowPublishToZeroTopicPeers: true,
  emitSelf: false,
} as const;

/** Default port of the rendezvous (websockets, and GET /multiaddr on the same port). */
export const DEFAULT_RENDEZVOUS_PORT = 9090;

/** The JSON the rendezvous serves at GET /rendezvous.json (and writes with --addr-file). */
export interface RendezvousInfo {
  /** The rendezvous' PeerId (base58btc). */
  peerId: string;
  /** Its dialable multiaddrs, each ending in /p2p/<peerId>. */
  multiaddrs: string[];
}
