/**
 * The realm split (node in a page, homeserver in the worker) with the MessageChannel left out: everything that
 * crosses is checked to be structured-cloneable, so comlink can carry it.
 */
import { describe, expect, it } from 'vitest';
import { createHostedTransport, deserializeRequest, deserializeResponse, hostApi, serializeRequest, serializeResponse, serveThrough, type WireRequest, type WireResponse } from '../src/index.ts';
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

  it('a worker-side transport reaches a page-side node, and inbound requests reach the worker with the peer name', async () => {
    // The page's node (a stand-in: its request() answers as the remote would).
    let inbound: RequestHandler | undefined;
    const node = {
      serverName: 'b'.repeat(64),
      peerId: 'peer',
      peers: () => [],
      request: async (dest: string, r: Request) => Response.json({ dest, path: new URL(r.url).pathname, body: await r.text() }),
      onRequest: (h: RequestHandler) => void (inbound = h),
    };
    const api = hostApi(node);
    const hosted = createHostedTransport();
    await expect(hosted.transport.fetch('c'.repeat(64), new Request('http://x/_matrix/federation/v1/version'))).rejects.toThrow(/no transport host/);
    // comlink would wrap `api`; here every call goes through structuredClone both ways.
    hosted.attach({ fetch: async (d: string, w: WireRequest) => clone(await api.fetch(d, clone(w))) });
    const r = await hosted.transport.fetch('c'.repeat(64), new Request('http://federation.invalid/_matrix/federation/v1/send/9', { method: 'PUT', body: 'hello' }));
    expect(await r.json()).toEqual({ dest: 'c'.repeat(64), path: '/_matrix/federation/v1/send/9', body: 'hello' });
    const reached: string[] = [];
    hosted.transport.onPeerReachable!((n) => reached.push(n));
    hosted.peerReachable('c'.repeat(64));
    expect(reached).toEqual(['c'.repeat(64)]);
    hosted.detach();
    expect(hosted.hasHost()).toBe(false);

    // Inbound: the page forwards to the worker, which answers as hs.handle(request, { peer }) would.
    serveThrough(node, async (w: WireRequest, peer: string): Promise<WireResponse> => {
      const req = deserializeRequest(clone(w));
      return clone(await serializeResponse(Response.json({ peer, method: req.method, body: await req.text() })));
    });
    const answer = await inbound!(new Request('http://federation.invalid/_matrix/federation/v1/send/2', { method: 'PUT', body: 'x' }), 'd'.repeat(64));
    expect(await answer.json()).toEqual({ peer: 'd'.repeat(64), method: 'PUT', body: 'x' });
  });
});
