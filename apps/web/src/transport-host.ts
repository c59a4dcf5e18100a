/**
 * The transport host: one tab per origin runs the libp2p node for the homeserver in the Service Worker
 * (workers have no RTCPeerConnection). Elected with Web Locks: whichever tab holds 'matrix-p2p-transport'
 * runs the node; when it closes, the lock passes to another tab, which starts the node again.
 *
 *   page → worker  `matrix-p2p/node-seed`        the node's identity is the homeserver's signing key
 *   page → worker  `matrix-p2p/transport-host`   a port serving the node to the worker with comlink (its
 *                                                outbound `fetch`, `peers`, and peer-reachable callbacks)
 *   page → worker  inbound port (comlink)         each request a peer sends, while the worker that took the
 *                                                port lives (quick: no trip through the browser process)
 *   page → worker  `matrix-p2p/inbound`          otherwise, posted to the registration's active worker
 *                                                (a message wakes a stopped worker)
 *   page → worker  `matrix-p2p/broadcast`        each room-directory announcement heard on the gossip topic
 *   worker → page  `matrix-p2p/need-host`        a restarted worker lost the port: attach again
 */
import type { P2PNode, PeerStatus } from '@matrix-p2p/transport-libp2p';
import { IDEMPOTENT } from '@matrix-p2p/transport-libp2p/constants';
import { deserializeResponse, exposeHost, hostApi, InboundPortClosedError, serializeHead, wrapInbound, type InboundLink, type WireRequest, type WireResponse } from '@matrix-p2p/transport-libp2p/bridge';
import { askWorker, type AnyWorkerReply } from '@matrix-p2p/sw-host/client';

const LOCK = 'matrix-p2p-transport';
/** How many recent durations `timings()` keeps per direction. */
const TIMINGS_KEPT = 200;

/** Recent request durations through this tab, ms (diagnostics and benchmarks). */
export interface TransportTimings {
  /** Worker → this tab → peer → back: from the worker's call arriving to its answer leaving. */
  outbound: number[];
  /** Peer → this tab → worker → back: from the request being read to the worker's answer. */
  inbound: number[];
  /** Of which the homeserver's own time (its Server-Timing `hs`), for the same requests. */
  inboundHs: number[];
}

export interface TransportHostState {
  role: 'host' | 'follower' | 'failed';
  serverName?: string;
  error?: string;
  peers(): PeerStatus[];
  rendezvousConnected(): boolean;
  timings(): TransportTimings;
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** The most a peer's answer waits for this tab's own work (see `afterPageWork`), ms. */
const PAGE_FIRST_MAX_MS = 20;

/**
 * Resolves once the tasks already waiting in this tab have run (at most `PAGE_FIRST_MAX_MS`). A message a
 * peer sends and the `/sync` long-poll it wakes are answered by the worker together; both come through this
 * tab: the peer's acknowledgement to be written out over libp2p, and the long-poll's answer to the client.
 * Sending the acknowledgement at background priority puts the message on screen first, about 1 ms sooner
 * (`npm run bench -- transport-libp2p`); the peer, which nobody watches, waits that much longer.
 */
function afterPageWork(): Promise<void> {
  const scheduler = (globalThis as { scheduler?: { postTask?: (cb: () => void, o: { priority: string }) => Promise<void> } }).scheduler;
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, scheduler?.postTask ? PAGE_FIRST_MAX_MS : 0);
    void scheduler?.postTask?.(() => (clearTimeout(timer), resolve()), { priority: 'background' });
  });
}

function keep(list: number[], ms: number): void {
  list.push(ms);
  if (list.length > TIMINGS_KEPT) list.shift();
}

/** Post `msg` to the registration's active worker and wait for its one answer. */
async function ask(registration: ServiceWorkerRegistration, msg: unknown, extra: Transferable[] = [], timeoutMs = 60_000): Promise<AnyWorkerReply> {
  const worker = registration.active ?? (await navigator.serviceWorker.ready).active;
  if (!worker) throw new Error('no active worker');
  return askWorker(worker, msg, extra, timeoutMs);
}

