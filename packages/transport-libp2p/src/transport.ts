/**
 * server-core's FederationTransport over a P2PNode (same realm), or over a TransportHostApi (a node in another
 * realm, reached through comlink). Inbound requests go to `hs.handle(request, { peer })`: the core refuses
 * non-federation paths for remote peers, and the node refuses them before that (src/http/policy.ts).
 */
import type { FederationTransport } from '@matrix-p2p/server-core';
import { deserializeResponse, serializeHead, serializeRequest, type TransportHostApi } from './bridge.ts';
import type { P2PNode } from './node.ts';

/** A homeserver as the transport sees it (server-core's `Homeserver` fits). */
export interface RequestSink {
  handle(request: Request, remote?: { peer?: string }): Promise<Response>;
}

/** The FederationTransport of a homeserver whose libp2p node runs in the same realm. */
export function transportFromNode(node: Pick<P2PNode, 'request' | 'on' | 'broadcast'>): FederationTransport {
  return {
    fetch: (destination, request, opts) => node.request(destination, request, opts?.body ? { body: opts.body } : undefined),
    onPeerReachable(listener) {
      node.on('peer', (p) => listener(p.serverName));
    },
    broadcast: (message) => node.broadcast(message),
    onBroadcast(listener) {
      node.on('broadcast', (b) => listener(b.message));
    },
  };
}

/** Deliver inbound requests to `hs`, authenticated as the remote peer (the connection's key is its name). */
export function serveHomeserver(node: Pick<P2PNode, 'onRequest'>, hs: RequestSink): void {
  node.onRequest((request, peer) => hs.handle(request, { peer }));
}

/**
 * The FederationTransport of a homeserver whose libp2p node lives in another realm (the Service Worker's
 * homeserver; the node in whichever page is the transport host). The homeserver gets `transport` at creation;
 * a page attaches itself as the host when it has a node (and detaches, or is replaced, when it goes). Without a
 * host, requests reject (the core keeps them queued and retries); the host reports peers that become
 * reachable with `peerReachable` so queues flush at once.
 */
export interface HostedTransport {
  transport: FederationTransport;
  /** Use `host` (e.g. a comlink proxy of the page's `hostApi(node)`) from now on. */
  attach(host: HostLike): void;
  /** Forget `host` (or whichever host is attached). */
  detach(host?: HostLike): void;
  /** The host says a peer became reachable. */
  peerReachable(serverName: string): void;
  /** The host received a message on the broadcast topic. */
  deliverBroadcast(message: Uint8Array): void;
  hasHost(): boolean;
}

/** What a hosted transport needs of its host: `fetch`, and `broadcast` if it can. */
export type HostLike = { fetch: TransportHostApi['fetch']; broadcast?: (message: Uint8Array) => Promise<void> };

export function createHostedTransport(opts: { timeoutMs?: number } = {}): HostedTransport {
  let host: HostLike | undefined;
  const listeners = new Set<(serverName: string) => void>();
  const broadcastListeners = new Set<(message: Uint8Array) => void>();
  return {
    transport: {
      async fetch(destination, request, fetchOpts) {
        const h = host;
        if (!h) throw new Error('no transport host: no page is running the libp2p node');
        const timeoutMs = opts.timeoutMs ?? 30_000;
        // The core gives the body's bytes along: no need to read them back from the Request (a copy goes, as
        // it is transferred away).
        const wire = fetchOpts?.body ? serializeHead(request, fetchOpts.body.slice().buffer as ArrayBuffer, timeoutMs) : await serializeRequest(request, timeoutMs);
        return deserializeResponse(await h.fetch(destination, wire));
      },
      onPeerReachable(listener) {
        listeners.add(listener);
      },
      // Without a host there is nobody to tell: the message is dropped (announcements are repeated anyway).
      broadcast: async (message) => {
        await host?.broadcast?.(message);
      },
      onBroadcast(listener) {
        broadcastListeners.add(listener);
      },
    },
    attach(h) {
      host = h;
    },
    detach(h) {
      if (!h || h === host) host = undefined;
    },
    peerReachable(serverName) {
      for (const l of listeners) l(serverName);
    },
    deliverBroadcast(message) {
      for (const l of broadcastListeners) l(message);
    },
    hasHost: () => host !== undefined,
  };
}
