/**
 * server-core's FederationTransport over a P2PNode (same realm), or over a TransportHostApi (a node in another
 * realm, reached through comlink). Inbound requests go to `hs.handle(request, { peer })`: the core refuses
 * non-federation paths for remote peers, and the node refuses them before that (src/http/policy.ts).
 */
import type { FederationTransport } from '@matrix-p2p/server-core';
import { deserializeResponse, serializeRequest, type TransportHostApi } from './bridge.ts';
import type { P2PNode } from './node.ts';

/** A homeserver as the transport sees it (server-core's `Homeserver` fits). */
export interface RequestSink {
  handle(request: Request, remote?: { peer?: string }): Promise<Response>;
}

/** The FederationTransport of a homeserver whose libp2p node runs in the same realm. */
export function transportFromNode(node: Pick<P2PNode, 'request' | 'on'>): FederationTransport {
  return {
    fetch: (destination, request) => node.request(destination, request),
    onPeerReachable(listener) {
      node.on('peer', (p) => listener(p.serverName));
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
  attach(host: Pick<TransportHostApi, 'fetch'>): void;
  /** Forget `host` (or whichever host is attached). */
  detach(host?: Pick<TransportHostApi, 'fetch'>): void;
  /** The host says a peer became reachable. */
  peerReachable(serverName: string): void;
  hasHost(): boolean;
}

export function createHostedTransport(opts: { timeoutMs?: number } = {}): HostedTransport {
  let host: Pick<TransportHostApi, 'fetch'> | undefined;
  const listeners = new Set<(serverName: string) => void>();
  return {
    transport: {
      async fetch(destination, request) {
        const h = host;
        if (!h) throw new Error('no transport host: no page is running the libp2p node');
        return deserializeResponse(await h.fetch(destination, await serializeRequest(request, opts.timeoutMs ?? 30_000)));
      },
      onPeerReachable(listener) {
        listeners.add(listener);
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
    hasHost: () => host !== undefined,
  };
}
