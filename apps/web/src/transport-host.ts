/**
 * The transport host: one tab per origin runs the libp2p node for the homeserver in the Service Worker
 * (workers have no RTCPeerConnection). Elected with Web Locks: whichever tab holds 'matrix-p2p-transport'
 * runs the node; when it closes, the lock passes to another tab, which starts the node again.
 *
 *   page → worker  `matrix-p2p/node-seed`        the node's identity is the homeserver's signing key
 *   page → worker  `matrix-p2p/transport-host`   a port for the worker's outbound `fetch` and `peers`
 *   page → worker  `matrix-p2p/inbound`          each request a peer sends, posted to the registration's
 *                                                active worker (a message wakes a stopped worker)
 *   worker → page  `matrix-p2p/need-host`        a restarted worker lost the port: attach again
 */
import type { P2PNode, PeerStatus, WireRequest, WireResponse } from '@matrix-p2p/transport-libp2p';
import type { AnyWorkerReply, HostEvent, HostRpcCall, HostRpcReply } from '@matrix-p2p/sw-host/client';

const LOCK = 'matrix-p2p-transport';

export interface TransportHostState {
  role: 'host' | 'follower' | 'failed';
  serverName?: string;
  error?: string;
  peers(): PeerStatus[];
  rendezvousConnected(): boolean;
}

function pairs(headers: Headers): [string, string][] {
  const out: [string, string][] = [];
  headers.forEach((v, k) => out.push([k, v]));
  return out;
}

async function toWireRequest(request: Request): Promise<WireRequest> {
  const body = request.method === 'GET' || request.method === 'HEAD' || request.body === null ? null : await request.arrayBuffer();
  return { method: request.method, url: request.url, headers: pairs(request.headers), body: body && body.byteLength > 0 ? body : null, timeoutMs: 30_000 };
}

async function toWireResponse(response: Response): Promise<WireResponse> {
  const body = response.body === null ? null : await response.arrayBuffer();
  return { status: response.status, headers: pairs(response.headers), body: body && body.byteLength > 0 ? body : null };
}

