/**
 * The realm split (node in a page, homeserver in the worker) with the MessageChannel left out: everything that
 * crosses is checked to be structured-cloneable, so comlink can carry it.
 */
import { describe, expect, it } from 'vitest';
import { createHostedTransport, deserializeRequest, deserializeResponse, exposeHost, exposeInbound, hostApi, InboundPortClosedError, wrapInbound, serializeRequest, serializeResponse, serveThrough, wrapHost, type PeerStatus, type WireRequest, type WireResponse } from '../src/index.ts';
import type { RequestHandler } from '../src/http/server.ts';

/** What postMessage would do to it (throws on functions, Requests, streams...). */
const clone = <T>(x: T): T => structuredClone(x);

describe('bridge', () => {
  it('requests and responses survive serialisation', async () => {
    const body = new Uint8Array([1, 2, 3, 250]);
    const wire = clone(await serializeRequest(new Request('http://federation.invalid/_matrix/federation/v1/send/1?a=b', { method: 'PUT', body, headers: { 'content-type': 'application/json', 'x-a': '1' } }), 5_000));
    const req = deserializeRequest(wire);
    expect(req.method).toBe('PUT');
    expect(req.url).toBe('http://federation.invalid/_matrix/federation/v1/send/1?a=b');
    expect(req.headers.get('x-a')).toBe('1');
    expect(new Uint8Array(await req.arrayBuffer())).toEqual(body);
    const res = deserializeResponse(clone(await serializeResponse(new Response('{"ok":true}', { status: 201, headers: { 'content-type': 'application/json' } }))));
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ ok: true });
    expect(deserializeResponse(clone(await serializeResponse(new Response(null, { status: 204 })))).status).toBe(204);
  });

  it('a worker-side transport reaches a page-side node over comlink, and inbound requests reach the worker with the peer name', async () => {
    // The page's node (a stand-in: its request() answers as the remote would; `emit` plays its peer events).
    let inbound: RequestHandler | undefined;
    const peerListeners = new Set<(p: PeerStatus) => void>();
    const emitPeer = (serverName: string) => peerListeners.forEach((l) => l({ serverName, peerId: 'x', direct: true, kind: 'webrtc', remoteAddr: '', since: 0 }));
    const node = {
      serverName: 'b'.repeat(64),
      peerId: 'peer',
      peers: () => [{ serverName: 'c'.repeat(64), peerId: 'x', direct: true, kind: 'webrtc' as const, remoteAddr: '/webrtc', since: 1 }],
      request: async (dest: string, r: Request, opts: { body?: Uint8Array | null } = {}) => {
        if (dest === 'e'.repeat(64)) throw new Error('unreachable');
        const body = opts.body !== undefined ? (opts.body ? new TextDecoder().decode(opts.body) : '') : await r.text();
        return Response.json({ dest, path: new URL(r.url).pathname, body });
      },
      onRequest: (h: RequestHandler) => void (inbound = h),
      on: ((_e: string, l: (p: PeerStatus) => void) => (peerListeners.add(l), () => peerListeners.delete(l))) as never,
      broadcast: async (m: Uint8Array) => void published.push(new TextDecoder().decode(m)),
    };
    const published: string[] = [];
    const hosted = createHostedTransport();
    await expect(hosted.transport.fetch('c'.repeat(64), new Request('http://x/_matrix/federation/v1/version'))).rejects.toThrow(/no transport host/);

    // A real MessageChannel between the "page" (exposeHost) and the "worker" (wrapHost), as in the browser.
    const { port1, port2 } = new MessageChannel();
    const observed: boolean[] = [];
    const stop = exposeHost(hostApi(node), port1, (_d, _ms, ok) => observed.push(ok));
    const remote = wrapHost(port2);
    hosted.attach(remote);
    const r = await hosted.transport.fetch('c'.repeat(64), new Request('http://federation.invalid/_matrix/federation/v1/send/9', { method: 'PUT', body: 'hello' }));
    expect(await r.json()).toEqual({ dest: 'c'.repeat(64), path: '/_matrix/federation/v1/send/9', body: 'hello' });
    // The core hands the body's bytes along: they go as they are, the Request's body is not read back.
    const given = await hosted.transport.fetch('c'.repeat(64), new Request('http://federation.invalid/_matrix/federation/v1/send/10', { method: 'PUT', body: 'ignored' }), { body: new TextEncoder().encode('as bytes') });
    expect((await given.json()).body).toBe('as bytes');
    await expect(hosted.transport.fetch('e'.repeat(64), new Request('http://federation.invalid/_matrix/federation/v1/version'))).rejects.toThrow(/unreachable/);
    expect(observed).toEqual([true, true, false]);
    expect((await remote.peers()).map((p) => p.serverName)).toEqual(['c'.repeat(64)]);

    // Broadcasts go out through the page's node; broadcasts the page receives reach the worker's listeners.
    await hosted.transport.broadcast!(new TextEncoder().encode('announcement'));
    expect(published).toEqual(['announcement']);
    const heard: string[] = [];
    hosted.transport.onBroadcast!((m) => heard.push(new TextDecoder().decode(m)));
    hosted.deliverBroadcast(new TextEncoder().encode('theirs'));
    expect(heard).toEqual(['theirs']);

    // Peer events reach the worker through a comlink proxy.
    const reached: string[] = [];
    hosted.transport.onPeerReachable!((n) => reached.push(n));
    await remote.onPeer((n) => hosted.peerReachable(n));
    emitPeer('d'.repeat(64));
    await expect.poll(() => reached).toEqual(['d'.repeat(64)]);

    // The page stops serving (a new worker attached): the worker's listener is dropped.
    stop();
    emitPeer('f'.repeat(64));
    expect(peerListeners.size).toBe(0);
    hosted.detach();
    expect(hosted.hasHost()).toBe(false);
    remote.close();

    // Inbound: the page forwards to the worker, which answers as hs.handle(request, { peer }) would.
    serveThrough(node, async (w: WireRequest, peer: string): Promise<WireResponse> => {
      const req = deserializeRequest(clone(w));
      return clone(await serializeResponse(Response.json({ peer, method: req.method, body: await req.text() })));
    });
    const answer = await inbound!(new Request('http://federation.invalid/_matrix/federation/v1/send/2', { method: 'PUT', body: 'x' }), 'd'.repeat(64), new TextEncoder().encode('x'));
    expect(await answer.json()).toEqual({ peer: 'd'.repeat(64), method: 'PUT', body: 'x' });
  });

  it('a host that never answers times out instead of hanging the worker', async () => {
    const { port1, port2 } = new MessageChannel();
    port1.start(); // a page that receives calls and never answers
    const remote = wrapHost(port2, { graceMs: 50 });
    const t0 = Date.now();
    await expect(remote.fetch('c'.repeat(64), { method: 'GET', url: 'http://x/', headers: [], body: null, timeoutMs: 100 })).rejects.toMatchObject({ name: 'HostTimeoutError' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    remote.close();
    port1.close();
  });


  it('the quick inbound path: requests reach the worker over its port; when the worker goes, requests in flight fail so they can be posted instead', async () => {
    const { port1, port2 } = new MessageChannel();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    exposeInbound(async (w, peer) => {
      if (new URL(w.url).pathname.endsWith('/slow')) await held;
      return serializeResponse(Response.json({ peer, body: w.body ? new TextDecoder().decode(w.body) : null }));
    }, port2);
    const link = wrapInbound(port1);
    const body = new TextEncoder().encode('pdu').buffer as ArrayBuffer;
    const r = deserializeResponse(await link.handle({ method: 'PUT', url: 'http://x/_matrix/federation/v1/send/1', headers: [], body }, 'd'.repeat(64)));
    expect(await r.json()).toEqual({ peer: 'd'.repeat(64), body: 'pdu' });

    const slow = link.handle({ method: 'GET', url: 'http://x/slow', headers: [], body: null }, 'd'.repeat(64));
    port2.close(); // the worker is stopped: its end of the port goes away
    await expect(slow).rejects.toBeInstanceOf(InboundPortClosedError);
    expect(link.alive).toBe(false);
    await expect(link.handle({ method: 'GET', url: 'http://x/', headers: [], body: null }, 'd'.repeat(64))).rejects.toBeInstanceOf(InboundPortClosedError);
    release();
    link.close();
  });

  it('the quick inbound path gives up on a worker that does not answer in time (no close event)', async () => {
    const { port1, port2 } = new MessageChannel();
    port2.start(); // a worker that takes requests and never answers
    const link = wrapInbound(port1, { graceMs: 20 });
    const t0 = Date.now();
    await expect(link.handle({ method: 'PUT', url: 'http://x/_matrix/federation/v1/send/1', headers: [], body: null, timeoutMs: 50 }, 'd'.repeat(64))).rejects.toBeInstanceOf(InboundPortClosedError);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(60);
    expect(link.alive).toBe(false);
    link.close();
    port2.close();
  });
});
