/**
 * The worker's half of "browsers federate": Service Workers have no RTCPeerConnection, so the libp2p node runs
 * in one tab per origin (the transport host, elected with Web Locks; apps/web/src/transport-host.ts). Here:
 *
 * - outbound: a FederationTransport (given to createHomeserver) whose `fetch` goes to the attached host: the
 *   page serves its node's `TransportHostApi` over a MessagePort with comlink (`exposeHost`), the worker wraps
 *   that port (`wrapHost`). With no host attached, `fetch` rejects (the core keeps the traffic queued and
 *   retries) and the worker asks its pages for a host; a host that stops answering is dropped the same way;
 * - peers becoming reachable: the worker registers a comlink proxy with the host (`onPeer`), so queued traffic
 *   flushes the moment a peer is back;
 * - broadcasts (room-directory gossip): out through the host's `broadcast`; what the host hears is posted to the
 *   worker (`matrix-p2p/broadcast`, which wakes a stopped worker) and handed to the core (`deliverBroadcast`);
 * - inbound: the host sends each request over a port the worker serves (`exposeInbound`), or, when that worker
 *   is gone, posts it to the registration's active worker as a plain message (a message wakes a stopped worker,
 *   which a port cannot do); `handleInbound` in host.ts answers both with `hs.handle(request, { peer })` (the
 *   core allows federation and media only).
 *
 * Bodies cross as transferred ArrayBuffers; AbortSignals do not cross, so requests carry a timeout.
 */
import type { FederationTransport } from '@matrix-p2p/server-core';
import { wrapHost, type RemoteHost } from '@matrix-p2p/transport-libp2p/bridge';
import type { PeerStatus } from '@matrix-p2p/transport-libp2p';
import { createHostedTransport } from '@matrix-p2p/transport-libp2p/transport';
import { NEED_HOST } from './protocol.ts';

export interface WorkerFederation {
  transport: FederationTransport;
  /** A host tab attached itself over `port` (`peers`: the peers it can reach now). */
  attach(port: MessagePort, peers: string[]): void;
  hasHost(): boolean;
  /** The host's peers (undefined without a host, or if it does not answer quickly). */
  peers(): Promise<PeerStatus[] | undefined>;
  /** A message the host received on the broadcast topic (room-directory gossip). */
  deliverBroadcast(message: Uint8Array): void;
}

export function createWorkerFederation(opts: {
  /** Ask the pages for a host (the worker posts NEED_HOST to its clients). */
  askForHost: () => void;
  timeoutMs?: number;
}): WorkerFederation {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const hosted = createHostedTransport({ timeoutMs });
  let current: { remote: RemoteHost; fetch: RemoteHost['fetch'] } | undefined;
  let asked = 0;
  const ask = () => {
    const now = Date.now();
    if (now - asked < 1000) return;
    asked = now;
    opts.askForHost();
  };
  const drop = (link: NonNullable<typeof current>) => {
    if (current !== link) return;
    current = undefined;
    hosted.detach(link);
    link.remote.close();
    ask();
  };
  return {
    transport: {
      fetch(destination, request, opts) {
        if (!hosted.hasHost()) ask();
        return hosted.transport.fetch(destination, request, opts);
      },
      onPeerReachable: (listener) => hosted.transport.onPeerReachable!(listener),
      broadcast: (message) => hosted.transport.broadcast!(message),
      onBroadcast: (listener) => hosted.transport.onBroadcast!(listener),
    },
    deliverBroadcast: (message) => hosted.deliverBroadcast(message),
    attach(port, peers) {
      if (current) {
        const old = current;
        current = undefined;
        hosted.detach(old);
        old.remote.close();
      }
      const remote = wrapHost(port, { defaultTimeoutMs: timeoutMs });
      const link = {
        remote,
        broadcast: (message: Uint8Array) => remote.broadcast(message),
        fetch: async (destination: string, wire: Parameters<RemoteHost['fetch']>[1]) => {
          try {
            return await remote.fetch(destination, wire);
          } catch (e) {
            // The host did not answer at all (its tab closed or hung): find another. A peer that cannot be
            // reached is an ordinary rejection from the host and keeps it.
            if (e instanceof Error && e.name === 'HostTimeoutError') drop(link);
            throw e;
          }
        },
      };
      current = link;
      hosted.attach(link);
      remote.onPeer((name) => hosted.peerReachable(name)).catch(() => drop(link));
      for (const p of peers) hosted.peerReachable(p);
    },
    hasHost: () => hosted.hasHost(),
    async peers() {
      const link = current;
      if (!link) return undefined;
      return link.remote.peers().catch(() => undefined);
    },
  };
}

export { NEED_HOST };
