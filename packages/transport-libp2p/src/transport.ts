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
 * The FederationTransport of a homeserver whose node lives elsewhere (the worker, with the node in a page).
 * `subscribe` registers for peer appearances (pass a comlink.proxy'd callback through).
 */
export function transportFromHost(
  host: Pick<TransportHostApi, 'fetch'>,
  opts: { subscribe?: (listener: (serverName: string) => void) => void; timeoutMs?: number } = {},
): FederationTransport {
  return {
    async fetch(destination, request) {
      return deserializeResponse(await host.fetch(destination, await serializeRequest(request, opts.timeoutMs ?? 30_000)));
    },
    onPeerReachable(listener) {
      opts.subscribe?.(listener);
    },
  };
}
