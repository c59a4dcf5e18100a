/**
 * The matrix-p2p libp2p node: one per origin, in the page that hosts the transport (browsers), or in Node
 * (headless peers; WebRTC optional there).
 *
 *   websockets ──▶ rendezvous (circuit relay v2 + gossipsub)       listen: /p2p-circuit, /webrtc
 *   circuit relay ──▶ other nodes, until WebRTC is up               noise, yamux, identify
 *   WebRTC (/p2p-circuit/webrtc, signalled over the relay) ──▶ direct data channels
 *   gossipsub + pubsub-peer-discovery: nodes announce themselves; each pair dials from one side only
 *   gossipsub broadcast topic: room-directory announcements (`broadcast`, the 'broadcast' event)
 *   /matrix-p2p/http/1: HTTP over streams kept alive between requests (src/http/)
 *
 * The API is plain data and promises (strings, arrays of plain objects), so it can be exposed over a
 * MessageChannel with comlink; Request/Response cross that boundary through src/bridge.ts.
 */
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { Connection, Libp2p, PeerId, PeerInfo, Stream } from '@libp2p/interface';
import { noise } from '@libp2p/noise';
import { peerIdFromString } from '@libp2p/peer-id';
import { pubsubPeerDiscovery } from '@libp2p/pubsub-peer-discovery';
import { webRTC } from '@libp2p/webrtc';
import { webSockets } from '@libp2p/websockets';
import { yamux } from '@libp2p/yamux';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { broadcastValidator, DIRECTORY_TOPIC, DISCOVERY_TOPIC, GOSSIPSUB_OPTIONS, HTTP_PROTOCOL, IDEMPOTENT } from './constants.ts';
import { createGater } from './gater.ts';
import { sendRequest } from './http/client.ts';
import { isRemotePathAllowed } from './http/policy.ts';
import { serveStream, type RequestHandler } from './http/server.ts';
import { DEFAULT_LIMITS, TimeoutError, WireError, type HttpLimits } from './http/wire.ts';
import { identityFromSeed, peerIdFromServerName, serverNameFromPeerId } from './identity.ts';
import { installShims } from './shims.ts';

/** How a peer is reached right now. `webrtc`: a direct data channel; `relay`: through the rendezvous;
 *  `direct`: another non-relayed transport (e.g. websockets between Node peers). */
export type ConnectionKind = 'webrtc' | 'relay' | 'direct';

export interface PeerStatus {
  serverName: string;
  peerId: string;
  /** True when traffic does not go through the relay. */
  direct: boolean;
  kind: ConnectionKind;
  /** The remote multiaddr of the connection requests use. */
  remoteAddr: string;
  /** When the peer became reachable (ms since the epoch). */
  since: number;
}

export interface DialPolicy {
  /** A dial attempt (to the rendezvous, or a relayed one) is abandoned after this long, ms. */
  timeoutMs: number;
  /** A WebRTC dial is abandoned after this long, ms (they take 0.2–2 s; a stuck one is retried sooner). */
  webrtcTimeoutMs: number;
  /** First retry delay, ms; doubled per failure (with jitter) up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** The peer with the larger server name waits this long for the smaller one to dial before dialling itself, ms. */
  fallbackAfterMs: number;
  /** After this many failed WebRTC attempts, also open a relayed connection so requests flow meanwhile. */
  relayAfterFailures: number;
  /** A peer neither connected nor announced for this long is forgotten (no more dials), ms. */
  forgetAfterMs: number;
  /** An unreachable peer that announces itself again after this long a silence is dialled at once, its backoff
   *  reset (it went away and came back), ms. Default: three of our announce intervals. */
  reappearAfterMs?: number;
  /** Opening a stream for a request must succeed within this long, else the connection is dropped and the
   *  request retried on another (nothing was sent yet), ms. */
  streamOpenTimeoutMs: number;
  /** Every connection is pinged this often, and closed when a ping gets no answer within as long (or the
   *  adaptive timeout, if longer): a peer that vanished without closing its links (a browser closed) is seen
   *  gone in seconds, not the ~15 s of libp2p's defaults, during which requests to it hang on a dead link, ms. */
  pingIntervalMs: number;
}

