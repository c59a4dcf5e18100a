/**
 * How the core reaches other servers. The core never opens sockets: a FederationTransport (in-process
 * for tests, HTTP between Node hosts, HTTP-over-libp2p in browsers) carries its requests. Inbound
 * requests reach the core through `hs.handle(request, { remote })`, where the transport says which peer
 * (server name) the connection is authenticated as, when it knows.
 */
export interface FederationTransport {
  /** Send `request` to `destination` (a server name). Only the request's path and query matter; the
   *  host part of its URL is ignored by transports. Rejects when the peer cannot be reached. */
  fetch(destination: string, request: Request, opts?: FetchOptions): Promise<Response>;
  /** Register a callback for peers that become reachable (so queued traffic flushes at once). */
  onPeerReachable?(listener: (serverName: string) => void): void;
  /**
   * Publish `message` to every node (in browsers: the gossipsub directory topic). Best effort: it
   * resolves once handed to the network, whether or not anyone receives it. Messages are relayed, so
   * receivers learn no trustworthy sender: what needs authenticating must be signed (directory
   * announcements are, by their origin).
   */
  broadcast?(message: Uint8Array): Promise<void>;
  /** Register a callback for messages other nodes `broadcast` (never our own). */
  onBroadcast?(listener: (message: Uint8Array) => void): void;
}

/** What the core may tell a transport about a request beyond the Request itself. */
export interface FetchOptions {
  /** The request's body as bytes (the same as the Request's): a transport that passes bytes on may take them
   *  rather than read the body back. */
  body?: Uint8Array;
}

/** What a transport knows about an inbound request. */
export interface RemoteContext {
  /** The server name the connection is authenticated as (libp2p PeerId ↔ key), when known. */
  peer?: string;
}

/** A placeholder origin for federation URLs: transports route by destination, not by host. */
export const FEDERATION_ORIGIN = 'http://federation.invalid';
