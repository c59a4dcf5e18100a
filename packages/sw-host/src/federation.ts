/**
 * The worker's half of "browsers federate": Service Workers have no RTCPeerConnection, so the libp2p node runs
 * in one tab per origin (the transport host, elected with Web Locks; apps/web/src/transport-host.ts). Here:
 *
 * - outbound: a FederationTransport (given to createHomeserver) whose `fetch` goes to the attached host over
 *   its MessagePort; with no host attached it rejects (the core queues and retries) and asks the pages for one;
 * - inbound: the host posts each request to the registration's active worker (which wakes a stopped worker);
 *   `handleInbound` answers it with `hs.handle(request, { peer })` (the core allows federation and media only).
 *
 * Bodies cross as ArrayBuffers (structured clone); AbortSignals do not cross, so requests carry a timeout.
 */
import type { FederationTransport } from '@matrix-p2p/server-core';
import type { PeerStatus, WireRequest, WireResponse } from '@matrix-p2p/transport-libp2p';
import { NEED_HOST, type HostEvent, type HostRpcCall, type HostRpcCallBody, type HostRpcReply } from './protocol.ts';

function pairs(headers: Headers): [string, string][] {
  const out: [string, string][] = [];
  headers.forEach((v, k) => out.push([k, v]));
  return out;
}

export async function toWireRequest(request: Request, timeoutMs?: number): Promise<WireRequest> {
  const body = request.method === 'GET' || request.method === 'HEAD' || request.body === null ? null : await request.arrayBuffer();
  const wire: WireRequest = { method: request.method, url: request.url, headers: pairs(request.headers), body: body && body.byteLength > 0 ? body : null };
  if (timeoutMs !== undefined) wire.timeoutMs = timeoutMs;
  return wire;
}

export function fromWireRequest(wire: WireRequest): Request {
  const init: RequestInit = { method: wire.method, headers: wire.headers, body: wire.body };
  if (wire.timeoutMs !== undefined) init.signal = AbortSignal.timeout(wire.timeoutMs);
  return new Request(wire.url, init);
}

export async function toWireResponse(response: Response): Promise<WireResponse> {
  const body = response.body === null ? null : await response.arrayBuffer();
  return { status: response.status, headers: pairs(response.headers), body: body && body.byteLength > 0 ? body : null };
}

export function fromWireResponse(wire: WireResponse): Response {
  const nullBody = wire.status === 204 || wire.status === 205 || wire.status === 304;
  return new Response(nullBody ? null : wire.body, { status: wire.status, headers: wire.headers });
}

interface Pending {
  resolve: (r: HostRpcReply) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** One attached host: an RPC over its port. */
class HostLink {
  private next = 1;
  private readonly pending = new Map<number, Pending>();
  constructor(
    readonly port: MessagePort,
    onEvent: (e: HostEvent) => void,
  ) {
    port.onmessage = (e: MessageEvent<HostRpcReply | HostEvent>) => {
      const d = e.data;
      if ('event' in d) return onEvent(d);
      const p = this.pending.get(d.id);
      if (!p) return;
      this.pending.delete(d.id);
      clearTimeout(p.timer);
      p.resolve(d);
    };
    port.start();
  }
  call(msg: HostRpcCallBody, timeoutMs: number, transfer: Transferable[] = []): Promise<HostRpcReply> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('the transport host did not answer'));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.port.postMessage({ ...msg, id } as HostRpcCall, transfer);
    });
  }
  close(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error('the transport host went away'));
    }
    this.pending.clear();
    this.port.close();
  }
}

export interface WorkerFederation {
  transport: FederationTransport;
  /** A host tab attached itself (`peers`: the peers it can reach now). */
  attach(port: MessagePort, peers: string[]): void;
  hasHost(): boolean;
  /** The host's peers (undefined without a host, or if it does not answer quickly). */
  peers(): Promise<PeerStatus[] | undefined>;
}

export function createWorkerFederation(opts: {
  /** Ask the pages for a host (the worker posts NEED_HOST to its clients). */
  askForHost: () => void;
  timeoutMs?: number;
}): WorkerFederation {
  let host: HostLink | undefined;
  const listeners = new Set<(serverName: string) => void>();
  const reachable = (name: string) => {
    for (const l of listeners) l(name);
  };
  let asked = 0;
  const ask = () => {
    const now = Date.now();
    if (now - asked < 1000) return;
    asked = now;
    opts.askForHost();
  };
  return {
    transport: {
      async fetch(destination, request) {
        const h = host;
        if (!h) {
          ask();
          throw new Error('no transport host: no tab is running the libp2p node');
        }
        const timeoutMs = opts.timeoutMs ?? 30_000;
        const wire = await toWireRequest(request, timeoutMs);
        let reply: HostRpcReply;
        try {
          reply = await h.call({ op: 'fetch', destination, request: wire }, timeoutMs + 5_000, wire.body ? [wire.body] : []);
        } catch (e) {
          if (host === h) {
            host = undefined;
            h.close();
            ask();
          }
          throw e;
        }
        if (!reply.ok) throw new Error(reply.error);
        if (!reply.response) throw new Error('the transport host sent no response');
        return fromWireResponse(reply.response);
      },
      onPeerReachable(listener) {
        listeners.add(listener);
      },
    },
    attach(port, peers) {
      host?.close();
      host = new HostLink(port, (e) => {
        if (e.event === 'peer') reachable(e.serverName);
      });
      for (const p of peers) reachable(p);
    },
    hasHost: () => host !== undefined,
    async peers() {
      const h = host;
      if (!h) return undefined;
      try {
        const r = await h.call({ op: 'peers' }, 2_000);
        return r.ok ? r.peers : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

export { NEED_HOST };
