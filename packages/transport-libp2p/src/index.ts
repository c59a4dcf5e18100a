/** @matrix-p2p/transport-libp2p: the whole public surface. */
export { createP2PNode, connectionKind, DEFAULT_DIAL_POLICY } from './node.ts';
export type { P2PNode, P2PNodeOptions, P2PNodeEvents, PeerStatus, ConnectionKind, DialPolicy, DialStats } from './node.ts';
export { transportFromNode, createHostedTransport, serveHomeserver, type HostedTransport, type HostLike, type RequestSink } from './transport.ts';
export {
  hostApi, exposeHost, wrapHost, withTransfer, serializeHead, HostTimeoutError, exposeInbound, wrapInbound, InboundPortClosedError, serveThrough, serializeRequest, deserializeRequest, serializeResponse, deserializeResponse,
  type TransportHostApi, type RemoteHost, type InboundApi, type InboundLink, type WireRequest, type WireResponse,
} from './bridge.ts';
export { identityFromSeed, privateKeyFromSeed, peerIdFromServerName, serverNameFromPeerId, isServerName } from './identity.ts';
export { findRendezvous, defaultRendezvousUrls } from './find-rendezvous.ts';
export { HTTP_PROTOCOL, DIRECTORY_TOPIC, DISCOVERY_TOPIC, GOSSIPSUB_OPTIONS, DEFAULT_RENDEZVOUS_PORT, type RendezvousInfo } from './constants.ts';
export { DEFAULT_LIMITS, type HttpLimits } from './http/wire.ts';
export { isRemotePathAllowed } from './http/policy.ts';
export type { RequestHandler } from './http/server.ts';
export { installShims } from './shims.ts';