export const DEFAULT_DIAL_POLICY: DialPolicy = {
  timeoutMs: 10_000,
  webrtcTimeoutMs: 6_000,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  fallbackAfterMs: 8_000,
  relayAfterFailures: 2,
  forgetAfterMs: 60_000,
  streamOpenTimeoutMs: 5_000,
  pingIntervalMs: 3_000,
};

export interface P2PNodeOptions {
  /** The homeserver's ed25519 seed (32 bytes): the node's PeerId and server name derive from it. */
  seed: Uint8Array;
  /** Multiaddrs of rendezvous nodes, each ending in /p2p/<peerId> (see `findRendezvous`). */
  rendezvousAddrs: string[];
  /** Broadcast topic (default DIRECTORY_TOPIC: the rendezvous must subscribe to the same). */
  broadcastTopic?: string;
  /** Discovery topic (default DISCOVERY_TOPIC: the rendezvous must subscribe to the same). */
  topic?: string;
  /** How often the node announces itself, ms (default 5000; also at once whenever its addresses change). */
  announceIntervalMs?: number;
  /** ICE servers for WebRTC (default none: host candidates only). */
  iceServers?: RTCIceServer[];
  /** Use WebRTC (default true). Node peers without a WebRTC stack set false and stay on relayed/websocket links. */
  webrtc?: boolean;
  /** Extra addresses to listen on (Node peers: e.g. '/ip4/127.0.0.1/tcp/0/ws'). */
  listen?: string[];
  limits?: Partial<HttpLimits>;
  dial?: Partial<DialPolicy>;
  /** Paths remote peers may reach (default: federation, key and media). */
  isPathAllowed?: (pathname: string) => boolean;
  /** Dial private and loopback addresses other than the rendezvous (headless Node peers on a LAN, tests). */
  allowPrivateAddrs?: boolean;
  /** Diagnostics (default: none). */
  log?: (message: string, detail?: unknown) => void;
}

export interface P2PNodeEvents {
  /** A peer became reachable. */
  peer: PeerStatus;
  /** How a reachable peer is reached changed (e.g. relay → webrtc). */
  'peer-updated': PeerStatus;
  /** A peer is no longer reachable (all connections closed). */
  'peer-gone': { serverName: string; peerId: string };
  /** Connected to, or cut off from, every rendezvous. */
  rendezvous: { connected: boolean };
  /** A message on the broadcast topic (`from`: the PeerId that signed it for gossipsub, possibly relayed by
   *  others; the message itself must carry whatever authentication the application needs). */
  broadcast: { message: Uint8Array; from: string };
}

export interface DialStats {
  /** WebRTC dials that succeeded, and their durations in ms (dial start → connection open). */
  webrtcDialsMs: number[];
  webrtcDialFailures: number;
  relayDials: number;
}

export interface P2PNode {
  readonly peerId: string;
  readonly serverName: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Send a request to a server (only the path and query of its URL are used). Rejects when unreachable.
   *  `opts.body`: the request body as bytes, when the caller has them (then `request.body` is not read). */
  request(serverName: string, request: Request, opts?: { body?: Uint8Array | null }): Promise<Response>;
  /** Set the handler for inbound requests (one handler; a later call replaces it). Until one is set: 503. */
  onRequest(handler: RequestHandler): void;
  /** Peers reachable now. */
  peers(): PeerStatus[];
  /** Subscribe to an event; returns the unsubscribe function. */
  on<E extends keyof P2PNodeEvents>(event: E, listener: (detail: P2PNodeEvents[E]) => void): () => void;
  /** Connected to at least one rendezvous. */
  rendezvousConnected(): boolean;
  /** Publish `message` to every node on the broadcast topic (gossipsub; no history: late joiners pull). */
  broadcast(message: Uint8Array): Promise<void>;
  /** Dial measurements since start (status panels, benchmarks). */
  stats(): DialStats;
  /** The underlying libp2p node (tests, diagnostics). Undefined before start. */
  readonly libp2p: Libp2p | undefined;
}

