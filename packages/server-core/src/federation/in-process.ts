/**
 * An in-process network of homeservers (tests, benchmarks, demos): each node's transport delivers
 * requests straight to the destination's `handle`, with the connection authenticated as the sender
 * (as libp2p does). Links can be cut and nodes taken offline to test partitions and catch-up.
 *
 * `broadcast` delivers a message to every other online node, asynchronously (as gossipsub would).
 * Cut links do not stop it: gossip is relayed by the mesh, so a node is out of it only when offline.
 */
import type { Homeserver } from '../homeserver.ts';
import type { FederationTransport } from './transport.ts';

export class InProcessNetwork {
  private nodes = new Map<string, Homeserver>();
  private offline = new Set<string>();
  private cut = new Set<string>();
  private listeners: { owner: () => string; listener: (name: string) => void }[] = [];
  private broadcastListeners: { owner: () => string; listener: (message: Uint8Array) => void }[] = [];
  /** Requests delivered (by path prefix), for tests that count traffic. */
  delivered = 0;
  /** Broadcast messages delivered (one per receiving node), for tests that count traffic. */
  broadcastsDelivered = 0;

  /** A transport for the node that will be called `name` (names are known once the node exists: use `attach`). */
  transportFor(getName: () => string): FederationTransport {
    return {
      fetch: async (destination, request) => {
        const from = getName();
        const node = this.nodes.get(destination);
        if (!node || node.federation.stopped || this.offline.has(destination) || this.offline.has(from) || this.cut.has(linkKey(from, destination))) {
          throw new TypeError(`network: ${destination} unreachable from ${from}`);
        }
        this.delivered++;
        const url = new URL(request.url);
        const copy = new Request(`http://${destination}${url.pathname}${url.search}`, {
          method: request.method,
          headers: request.headers,
          body: request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.arrayBuffer(),
        });
        return node.handle(copy, { peer: from });
      },
      onPeerReachable: (listener) => {
        this.listeners.push({ owner: getName, listener });
      },
      broadcast: async (message) => {
        const from = getName();
        if (this.offline.has(from) || (from && this.nodes.get(from)?.federation.stopped)) return;
        const copy = message.slice();
        // Delivered after the caller continues, as a network would.
        await Promise.resolve();
        for (const l of [...this.broadcastListeners]) {
          const to = l.owner();
          const node = this.nodes.get(to);
          if (to === from || !node || node.federation.stopped || this.offline.has(to)) continue;
          this.broadcastsDelivered++;
          try {
            l.listener(copy.slice());
          } catch {
            // A listener's failure is the receiver's business.
          }
        }
      },
      onBroadcast: (listener) => {
        this.broadcastListeners.push({ owner: getName, listener });
      },
    };
  }

  attach(hs: Homeserver): void {
    this.nodes.set(hs.serverName, hs);
    this.announce(hs.serverName);
  }
  detach(hs: Homeserver): void {
    this.nodes.delete(hs.serverName);
  }

  /** Take a node off the network (its requests and requests to it fail) or bring it back. */
  setOnline(name: string, online: boolean): void {
    if (online) {
      this.offline.delete(name);
      this.announce(name);
    } else this.offline.add(name);
  }
  /** Cut or heal the link between two nodes. */
  setLink(a: string, b: string, up: boolean): void {
    if (up) {
      this.cut.delete(linkKey(a, b));
      this.notify(a, b);
      this.notify(b, a);
    } else this.cut.add(linkKey(a, b));
  }

  private announce(name: string): void {
    for (const other of this.nodes.keys()) if (other !== name) (this.notify(other, name), this.notify(name, other));
  }
  private notify(listenerNode: string, reachable: string): void {
    for (const l of this.listeners) if (l.owner() === listenerNode) l.listener(reachable);
  }
}

function linkKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
