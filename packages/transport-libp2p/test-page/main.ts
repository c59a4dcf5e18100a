/**
 * The e2e test page (not part of the app): one libp2p node per page, driven by Playwright through
 * `window.p2pTest`. The inbound handler echoes: the response body is the request body, with the method, path
 * and the remote server name in headers.
 */
import type { Connection } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { createP2PNode, HTTP_PROTOCOL, peerIdFromServerName, type P2PNode, type PeerStatus } from '../src/index.ts';
import { sendRequest } from '../src/http/client.ts';
import { DEFAULT_LIMITS } from '../src/http/wire.ts';

let node: P2PNode | undefined;
const events: string[] = [];
const logEl = () => document.getElementById('log');
function log(line: string) {
  events.push(`${Math.round(performance.now())} ${line}`);
  const el = logEl();
  if (el) el.textContent = events.slice(-50).join('\n');
}

function randomSeed(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

async function digest(bytes: ArrayBuffer | Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as BufferSource));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

function pattern(size: number, salt: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + salt) & 0xff;
  return out;
}

function quantiles(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { n: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: s[s.length - 1] ?? NaN };
}

const api = {
  async start(opts: { rendezvousAddrs: string[]; webrtc?: boolean }) {
    node = await createP2PNode({
      seed: randomSeed(),
      rendezvousAddrs: opts.rendezvousAddrs,
      webrtc: opts.webrtc ?? true,
      announceIntervalMs: 2_000,
      log: (m, d) => log(`${m}${d ? `: ${(d as Error)?.message ?? String(d)}` : ''}`),
    });
    node.on('peer', (p) => log(`peer ${p.serverName.slice(0, 8)} ${p.kind}`));
    node.on('peer-updated', (p) => log(`peer-updated ${p.serverName.slice(0, 8)} ${p.kind}`));
    node.on('peer-gone', (p) => log(`peer-gone ${p.serverName.slice(0, 8)}`));
    node.on('rendezvous', (r) => log(`rendezvous ${r.connected ? 'up' : 'down'}`));
    node.onRequest(async (request, remote) => {
      const body = await request.arrayBuffer();
      const url = new URL(request.url);
      return new Response(body, { headers: { 'x-remote': remote, 'x-method': request.method, 'x-path': url.pathname + url.search, 'x-sha256': await digest(body) } });
    });
    await node.start();
    return { serverName: node.serverName, peerId: node.peerId };
  },

  peers(): PeerStatus[] {
    return node?.peers() ?? [];
  },

  rendezvousConnected(): boolean {
    return node?.rendezvousConnected() ?? false;
  },

  /** The libp2p connections to a server: what the transport really is. */
  connections(serverName: string) {
    const conns: Connection[] = node?.libp2p?.getConnections(peerIdFromServerName(serverName)) ?? [];
    return conns.map((c) => ({ remoteAddr: c.remoteAddr.toString(), direct: c.direct, limited: c.limits !== undefined, status: c.status, multiplexer: c.multiplexer, encryption: c.encryption }));
  },

  /** One request; the echo is checked here (byte for byte, by hash). */
  async request(serverName: string, opts: { method?: string; path: string; bodySize?: number; salt?: number }) {
    const body = opts.bodySize ? pattern(opts.bodySize, opts.salt ?? 1) : undefined;
    const t0 = performance.now();
    let r: Response;
    try {
      r = await node!.request(serverName, new Request(`http://federation.invalid${opts.path}`, { method: opts.method ?? (body ? 'POST' : 'GET'), body: body as BodyInit | undefined }));
    } catch (e) {
      const x = e as { name?: string; message?: string; stack?: string; type?: string; error?: { name?: string; message?: string } };
      const what = e instanceof Error ? `${x.name}: ${x.message} ${x.stack?.split('\n').slice(0, 6).join(' / ')}` : `${Object.prototype.toString.call(e)} type=${x?.type} error=${x?.error?.name}:${x?.error?.message}`;
      const conns = api.connections(serverName);
      throw new Error(`request to ${serverName.slice(0, 8)} failed: ${what}; conns: ${JSON.stringify(conns)}; peers: ${JSON.stringify(node!.peers().map((p) => [p.serverName.slice(0, 8), p.kind]))}; log: ${events.slice(-15).join(' | ')}`);
    }
    const echoed = new Uint8Array(await r.arrayBuffer());
    const ms = performance.now() - t0;
    return {
      status: r.status,
      ms,
      remote: r.headers.get('x-remote'),
      method: r.headers.get('x-method'),
      path: r.headers.get('x-path'),
      bytes: echoed.byteLength,
      same: body ? (await digest(echoed)) === (await digest(body)) && r.headers.get('x-sha256') === (await digest(body)) : echoed.byteLength === 0,
      text: body ? '' : new TextDecoder().decode(echoed),
    };
  },

  /** `n` sequential small requests over the connection the node picks (direct WebRTC once up). */
  async bench(serverName: string, n: number, bodySize = 0) {
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = await api.request(serverName, { method: 'PUT', path: `/_matrix/federation/v1/send/${i}`, bodySize: bodySize || 2, salt: i });
      if (r.status !== 200 || !r.same) throw new Error(`request ${i}: ${r.status}`);
      ms.push(r.ms);
    }
    return quantiles(ms);
  },

  /** The same over a relayed connection opened on purpose (through the rendezvous), whatever else exists. */
  async benchRelayed(serverName: string, rendezvousAddr: string, n: number) {
    const id = peerIdFromServerName(serverName);
    const conn = await node!.libp2p!.dial(multiaddr(`${rendezvousAddr}/p2p-circuit/p2p/${id}`), { force: true, signal: AbortSignal.timeout(10_000) });
    const ms: number[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const stream = await conn.newStream(HTTP_PROTOCOL, { runOnLimitedConnection: true });
        const t0 = performance.now();
        const r = await sendRequest(stream, new Request(`http://federation.invalid/_matrix/federation/v1/send/r${i}`, { method: 'PUT', body: 'hi' }), DEFAULT_LIMITS);
        const text = await r.text();
        ms.push(performance.now() - t0);
        if (r.status !== 200 || text !== 'hi') throw new Error(`relayed request ${i}: ${r.status}`);
      }
      return { remoteAddr: conn.remoteAddr.toString(), limited: conn.limits !== undefined, ...quantiles(ms) };
    } finally {
      await conn.close().catch(() => {});
    }
  },

  /** Where the time of one request goes: opening the stream, the response head, the body (diagnostics). */
  async probe(serverName: string, n: number, negotiateFully = true) {
    const conns = node!.libp2p!.getConnections(peerIdFromServerName(serverName)).filter((c) => c.status === 'open');
    const conn = conns.find((c) => c.remoteAddr.toString().includes('/webrtc')) ?? conns[0]!;
    const open: number[] = [];
    const head: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const stream = await conn.newStream(HTTP_PROTOCOL, { runOnLimitedConnection: true, negotiateFully });
      const t1 = performance.now();
      const r = await sendRequest(stream, new Request(`http://federation.invalid/_matrix/federation/v1/p/${i}`, { method: 'PUT', body: 'hi' }), DEFAULT_LIMITS);
      const t2 = performance.now();
      await r.text();
      const t3 = performance.now();
      open.push(t1 - t0);
      head.push(t2 - t1);
      total.push(t3 - t0);
    }
    const streamsAfter = conn.streams.length;
    await new Promise((r) => setTimeout(r, 1000));
    return { remoteAddr: conn.remoteAddr.toString(), streamsAfter, streamsLater: conn.streams.length, open: quantiles(open), head: quantiles(head), total: quantiles(total) };
  },

  stats() {
    return node?.stats();
  },

  events() {
    return [...events];
  },

  async stop() {
    await node?.stop();
    node = undefined;
  },
};

(window as unknown as { p2pTest: typeof api }).p2pTest = api;
document.documentElement.dataset.ready = 'true';
