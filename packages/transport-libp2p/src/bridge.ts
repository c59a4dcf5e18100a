/**
 * Plain-data forms of Request and Response, and the two halves of a transport split across a
 * MessageChannel (comlink): the libp2p node lives in a page (Service Workers have no RTCPeerConnection), the
 * homeserver in the Service Worker.
 *
 *   worker: wrapHost(port)        ── fetch / peers / onPeer / broadcast ──▶  page: exposeHost(hostApi(node), port)
 *   page:   wrapInbound(port)     ── handle(WireRequest, peer) ──────────▶  worker: exposeInbound(handle, port)
 *           (or, when the worker is gone: a message to the registration's active worker, which wakes it)
 *
 * Everything that crosses is structured-cloneable (strings, numbers, arrays, ArrayBuffers); bodies are
 * transferred (`withTransfer`), not copied.
 */
import * as Comlink from 'comlink';
import type { P2PNode, PeerStatus } from './node.ts';

export interface WireRequest {
  method: string;
  /** Absolute URL; transports use only its path and query. */
  url: string;
  headers: [string, string][];
  body: ArrayBuffer | null;
  /** Give up after this many ms (AbortSignals do not cross postMessage). */
  timeoutMs?: number;
}

export interface WireResponse {
  status: number;
  headers: [string, string][];
  body: ArrayBuffer | null;
}

function pairs(headers: Headers): [string, string][] {
  const out: [string, string][] = [];
  headers.forEach((v, k) => out.push([k, v]));
  return out;
}

export async function serializeRequest(request: Request, timeoutMs?: number): Promise<WireRequest> {
  const body = request.method === 'GET' || request.method === 'HEAD' || request.body === null ? null : await request.arrayBuffer();
  return serializeHead(request, body, timeoutMs);
}

/** `request` as plain data, with `body` (its body, already read, or null) instead of reading it. */
export function serializeHead(request: Request, body: ArrayBuffer | null, timeoutMs?: number): WireRequest {
  const wire: WireRequest = { method: request.method, url: request.url, headers: pairs(request.headers), body: body && body.byteLength > 0 ? body : null };
  if (timeoutMs !== undefined) wire.timeoutMs = timeoutMs;
  return wire;
}

export function deserializeRequest(wire: WireRequest, signal?: AbortSignal): Request {
  const init: RequestInit = { method: wire.method, headers: wire.headers, body: wire.body };
  const signals = [signal, wire.timeoutMs !== undefined ? AbortSignal.timeout(wire.timeoutMs) : undefined].filter((s): s is AbortSignal => !!s);
  if (signals.length > 0) init.signal = signals.length === 1 ? signals[0]! : AbortSignal.any(signals);
  return new Request(wire.url, init);
}

export async function serializeResponse(response: Response): Promise<WireResponse> {
  return serializeResponseHead(response, response.body === null ? null : await response.arrayBuffer());
}

/** A response's status and headers with a body already at hand (the response's own body is not read). */
export function serializeResponseHead(response: Response, body: ArrayBuffer | null): WireResponse {
  return { status: response.status, headers: pairs(response.headers), body: body && body.byteLength > 0 ? body : null };
}

export function deserializeResponse(wire: WireResponse): Response {
  const nullBody = wire.status === 204 || wire.status === 205 || wire.status === 304;
  return new Response(nullBody ? null : wire.body, { status: wire.status, headers: wire.headers });
}

/** What the page exposes to the worker (comlink.expose(hostApi(node), port)). Plain data in, plain data out. */
export interface TransportHostApi {
  serverName(): string;
  peerId(): string;
  peers(): PeerStatus[];
  fetch(destination: string, request: WireRequest): Promise<WireResponse>;
  /** Call `listener` with the server name of each peer that becomes reachable, or is reached another way
   *  (relay → WebRTC). Over comlink, pass `Comlink.proxy(listener)`. */
  onPeer(listener: (serverName: string) => void): void;
  /** Publish on the broadcast topic (room-directory announcements). */
  broadcast(message: ArrayBuffer): Promise<void>;
}

export function hostApi(node: Pick<P2PNode, 'serverName' | 'peerId' | 'peers' | 'request' | 'on' | 'broadcast'>): TransportHostApi & { close(): void } {
  const unsubscribe: (() => void)[] = [];
  return {
    serverName: () => node.serverName,
    peerId: () => node.peerId,
    peers: () => node.peers(),
    async fetch(destination, request) {
      // The body is at hand as bytes: hand it over as it is, rather than through a Request body stream.
      const body = request.body ? new Uint8Array(request.body) : null;
      return serializeResponse(await node.request(destination, deserializeRequest({ ...request, body: null }), { body }));
    },
    onPeer(listener) {
      const tell = (p: PeerStatus) => {
        try {
          void Promise.resolve(listener(p.serverName)).catch(() => {});
        } catch {
          /* a listener in a worker that went away */
        }
      };
      unsubscribe.push(node.on('peer', tell), node.on('peer-updated', tell));
    },
    broadcast: (message) => node.broadcast(new Uint8Array(message)),
    /** Drop the listeners (the worker that registered them is gone or replaced). */
    close() {
      for (const u of unsubscribe.splice(0)) u();
    },
  };
}

/** `wire` with its body as a transferable (comlink then moves the bytes instead of copying them). */
export function withTransfer<T extends { body: ArrayBuffer | null }>(wire: T): T {
  return wire.body ? Comlink.transfer(wire, [wire.body]) : wire;
}

/**
 * Page side: serve `api` to a worker over `port` with comlink (response bodies are transferred). Returns the
 * function that stops serving (closes the port and drops the worker's listeners).
 */