/** What we use of gossipsub. */
interface PubSubLike {
  subscribe(topic: string): void;
  topicValidators: Map<string, typeof broadcastValidator>;
  publish(topic: string, data: Uint8Array): Promise<unknown>;
}

interface KnownPeer {
  id: PeerId;
  key: string;
  serverName: string;
  addrs: Multiaddr[];
  lastSeen: number;
  failures: number;
  webrtcFailures: number;
  timer?: ReturnType<typeof setTimeout>;
  dialing: boolean;
}

const WEBRTC = 'webrtc';
const CIRCUIT = 'p2p-circuit';

function names(ma: Multiaddr): string[] {
  return ma.getComponents().map((c) => c.name);
}

/** How a connection reaches its peer. */
export function connectionKind(conn: Pick<Connection, 'remoteAddr'>): ConnectionKind {
  const n = names(conn.remoteAddr);
  if (n.includes(WEBRTC)) return 'webrtc';
  if (n.includes(CIRCUIT)) return 'relay';
  return 'direct';
}

const RANK: Record<ConnectionKind, number> = { webrtc: 0, direct: 1, relay: 2 };

/** The connection requests should use: open, not relayed if possible, the newest of a kind (an older one may be
 *  a WebRTC link the other side already gave up on). */
function bestConnection(conns: Connection[]): Connection | undefined {
  return conns
    .filter((c) => c.status === 'open')
    .sort((a, b) => RANK[connectionKind(a)] - RANK[connectionKind(b)] || (b.timeline?.open ?? 0) - (a.timeline?.open ?? 0))[0];
}

/** libp2p sometimes rejects with an event (a stream's 'close') rather than an Error. */
function toError(e: unknown): Error {
  if (e instanceof Error) return e;
  const inner = (e as { error?: unknown } | null)?.error;
  if (inner instanceof Error) return inner;
  return new Error(String(e));
}