function fromWireResponse(wire: WireResponse): Response {
  const nullBody = wire.status === 204 || wire.status === 205 || wire.status === 304;
  return new Response(nullBody ? null : wire.body, { status: wire.status, headers: wire.headers });
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** Post `msg` to the registration's active worker and wait for its one answer. */
async function ask(registration: ServiceWorkerRegistration, msg: unknown, extra: Transferable[] = [], timeoutMs = 60_000): Promise<AnyWorkerReply> {
  const worker = registration.active ?? (await navigator.serviceWorker.ready).active;
  if (!worker) throw new Error('no active worker');
  return new Promise((resolve, reject) => {
    const ch = new MessageChannel();
    const timer = setTimeout(() => {
      ch.port1.close();
      reject(new Error('the worker did not answer'));
    }, timeoutMs);
    ch.port1.onmessage = (e: MessageEvent<AnyWorkerReply>) => {
      clearTimeout(timer);
      ch.port1.close();
      resolve(e.data);
    };
    worker.postMessage(msg, [ch.port2, ...extra]);
  });
}

/** Become the transport host when elected; `onChange` is called whenever the role or the peers change. */
export function startTransportHost(registration: ServiceWorkerRegistration, onChange: () => void = () => {}): TransportHostState {
  let node: P2PNode | undefined;
  const state: TransportHostState = {
    role: 'follower',
    peers: () => node?.peers() ?? [],
    rendezvousConnected: () => node?.rendezvousConnected() ?? false,
  };
  const locks = navigator.locks;
  if (!locks) {
    state.role = 'failed';
    state.error = 'Web Locks are not available';
    return state;
  }

  async function attach(n: P2PNode): Promise<void> {
    const ch = new MessageChannel();
    const port = ch.port1;
    port.onmessage = async (e: MessageEvent<HostRpcCall>) => {
      const call = e.data;
      let reply: HostRpcReply;
      const transfer: Transferable[] = [];
      try {
        if (call.op === 'peers') reply = { id: call.id, ok: true, peers: n.peers() };
        else {
          const w = call.request;
          const init: RequestInit = { method: w.method, headers: w.headers, body: w.body };
          if (w.timeoutMs !== undefined) init.signal = AbortSignal.timeout(w.timeoutMs);
          const response = await toWireResponse(await n.request(call.destination, new Request(w.url, init)));
          if (response.body) transfer.push(response.body);
          reply = { id: call.id, ok: true, response };
        }
      } catch (err) {
        reply = { id: call.id, ok: false, error: err instanceof Error ? err.message : String(err) };
      }
      port.postMessage(reply, transfer);
    };
    port.start();
    currentPort?.close();
    currentPort = port;
    const r = await ask(registration, { type: 'matrix-p2p/transport-host', peers: n.peers().map((p) => p.serverName) }, [ch.port2]);
    if (!r.ok) throw new Error(r.error);
  }
  let currentPort: MessagePort | undefined;

  async function run(): Promise<void> {
    const { createP2PNode, findRendezvous } = await import('@matrix-p2p/transport-libp2p');
    const seedReply = await ask(registration, { type: 'matrix-p2p/node-seed' });
    if (!seedReply.ok) throw new Error(seedReply.error);
    if (!('seed' in seedReply)) throw new Error('the worker sent no seed');
    const rendezvousAddrs = await findRendezvous();
    const n = await createP2PNode({ seed: fromBase64(seedReply.seed), rendezvousAddrs, announceIntervalMs: 2_000 });
    node = n;
    state.serverName = n.serverName;
    // Inbound: every request a peer sends goes to the worker, posted to the active worker (wakes it).
    n.onRequest(async (request, peer) => {
      const wire = await toWireRequest(request);
      const r = await ask(registration, { type: 'matrix-p2p/inbound', peer, request: wire }, wire.body ? [wire.body] : []);
      if (!r.ok) return new Response(JSON.stringify({ errcode: 'M_UNKNOWN', error: r.error }), { status: 502, headers: { 'content-type': 'application/json' } });
      if (!('response' in r)) throw new Error('the worker sent no response');
      return fromWireResponse(r.response);
    });
    const tell = (e: HostEvent) => currentPort?.postMessage(e);
    n.on('peer', (p) => {
      tell({ event: 'peer', serverName: p.serverName });
      onChange();
    });
    n.on('peer-updated', (p) => {
      tell({ event: 'peer', serverName: p.serverName });
      onChange();
    });
    n.on('peer-gone', () => onChange());
    n.on('rendezvous', () => onChange());
    await n.start();
    await attach(n);
    // A restarted worker lost our port: it asks, and we attach again.
    navigator.serviceWorker.addEventListener('message', (e: MessageEvent<{ type?: string }>) => {
      if (e.data?.type === 'matrix-p2p/need-host') void attach(n).catch(() => {});
    });
    navigator.serviceWorker.addEventListener('controllerchange', () => void attach(n).catch(() => {}));
    state.role = 'host';
    document.documentElement.dataset.transport = 'host';
    onChange();
  }

  // Held until this tab goes away (the browser then grants the lock to the next tab waiting for it). If the
  // node cannot start (no rendezvous yet, say), the lock is given back after a while and the election is rerun.
  const elect = (): void => {
    void locks
      .request(LOCK, async () => {
        try {
          await run();
        } catch (e) {
          state.role = 'failed';
          state.error = e instanceof Error ? e.message : String(e);
          document.documentElement.dataset.transport = 'failed';
          onChange();
          await node?.stop().catch(() => {});
          node = undefined;
          await new Promise((r) => setTimeout(r, 10_000));
          state.role = 'follower';
          return;
        }
        await new Promise<void>(() => {});
      })
      .then(elect, () => {});
  };
  elect();
  return state;
}