/** Become the transport host when elected; `onChange` is called whenever the role or the peers change. */
export function startTransportHost(registration: ServiceWorkerRegistration, onChange: () => void = () => {}): TransportHostState {
  let node: P2PNode | undefined;
  const timings: TransportTimings = { outbound: [], inbound: [], inboundHs: [] };
  const state: TransportHostState = {
    role: 'follower',
    peers: () => node?.peers() ?? [],
    rendezvousConnected: () => node?.rendezvousConnected() ?? false,
    timings: () => ({ outbound: [...timings.outbound], inbound: [...timings.inbound], inboundHs: [...timings.inboundHs] }),
  };
  const locks = navigator.locks;
  if (!locks) {
    state.role = 'failed';
    state.error = 'Web Locks are not available';
    return state;
  }

  /** Serve the node to the worker over a fresh port with comlink (again whenever the worker restarts). */
  let stopServing: (() => void) | undefined;
  // One attach at a time (a restarted worker's need-host and a controllerchange may come together).
  let attaching: Promise<void> = Promise.resolve();
  function attach(n: P2PNode): Promise<void> {
    const next = attaching.catch(() => {}).then(() => attachNow(n));
    attaching = next;
    return next;
  }
  async function attachNow(n: P2PNode): Promise<void> {
    const ch = new MessageChannel();
    const inboundCh = new MessageChannel();
    stopServing?.();
    inbound?.close();
    inbound = undefined;
    stopServing = exposeHost(hostApi(n), ch.port1, (_dest, ms) => keep(timings.outbound, ms));
    const link = wrapInbound(inboundCh.port1);
    const r = await ask(registration, { type: 'matrix-p2p/transport-host', peers: n.peers().map((p) => p.serverName) }, [ch.port2, inboundCh.port2]);
    if (!r.ok) {
      link.close();
      throw new Error(r.error);
    }
    inbound = link;
  }
  /** The quick path to the worker that took our port (bridge.ts `wrapInbound`), while it lives. */
  let inbound: InboundLink | undefined;

  /** Hand an inbound request to the worker: over its port while it lives (quick), else as a message to the
   *  registration's active worker (a message wakes a stopped worker; a port of an earlier run could not). */
  async function toWorker(wire: WireRequest, peer: string): Promise<WireResponse> {
    const link = inbound;
    if (link?.alive) {
      try {
        // A copy of the body goes (the original stays here in case the request has to be posted after all).
        return await link.handle(wire.body ? { ...wire, body: wire.body.slice(0) } : wire, peer);
      } catch (e) {
        // The worker went away: post the request (which wakes a worker) if taking it twice is harmless.
        if (!(e instanceof InboundPortClosedError) || !IDEMPOTENT.has(wire.method)) throw e;
      }
    }
    const r = await ask(registration, { type: 'matrix-p2p/inbound', peer, request: wire }, wire.body ? [wire.body] : []);
    if (!r.ok) throw new Error(r.error);
    if (!('response' in r)) throw new Error('the worker sent no response');
    return r.response;
  }

  async function run(): Promise<void> {
    const { createP2PNode, findRendezvous } = await import('@matrix-p2p/transport-libp2p');
    const seedReply = await ask(registration, { type: 'matrix-p2p/node-seed' });
    if (!seedReply.ok) throw new Error(seedReply.error);
    if (!('seed' in seedReply)) throw new Error('the worker sent no seed');
    const rendezvousAddrs = await findRendezvous();
    // `?p2p-webrtc=0` in the page's URL: no WebRTC, peers stay on relayed links (benchmarks, relay debugging).
    const webrtc = new URLSearchParams(location.search).get('p2p-webrtc') !== '0';
    const n = await createP2PNode({ seed: fromBase64(seedReply.seed), rendezvousAddrs, announceIntervalMs: 2_000, webrtc });
    node = n;
    state.serverName = n.serverName;
    // Inbound: every request a peer sends goes to the worker (toWorker).
    n.onRequest(async (request, peer, body) => {
      const wire = serializeHead(request, body ? (body.slice().buffer as ArrayBuffer) : null, 30_000);
      const t0 = performance.now();
      let answer: WireResponse;
      try {
        answer = await toWorker(wire, peer);
      } catch (e) {
        return new Response(JSON.stringify({ errcode: 'M_UNKNOWN', error: e instanceof Error ? e.message : String(e) }), { status: 502, headers: { 'content-type': 'application/json' } });
      }
      keep(timings.inbound, performance.now() - t0);
      await afterPageWork();
      const response = deserializeResponse(answer);
      const hs = /(?:^|,)\s*hs;dur=([\d.]+)/.exec(response.headers.get('server-timing') ?? '');
      if (hs) keep(timings.inboundHs, Number(hs[1]));
      return response;
    });
    // Room-directory gossip: to the worker (posted, so a stopped worker wakes for it).
    n.on('broadcast', ({ message }) => {
      const copy = message.slice().buffer as ArrayBuffer;
      void ask(registration, { type: 'matrix-p2p/broadcast', message: copy }, [copy]).catch(() => {});
    });
    n.on('peer', () => onChange());
    n.on('peer-updated', () => onChange());
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