export async function createP2PNode(opts: P2PNodeOptions): Promise<P2PNode> {
  await installShims();
  const { privateKey, peerId, serverName } = await identityFromSeed(opts.seed);
  const limits: HttpLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const policy: DialPolicy = { ...DEFAULT_DIAL_POLICY, ...opts.dial };
  const topic = opts.topic ?? DISCOVERY_TOPIC;
  const broadcastTopic = opts.broadcastTopic ?? DIRECTORY_TOPIC;
  const log = opts.log ?? (() => {});
  const useWebRTC = opts.webrtc ?? true;
  const reappearAfterMs = policy.reappearAfterMs ?? 3 * (opts.announceIntervalMs ?? 5_000);
  const rendezvousAddrs = opts.rendezvousAddrs.map((a) => multiaddr(a));
  const rendezvousIds = new Set<string>();
  for (const ma of rendezvousAddrs) {
    const id = ma.getComponents().findLast((c) => c.name === 'p2p')?.value;
    if (!id) throw new TypeError(`rendezvous address without /p2p/<peerId>: ${ma.toString()}`);
    rendezvousIds.add(id);
  }

  let node: Libp2p | undefined;
  let handler: RequestHandler | undefined;
  let stopped = false;
  let rendezvousUp = false;
  let rendezvousTimer: ReturnType<typeof setTimeout> | undefined;
  let rendezvousFailures = 0;
  const known = new Map<string, KnownPeer>();
  const reachable = new Map<string, PeerStatus>();
  const listeners = new Map<keyof P2PNodeEvents, Set<(d: never) => void>>();
  const stats: DialStats = { webrtcDialsMs: [], webrtcDialFailures: 0, relayDials: 0 };
  const detachers: (() => void)[] = [];

  function emit<E extends keyof P2PNodeEvents>(event: E, detail: P2PNodeEvents[E]): void {
    for (const l of listeners.get(event) ?? []) {
      try {
        (l as (d: P2PNodeEvents[E]) => void)(detail);
      } catch (e) {
        log(`listener for ${event} threw`, e);
      }
    }
  }

  const isRendezvous = (id: PeerId | string) => rendezvousIds.has(id.toString());
  /** Matrix-p2p peers: ed25519 keys (a server name), not a rendezvous, not ourselves. */
  const peerServerName = (id: PeerId): string | undefined =>
    isRendezvous(id) || id.equals(peerId) ? undefined : serverNameFromPeerId(id);

  // --- reachability -------------------------------------------------------------------------------------

  function refresh(id: PeerId): void {
    if (!node) return;
    const name = peerServerName(id);
    if (!name) return;
    const key = id.toString();
    const best = bestConnection(node.getConnections(id));
    const before = reachable.get(key);
    if (!best) {
      if (before) {
        reachable.delete(key);
        emit('peer-gone', { serverName: name, peerId: key });
      }
      return;
    }
    const kind = connectionKind(best);
    const status: PeerStatus = { serverName: name, peerId: key, direct: kind !== 'relay', kind, remoteAddr: best.remoteAddr.toString(), since: before?.since ?? Date.now() };
    reachable.set(key, status);
    if (!before) emit('peer', status);
    else if (before.kind !== status.kind || before.remoteAddr !== status.remoteAddr) emit('peer-updated', status);
  }

  // --- rendezvous ---------------------------------------------------------------------------------------

  function rendezvousConnected(): boolean {
    return !!node && [...rendezvousIds].some((id) => node!.getConnections(peerIdFromString(id)).some((c) => c.status === 'open'));
  }

  function updateRendezvous(): void {
    const up = rendezvousConnected();
    if (up !== rendezvousUp) {
      rendezvousUp = up;
      emit('rendezvous', { connected: up });
    }
    if (!up) scheduleRendezvous();
  }

  /** Keep a connection to the rendezvous: dial now, and again with backoff while it is down. */
  function scheduleRendezvous(delay?: number): void {
    if (stopped || rendezvousTimer) return;
    const d = delay ?? Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(rendezvousFailures, 16));
    rendezvousTimer = setTimeout(async () => {
      rendezvousTimer = undefined;
      if (stopped || !node || rendezvousConnected()) return;
      const results = await Promise.allSettled(rendezvousAddrs.map((ma) => node!.dial(ma, { signal: AbortSignal.timeout(policy.timeoutMs) })));
      if (results.some((r) => r.status === 'fulfilled')) {
        rendezvousFailures = 0;
        log('connected to the rendezvous');
      } else {
        rendezvousFailures++;
        log('cannot reach the rendezvous', (results[0] as PromiseRejectedResult | undefined)?.reason);
      }
      updateRendezvous();
    }, d);
  }

  // --- dialling peers -----------------------------------------------------------------------------------

  /** WebRTC addresses of a peer: announced ones (through any relay) and ones through our rendezvous. */
  function webrtcAddrs(p: KnownPeer): Multiaddr[] {
    const out = new Map<string, Multiaddr>();
    for (const a of p.addrs) if (names(a).includes(WEBRTC) && names(a).includes(CIRCUIT)) out.set(a.toString(), a);
    for (const r of rendezvousAddrs) {
      const a = multiaddr(`${r.toString()}/p2p-circuit/webrtc/p2p/${p.key}`);
      out.set(a.toString(), a);
    }
    return [...out.values()];
  }

  function relayAddrs(p: KnownPeer): Multiaddr[] {
    return rendezvousAddrs.map((r) => multiaddr(`${r.toString()}/p2p-circuit/p2p/${p.key}`));
  }

  const weDial = (p: KnownPeer) => serverName < p.serverName;

  function schedule(p: KnownPeer, delay: number): void {
    if (stopped || p.timer || p.dialing) return;
    p.timer = setTimeout(() => {
      p.timer = undefined;
      void attempt(p);
    }, delay);
  }

  function backoff(p: KnownPeer): number {
    const base = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(p.failures - 1, 16));
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  /** Whether `p` needs dialling: not reached over WebRTC (or another direct link) yet. */
  function needsDial(p: KnownPeer): boolean {
    const s = reachable.get(p.key);
    return !s || (useWebRTC && s.kind === 'relay');
  }

  async function attempt(p: KnownPeer): Promise<void> {
    if (stopped || !node || p.dialing) return;
    if (!needsDial(p)) {
      p.failures = 0;
      return;
    }
    if (!reachable.has(p.key) && Date.now() - p.lastSeen > policy.forgetAfterMs) {
      known.delete(p.key);
      log(`forgetting ${p.serverName.slice(0, 8)}: not announced for ${policy.forgetAfterMs} ms`);
      return;
    }
    if (!rendezvousConnected() && !reachable.has(p.key)) {
      // Nothing to signal through: try again once the rendezvous is back.
      p.failures++;
      schedule(p, backoff(p));
      return;
    }
    p.dialing = true;
    try {
      if (useWebRTC) {
        const t0 = performance.now();
        try {
          const conn = await node.dial(webrtcAddrs(p), { signal: AbortSignal.timeout(policy.webrtcTimeoutMs) });
          stats.webrtcDialsMs.push(performance.now() - t0);
          if (stats.webrtcDialsMs.length > 100) stats.webrtcDialsMs.shift();
          log(`dialled ${p.serverName.slice(0, 8)} (${connectionKind(conn)}) in ${Math.round(performance.now() - t0)} ms`);
          p.failures = 0;
          p.webrtcFailures = 0;
          return;
        } catch (e) {
          stats.webrtcDialFailures++;
          p.webrtcFailures++;
          log(`WebRTC dial to ${p.serverName.slice(0, 8)} failed`, e);
        }
      }
      if (!reachable.has(p.key) && (!useWebRTC || p.webrtcFailures >= policy.relayAfterFailures)) {
        try {
          await node.dial(relayAddrs(p), { signal: AbortSignal.timeout(policy.timeoutMs) });
          stats.relayDials++;
          log(`reached ${p.serverName.slice(0, 8)} through the relay`);
        } catch (e) {
          log(`relayed dial to ${p.serverName.slice(0, 8)} failed`, e);
        }
      }
      p.failures++;
    } finally {
      p.dialing = false;
      if (node) refresh(p.id);
    }
    if (needsDial(p)) schedule(p, backoff(p));
  }

  function onDiscovered(info: PeerInfo): void {
    const name = peerServerName(info.id);
    if (!name) return;
    const key = info.id.toString();
    let p = known.get(key);
    if (!p) {
      p = { id: info.id, key, serverName: name, addrs: [], lastSeen: 0, failures: 0, webrtcFailures: 0, dialing: false };
      known.set(key, p);
      log(`discovered ${name.slice(0, 8)}`);
    }
    const silentMs = Date.now() - p.lastSeen;
    p.lastSeen = Date.now();
    if (info.multiaddrs.length > 0) p.addrs = info.multiaddrs.filter((a) => names(a).includes(CIRCUIT));
    // An unreachable peer announcing itself after a silence came back (a browser reopened): the backoff its
    // failed dials built up no longer applies. Dial as for a new peer, not when the backoff timer fires (up
    // to `maxDelayMs`, while the peer waits `fallbackAfterMs` for us).
    if (p.failures > 0 && !p.dialing && !reachable.has(key) && silentMs > reappearAfterMs) {
      clearTimeout(p.timer);
      p.timer = undefined;
      p.failures = 0;
      p.webrtcFailures = 0;
      log(`${name.slice(0, 8)} is back after ${Math.round(silentMs / 1000)} s`);
    }
    if (needsDial(p) && !p.timer && !p.dialing) schedule(p, weDial(p) ? 0 : policy.fallbackAfterMs);
  }

  // --- kept-alive HTTP streams (src/http/wire.ts) ------------------------------------------------------

  /** Idle HTTP streams per connection, ready for the next request. */
  const idle = new Map<Connection, { stream: Stream; timer: ReturnType<typeof setTimeout> }[]>();
  const MAX_IDLE_PER_CONNECTION = 8;
  /** Requesters give up idle streams well before responders close them, so a reuse rarely meets a close. */
  const idleMs = Math.max(100, Math.floor(limits.keepAliveIdleMs / 2));

  const usable = (st: Stream) =>
    st.status === 'open' && (st as { remoteWriteStatus?: string }).remoteWriteStatus !== 'closed' && (st as { writeStatus?: string }).writeStatus !== 'closed';

  function takeIdle(conn: Connection): Stream | undefined {
    const list = idle.get(conn);
    while (list && list.length > 0) {
      const e = list.pop()!;
      clearTimeout(e.timer);
      if (usable(e.stream) && conn.status === 'open') return e.stream;
      if (e.stream.status === 'open') e.stream.abort(new Error('unusable kept-alive stream'));
    }
    return undefined;
  }

  function putIdle(conn: Connection, st: Stream): void {
    if (stopped || conn.status !== 'open' || !usable(st)) return;
    let list = idle.get(conn);
    if (!list) idle.set(conn, (list = []));
    if (list.length >= MAX_IDLE_PER_CONNECTION) {
      void st.close().catch(() => {});
      return;
    }
    const entry = {
      stream: st,
      timer: setTimeout(() => {
        const l = idle.get(conn);
        const i = l?.indexOf(entry) ?? -1;
        if (i >= 0) l!.splice(i, 1);
        void st.close().catch(() => {});
      }, idleMs),
    };
    list.push(entry);
  }

  function dropIdle(conn: Connection): void {
    for (const e of idle.get(conn) ?? []) clearTimeout(e.timer);
    idle.delete(conn);
  }

  // --- the node -----------------------------------------------------------------------------------------

  const api: P2PNode = {
    peerId: peerId.toString(),
    serverName,
    get libp2p() {
      return node;
    },

    async start() {
      if (node) return;
      stopped = false;
      const listen = ['/p2p-circuit', ...(useWebRTC ? ['/webrtc'] : []), ...(opts.listen ?? [])];
      node = await createLibp2p({
        privateKey,
        start: false,
        addresses: { listen },
        transports: [
          webSockets(),
          circuitRelayTransport({ reservationCompletionTimeout: 10_000 }),
          ...(useWebRTC ? [webRTC({ rtcConfiguration: { iceServers: opts.iceServers ?? [] } })] : []),
        ],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        connectionGater: createGater(rendezvousAddrs, { allowPrivate: opts.allowPrivateAddrs ?? false }),
        // Relayed connections all arrive from the rendezvous' address: libp2p's default of 5 a second per host
        // would refuse peers that dial us at the same moment.
        connectionManager: { maxConnections: 128, inboundConnectionThreshold: 100 },
        connectionMonitor: { pingInterval: policy.pingIntervalMs, pingTimeout: { minTimeout: policy.pingIntervalMs } },
        services: {
          identify: identify(),
          pubsub: gossipsub({ ...GOSSIPSUB_OPTIONS }),
          discovery: pubsubPeerDiscovery({ topics: [topic], interval: opts.announceIntervalMs ?? 5_000 }),
        },
      });
      const n = node;

      await n.handle(
        HTTP_PROTOCOL,
        (stream, connection) => {
          const remote = serverNameFromPeerId(connection.remotePeer);
          if (!remote || isRendezvous(connection.remotePeer)) {
            stream.abort(new Error('not a matrix-p2p peer'));
            return;
          }
          const h: RequestHandler =
            handler ??
            (async () => new Response(JSON.stringify({ errcode: 'M_UNKNOWN', error: 'This node is not serving yet' }), { status: 503, headers: { 'content-type': 'application/json' } }));
          void serveStream(stream, remote, h, { limits, isPathAllowed: opts.isPathAllowed ?? isRemotePathAllowed, log });
        },
        // Requests may run over a relayed connection (the fallback while WebRTC is not up).
        { runOnLimitedConnection: true, maxInboundStreams: 256, maxOutboundStreams: 256 },
      );

      const on = <K extends string>(target: EventTarget, type: K, fn: (evt: CustomEvent) => void) => {
        const l = (evt: Event) => fn(evt as CustomEvent);
        target.addEventListener(type, l);
        detachers.push(() => target.removeEventListener(type, l));
      };
      // Every announcement (libp2p's own 'peer:discovery' fires only for peers new to its peer store, so it
      // cannot tell that a peer is still around).
      on((n.services as Record<string, unknown>).discovery as EventTarget, 'peer', (evt) => onDiscovered(evt.detail as PeerInfo));
      on(n as unknown as EventTarget, 'connection:open', (evt) => {
        const conn = evt.detail as Connection;
        if (isRendezvous(conn.remotePeer)) updateRendezvous();
        refresh(conn.remotePeer);
        // An inbound relayed connection from a peer we did not know yet: it exists, keep track of it.
        const p = known.get(conn.remotePeer.toString());
        if (p) p.lastSeen = Date.now();
        else if (peerServerName(conn.remotePeer)) onDiscovered({ id: conn.remotePeer, multiaddrs: [] });
      });
      on(n as unknown as EventTarget, 'connection:close', (evt) => {
        const conn = evt.detail as Connection;
        dropIdle(conn);
        if (isRendezvous(conn.remotePeer)) updateRendezvous();
        refresh(conn.remotePeer);
        const p = known.get(conn.remotePeer.toString());
        if (p && needsDial(p)) schedule(p, weDial(p) ? policy.baseDelayMs : policy.fallbackAfterMs);
      });
      // Announce at once when our addresses change (a relay reservation, a new WebRTC address), not only on
      // the next interval: discovery then takes one gossip hop, not up to `announceIntervalMs`.
      on(n as unknown as EventTarget, 'self:peer:update', () => {
        const d = (n.services as Record<string, unknown>).discovery as { _broadcast?: () => void } | undefined;
        if (n.status === 'started') {
          try {
            d?._broadcast?.();
          } catch (e) {
            log('announce failed', e);
          }
        }
      });

      // The broadcast topic (room-directory announcements): subscribe, and pass each message on.
      const pubsub = (n.services as Record<string, unknown>).pubsub as PubSubLike;
      pubsub.topicValidators.set(broadcastTopic, broadcastValidator);
      on(pubsub as unknown as EventTarget, 'message', (evt) => {
        const m = evt.detail as { topic: string; data: Uint8Array; from?: PeerId };
        if (m.topic !== broadcastTopic || (m.from && m.from.equals(peerId))) return;
        emit('broadcast', { message: m.data, from: m.from?.toString() ?? '' });
      });

      await n.start();
      pubsub.subscribe(broadcastTopic);
      scheduleRendezvous(0);
    },

    async stop() {
      stopped = true;
      clearTimeout(rendezvousTimer);
      rendezvousTimer = undefined;
      for (const p of known.values()) clearTimeout(p.timer);
      known.clear();
      for (const d of detachers.splice(0)) d();
      for (const conn of [...idle.keys()]) dropIdle(conn);
      const n = node;
      node = undefined;
      reachable.clear();
      rendezvousUp = false;
      await n?.stop();
    },

    async request(destination, request, opts = {}) {
      if (!node) throw new Error('the p2p node is not started');
      const id = peerIdFromServerName(destination);
      if (id.equals(peerId)) throw new Error('refusing to send a request to ourselves');
      const n = node;
      const within = (ms: number) => (request.signal ? AbortSignal.any([request.signal, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms));
      const tried = new Set<Connection>();
      // The body, read once: it goes out in one send (federation bodies are small JSON), and can be sent again
      // if a kept-alive stream turns out to be closed.
      let body: Uint8Array | null = null;
      if (request.method === 'GET' || request.method === 'HEAD') body = null;
      else if (opts.body !== undefined) {
        body = opts.body;
        if (body && body.byteLength > limits.maxRequestBodyBytes) throw new WireError(`body exceeds ${limits.maxRequestBodyBytes} bytes`);
      } else if (request.body !== null) {
        const declared = Number(request.headers.get('content-length') ?? NaN);
        if (declared > limits.maxRequestBodyBytes) throw new WireError(`body exceeds ${limits.maxRequestBodyBytes} bytes`);
        body = new Uint8Array(await request.arrayBuffer());
        if (body.byteLength > limits.maxRequestBodyBytes) throw new WireError(`body exceeds ${limits.maxRequestBodyBytes} bytes`);
      }
      for (let attempt = 1; ; attempt++) {
        let conn = bestConnection(n.getConnections(id).filter((c) => !tried.has(c)));
        if (!conn) {
          // Not connected: go through the rendezvous (the dialer upgrades to WebRTC afterwards).
          const p = known.get(id.toString()) ?? { id, key: id.toString(), serverName: destination, addrs: [], lastSeen: Date.now(), failures: 0, webrtcFailures: 0, dialing: false };
          if (!known.has(p.key)) known.set(p.key, p);
          try {
            conn = await n.dial(relayAddrs(p), { signal: within(policy.timeoutMs), force: tried.size > 0 });
          } catch (e) {
            throw toError(e);
          }
          if (needsDial(p)) schedule(p, weDial(p) ? 0 : policy.fallbackAfterMs);
        }
        // A kept-alive stream of this connection if there is one: no data channel to open, nothing to negotiate.
        // (Not for a request that must not be sent twice: a kept-alive stream may turn out closed under it.)
        let stream: Stream | undefined = IDEMPOTENT.has(request.method) ? takeIdle(conn) : undefined;
        const reused = stream !== undefined;
        if (!stream) {
          tried.add(conn);
          try {
            stream = await conn.newStream(HTTP_PROTOCOL, { runOnLimitedConnection: true, signal: within(policy.streamOpenTimeoutMs) });
          } catch (e) {
            const err = toError(e);
            if (request.signal?.aborted || attempt >= 3) throw err;
            // A link that cannot open a stream is dead (e.g. a WebRTC connection the other side gave up on while
            // connecting). Nothing of the request was sent: drop the link and try the next one.
            log(`cannot open a stream to ${destination.slice(0, 8)} over ${connectionKind(conn)}; dropping that connection`, err);
            if (conn.status === 'open') conn.abort(err);
            continue;
          }
          tried.delete(conn);
        }
        const s = stream;
        const c = conn;
        try {
          return await sendRequest(s, request, limits, { body, keepAlive: { done: (ok) => (ok ? putIdle(c, s) : undefined) } });
        } catch (e) {
          // A reused stream (idempotent requests only) may have been closed by the peer (idle) just as we sent:
          // send again on a fresh one.
          if (!reused || request.signal?.aborted || e instanceof TimeoutError || attempt >= 4) throw e;
          log(`a kept-alive stream to ${destination.slice(0, 8)} failed before the answer; sending again on a fresh one`, e);
        }
      }
    },

    onRequest(h) {
      handler = h;
    },

    peers() {
      return [...reachable.values()].map((s) => ({ ...s }));
    },

    on(event, listener) {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener as (d: never) => void);
      return () => set.delete(listener as (d: never) => void);
    },

    rendezvousConnected,

    async broadcast(message) {
      if (!node) throw new Error('the p2p node is not started');
      const pubsub = (node.services as Record<string, unknown>).pubsub as PubSubLike;
      await pubsub.publish(broadcastTopic, message);
    },

    stats() {
      return { webrtcDialsMs: [...stats.webrtcDialsMs], webrtcDialFailures: stats.webrtcDialFailures, relayDials: stats.relayDials };
    },
  };
  return api;
}