export function exposeHost(api: TransportHostApi & { close?(): void }, port: MessagePort, observe?: (destination: string, ms: number, ok: boolean) => void): () => void {
  const served: TransportHostApi = {
    serverName: () => api.serverName(),
    peerId: () => api.peerId(),
    peers: () => api.peers(),
    onPeer: (l) => api.onPeer(l),
    broadcast: (m) => api.broadcast(m),
    async fetch(destination, request) {
      const t0 = performance.now();
      try {
        const r = withTransfer(await api.fetch(destination, request));
        observe?.(destination, performance.now() - t0, true);
        return r;
      } catch (e) {
        observe?.(destination, performance.now() - t0, false);
        throw e;
      }
    },
  };
  Comlink.expose(served, port);
  return () => {
    api.close?.();
    port.close();
  };
}

/** Thrown when the page serving a worker's transport does not answer in time (it may be gone). */
export class HostTimeoutError extends Error {
  override name = 'HostTimeoutError';
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new HostTimeoutError(`the transport host did not answer ${what} within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** A page's TransportHostApi as the worker reaches it over comlink, with timeouts (comlink has none: a page
 *  that closes leaves its calls unanswered). */
export interface RemoteHost {
  fetch(destination: string, request: WireRequest): Promise<WireResponse>;
  peers(timeoutMs?: number): Promise<PeerStatus[]>;
  onPeer(listener: (serverName: string) => void): Promise<void>;
  broadcast(message: Uint8Array): Promise<void>;
  close(): void;
}

/** Worker side: the host served on `port` (see exposeHost). A request may take its own `timeoutMs` plus `graceMs`. */
export function wrapHost(port: MessagePort, opts: { graceMs?: number; defaultTimeoutMs?: number } = {}): RemoteHost {
  const remote = Comlink.wrap<TransportHostApi>(port);
  const grace = opts.graceMs ?? 5_000;
  return {
    fetch: (destination, request) => within(remote.fetch(destination, withTransfer(request)), (request.timeoutMs ?? opts.defaultTimeoutMs ?? 30_000) + grace, 'a request'),
    peers: (timeoutMs = 2_000) => within(remote.peers(), timeoutMs, 'peers'),
    onPeer: (listener) => within(remote.onPeer(Comlink.proxy(listener)), 10_000, 'onPeer'),
    broadcast: (message) => {
      const copy = message.slice().buffer as ArrayBuffer;
      return within(remote.broadcast(Comlink.transfer(copy, [copy])), 10_000, 'a broadcast');
    },
    close() {
      remote[Comlink.releaseProxy]();
      port.close();
    },
  };
}

/** Page side of the inbound direction: every request a peer sends is forwarded (e.g. to the worker). */
export function serveThrough(node: Pick<P2PNode, 'onRequest'>, forward: (request: WireRequest, peer: string) => Promise<WireResponse>): void {
  node.onRequest(async (request, peer) => deserializeResponse(await forward(await serializeRequest(request), peer)));
}

/** What the worker serves to the transport host for inbound requests (the quick path: see `wrapInbound`). */
export interface InboundApi {
  handle(request: WireRequest, peer: string): Promise<WireResponse>;
}

/** Worker side: answer the host's inbound requests over `port` with comlink (response bodies transferred). */
export function exposeInbound(handle: InboundApi['handle'], port: MessagePort): void {
  Comlink.expose({ handle: async (request: WireRequest, peer: string) => withTransfer(await handle(request, peer)) } satisfies InboundApi, port);
}

/** The worker went away while a request was in flight over its port (the caller sends it again another way). */
export class InboundPortClosedError extends Error {
  override name = 'InboundPortClosedError';
}

/**
 * Page side of the quick inbound path. A MessagePort held by the worker is much quicker than posting each
 * request to the registration's active worker (a message to a Service Worker goes through the browser
 * process: measured 1–3 ms against 0.1–0.5 ms for a port), but it does not wake a stopped worker, and it dies
 * with the worker. The port's `close` event (fired when the other end's owner is gone), or no answer within the
 * request's timeout plus `graceMs` (browsers without that event), marks it dead and fails the requests still in
 * flight with InboundPortClosedError: the caller may post them the slow way, which wakes the worker, when
 * sending twice is harmless (idempotent methods: the worker may have handled the first before it went).
 */
export interface InboundLink {
  readonly alive: boolean;
  handle(request: WireRequest, peer: string): Promise<WireResponse>;
  close(): void;
}

export function wrapInbound(port: MessagePort, opts: { graceMs?: number; defaultTimeoutMs?: number } = {}): InboundLink {
  const remote = Comlink.wrap<InboundApi>(port);
  const grace = opts.graceMs ?? 5_000;
  let alive = true;
  const onDead = new Set<() => void>();
  const die = () => {
    if (!alive) return;
    alive = false;
    for (const f of [...onDead]) f();
    onDead.clear();
  };
  port.addEventListener('close', die);
  return {
    get alive() {
      return alive;
    },
    handle(request, peer) {
      if (!alive) return Promise.reject(new InboundPortClosedError('the worker port is closed'));
      let drop: () => void = () => {};
      let timer: ReturnType<typeof setTimeout> | undefined;
      const dead = new Promise<never>((_, reject) => {
        drop = () => reject(new InboundPortClosedError('the worker went away during the request'));
        onDead.add(drop);
        timer = setTimeout(die, (request.timeoutMs ?? opts.defaultTimeoutMs ?? 30_000) + grace);
      });
      return Promise.race([remote.handle(withTransfer(request), peer), dead]).finally(() => {
        clearTimeout(timer);
        onDead.delete(drop);
      });
    },
    close() {
      die();
      port.close();
    },
  };
}
