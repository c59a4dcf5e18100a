/**
 * Plain-data forms of Request and Response, and the two halves of a transport split across a
 * MessageChannel (comlink): the libp2p node lives in a page (Service Workers have no RTCPeerConnection), the
 * homeserver in the Service Worker.
 *
 *   worker: transportFromHost(remoteHost)  ── fetch(dest, WireRequest) ──▶  page: hostApi(node).fetch
 *   page:   serveThrough(node, forward)     ── forward(WireRequest, peer) ─▶ worker: hs.handle(deserializeRequest(r), { peer })
 *
 * Everything that crosses is structured-cloneable (strings, numbers, arrays, ArrayBuffers); pass bodies as
 * transferables (`Comlink.transfer(wire, wire.body ? [wire.body] : [])`) to avoid a copy.
 */
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
  const body = response.body === null ? null : await response.arrayBuffer();
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
}

export function hostApi(node: Pick<P2PNode, 'serverName' | 'peerId' | 'peers' | 'request'>): TransportHostApi {
  return {
    serverName: () => node.serverName,
    peerId: () => node.peerId,
    peers: () => node.peers(),
    async fetch(destination, request) {
      return serializeResponse(await node.request(destination, deserializeRequest(request)));
    },
  };
}

/** Page side of the inbound direction: every request a peer sends is forwarded (e.g. to the worker). */
export function serveThrough(node: Pick<P2PNode, 'onRequest'>, forward: (request: WireRequest, peer: string) => Promise<WireResponse>): void {
  node.onRequest(async (request, peer) => deserializeResponse(await forward(await serializeRequest(request), peer)));
}
