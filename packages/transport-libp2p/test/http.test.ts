/** `/matrix-p2p/http/1` over in-memory stream pairs: framing, streaming, limits, policy, timeouts. */
import { streamPair } from '@libp2p/utils';
import { describe, expect, it } from 'vitest';
import { sendRequest } from '../src/http/client.ts';
import { isRemotePathAllowed, resolveRemotePath } from '../src/http/policy.ts';
import { serveStream, type RequestHandler } from '../src/http/server.ts';
import { DEFAULT_LIMITS, encodeFrame, encodeVarint, FrameReader, type HttpLimits } from '../src/http/wire.ts';

const echo: RequestHandler = async (request, remote) => {
  const body = new Uint8Array(await request.arrayBuffer());
  const url = new URL(request.url);
  return new Response(body, {
    status: 200,
    headers: { 'x-remote': remote, 'x-method': request.method, 'x-path': url.pathname + url.search, 'x-type': request.headers.get('content-type') ?? '' },
  });
};

async function exchange(request: Request, handler: RequestHandler = echo, limits: Partial<HttpLimits> = {}, clientLimits: Partial<HttpLimits> = limits) {
  const [out, inb] = await streamPair();
  const served = serveStream(inb, 'a'.repeat(64), handler, { limits: { ...DEFAULT_LIMITS, ...limits } });
  const response = await sendRequest(out, request, { ...DEFAULT_LIMITS, ...clientLimits });
  return { response, served };
}

describe('framing', () => {
  it('varints and frames', () => {
    expect([...encodeVarint(0)]).toEqual([0]);
    expect([...encodeVarint(127)]).toEqual([127]);
    expect([...encodeVarint(128)]).toEqual([0x80, 1]);
    expect([...encodeVarint(300)]).toEqual([0xac, 0x02]);
    expect([...encodeFrame(new Uint8Array([9, 8]))]).toEqual([2, 9, 8]);
  });

  it('a reader reassembles frames split anywhere, and refuses oversized ones', async () => {
    const [a, b] = await streamPair();
    const reader = new FrameReader(b, 1 << 20);
    const bytes = new Uint8Array([...encodeFrame(new Uint8Array(300).fill(1)), ...encodeFrame(new Uint8Array(0)), ...encodeFrame(new Uint8Array(5).fill(2))]);
    for (let i = 0; i < bytes.length; i += 7) a.send(bytes.subarray(i, i + 7));
    expect((await reader.next(1000, 1000))!.length).toBe(300);
    expect((await reader.next(1000, 1000))!.length).toBe(0);
    await expect(reader.next(4, 1000)).rejects.toThrow(/exceeds the limit/);
  });

  it('a clean close between frames is end of input; a close mid-frame is an error', async () => {
    const [a, b] = await streamPair();
    const reader = new FrameReader(b, 1 << 20);
    a.send(encodeFrame(new Uint8Array([1])));
    await a.close();
    expect([...(await reader.next(10, 1000))!]).toEqual([1]);
    expect(await reader.next(10, 1000)).toBe(null);
    const [c, d] = await streamPair();
    const r2 = new FrameReader(d, 1 << 20);
    c.send(encodeVarint(10));
    c.send(new Uint8Array(3));
    await c.close();
    await expect(r2.next(100, 1000)).rejects.toThrow(/middle of a frame/);
  });
});

describe('requests and responses', () => {
  it('a POST with a 100 KB body is echoed, with method, path, query, headers and the remote server name', async () => {
    const body = new Uint8Array(100_000).map((_, i) => i % 251);
    const { response, served } = await exchange(
      new Request('http://federation.invalid/_matrix/federation/v1/send/1?x=y', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('x-remote')).toBe('a'.repeat(64));
    expect(response.headers.get('x-method')).toBe('POST');
    expect(response.headers.get('x-path')).toBe('/_matrix/federation/v1/send/1?x=y');
    expect(response.headers.get('x-type')).toBe('application/octet-stream');
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(body);
    await served;
  });

  it('the host part of the URL is ignored; GET without a body works', async () => {
    const { response } = await exchange(new Request('https://elsewhere.example/_matrix/key/v2/server'));
    expect(response.headers.get('x-path')).toBe('/_matrix/key/v2/server');
    expect(response.headers.get('x-method')).toBe('GET');
    expect((await response.arrayBuffer()).byteLength).toBe(0);
  });

  it('a streamed request body and a streamed response body arrive whole and in order', async () => {
    const parts = Array.from({ length: 20 }, (_, i) => new Uint8Array(10_000).fill(i));
    const reqBody = new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of parts) c.enqueue(p);
        c.close();
      },
    });
    const handler: RequestHandler = async (req) => {
      const got = new Uint8Array(await req.arrayBuffer());
      // Respond slowly, in pieces.
      let i = 0;
      return new Response(
        new ReadableStream<Uint8Array>({
          async pull(c) {
            if (i === 4) return c.close();
            await new Promise((r) => setTimeout(r, 5));
            c.enqueue(got.subarray(i * 50_000, (i + 1) * 50_000));
            i++;
          },
        }),
      );
    };
    const { response } = await exchange(new Request('http://x/_matrix/media/v3/upload', { method: 'PUT', body: reqBody, duplex: 'half' } as RequestInit), handler);
    const got = new Uint8Array(await response.arrayBuffer());
    expect(got.length).toBe(200_000);
    for (let i = 0; i < 20; i++) expect(got[i * 10_000]).toBe(i);
  });

  it('many requests run side by side', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const { response } = await exchange(new Request(`http://x/_matrix/federation/v1/n/${i}`, { method: 'PUT', body: String(i) }));
        return response.text();
      }),
    );
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  });

  it('204 and HEAD answers have no body', async () => {
    const { response } = await exchange(new Request('http://x/_matrix/federation/v1/x', { method: 'PUT', body: 'x' }), async () => new Response(null, { status: 204 }));
    expect(response.status).toBe(204);
    expect(response.body).toBe(null);
  });
});

describe('refusals and limits', () => {
  it('the client API and anything outside federation/key/media is refused with 403, traversal included', async () => {
    let called = 0;
    const handler: RequestHandler = async () => (called++, new Response('no'));
    for (const path of ['/_matrix/client/v3/sync', '/_matrix/federation/../client/v3/sync', '/_matrix/federation/%2e%2e/client/v3/sync', '/_matrix/federationx/', '/', '/.well-known/matrix/server']) {
      const { response } = await exchange(new Request(`http://x${path}`), handler);
      expect(response.status, path).toBe(403);
      expect((await response.json()).errcode).toBe('M_FORBIDDEN');
    }
    expect(called).toBe(0);
    expect(isRemotePathAllowed('/_matrix/federation/v1/send/1')).toBe(true);
    expect(isRemotePathAllowed('/_matrix/media/v3/download/a/b')).toBe(true);
    expect(isRemotePathAllowed('/_matrix/key/v2/server')).toBe(true);
    expect(resolveRemotePath('//evil.example/_matrix/federation/')).toBe(undefined);
    expect(resolveRemotePath('/_matrix/federation/../client/x')!.pathname).toBe('/_matrix/client/x');
  });

  it('a request body over the limit is refused with 413 before the handler runs', async () => {
    let called = 0;
    const { response } = await exchange(
      new Request('http://x/_matrix/federation/v1/send/1', { method: 'PUT', body: new Uint8Array(300_000) }),
      async () => (called++, new Response('x')),
      { maxRequestBodyBytes: 100_000 },
      {},
    );
    expect(response.status).toBe(413);
    expect((await response.json()).errcode).toBe('M_TOO_LARGE');
    expect(called).toBe(0);
  });

  it('a client refuses to send a body over its own limit', async () => {
    await expect(
      exchange(new Request('http://x/_matrix/federation/v1/send/1', { method: 'PUT', body: new Uint8Array(300_000) }), echo, {}, { maxRequestBodyBytes: 100_000 }),
    ).rejects.toThrow(/body exceeds/);
  });

  it('a response body over the limit errors the body stream', async () => {
    const { response } = await exchange(new Request('http://x/_matrix/media/v3/download/a/b'), async () => new Response(new Uint8Array(300_000)), { maxResponseBodyBytes: 100_000 });
    expect(response.status).toBe(200);
    await expect(response.arrayBuffer()).rejects.toThrow(/exceeds/);
  });

  it('a handler that throws is a 500 without details; one that hangs is a 504', async () => {
    const boom = await exchange(new Request('http://x/_matrix/federation/v1/x'), async () => {
      throw new Error('secret detail');
    });
    expect(boom.response.status).toBe(500);
    expect(await boom.response.text()).not.toContain('secret');
    const slow = await exchange(new Request('http://x/_matrix/federation/v1/x'), () => new Promise<Response>(() => {}), { handlerTimeoutMs: 100 });
    expect(slow.response.status).toBe(504);
  });

  it('a peer that never answers times out; an aborted request rejects', async () => {
    const [out] = await streamPair();
    const t0 = Date.now();
    await expect(sendRequest(out, new Request('http://x/_matrix/federation/v1/x'), { ...DEFAULT_LIMITS, responseTimeoutMs: 150 })).rejects.toThrow(/no data from the peer/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    const [out2] = await streamPair();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await expect(sendRequest(out2, new Request('http://x/_matrix/federation/v1/x', { signal: ac.signal }), DEFAULT_LIMITS)).rejects.toThrow();
  });

  it('garbage instead of a head resets the stream, and the responder does not call the handler', async () => {
    const [out, inb] = await streamPair();
    let called = 0;
    const served = serveStream(inb, 'a'.repeat(64), async () => (called++, new Response('x')), { limits: DEFAULT_LIMITS });
    out.send(encodeFrame(new TextEncoder().encode('{"method": "GET", "path": "no-slash", "headers": []}')));
    await served;
    expect(called).toBe(0);
    expect(inb.status).not.toBe('open');
  });
});

describe('keep-alive', () => {
  it('one stream carries exchanges one after the other, and the responder stops when the requester closes', async () => {
    const [out, inb] = await streamPair();
    let handled = 0;
    const served = serveStream(inb, 'a'.repeat(64), async (r, remote, body) => (handled++, echo(r, remote, body)), { limits: DEFAULT_LIMITS });
    const reusable: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      let done!: (ok: boolean) => void;
      const reported = new Promise<boolean>((r) => (done = r));
      const res = await sendRequest(out, new Request(`http://x/_matrix/federation/v1/send/${i}`, { method: 'PUT', body: `body ${i}` }), DEFAULT_LIMITS, { keepAlive: { done } });
      expect(res.headers.get('x-path')).toBe(`/_matrix/federation/v1/send/${i}`);
      expect(await res.text()).toBe(`body ${i}`);
      reusable.push(await reported);
    }
    expect(reusable).toEqual([true, true, true]);
    expect(handled).toBe(3);
    expect(out.status).toBe('open');
    await out.close();
    await served; // the responder returns once the requester closed its end
    expect(inb.status).not.toBe('open');
  });

  it('a refused request (403 before its body) ends the stream: it is not reusable, and the answer still arrives', async () => {
    const [out, inb] = await streamPair();
    void serveStream(inb, 'a'.repeat(64), echo, { limits: DEFAULT_LIMITS });
    let done!: (ok: boolean) => void;
    const reported = new Promise<boolean>((r) => (done = r));
    const res = await sendRequest(out, new Request('http://x/_matrix/client/v3/sync'), DEFAULT_LIMITS, { keepAlive: { done } });
    expect(res.status).toBe(403);
    expect((await res.json()).errcode).toBe('M_FORBIDDEN');
    await expect.poll(() => out.status).not.toBe('open');
    expect(await reported).toBe(false);
  });

  it('the responder closes a stream left idle between exchanges', async () => {
    const [out, inb] = await streamPair();
    const served = serveStream(inb, 'a'.repeat(64), echo, { limits: { ...DEFAULT_LIMITS, keepAliveIdleMs: 100 } });
    const res = await sendRequest(out, new Request('http://x/_matrix/federation/v1/version'), DEFAULT_LIMITS, { keepAlive: { done: () => {} } });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const t0 = Date.now();
    await served;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(80);
    await expect.poll(() => (out as { remoteWriteStatus?: string }).remoteWriteStatus).toBe('closed');
  });
});

describe('handlers', () => {
  it('get the request body as read, beside the Request (null when there is none)', async () => {
    const seen: (string | null)[] = [];
    const handler: RequestHandler = async (r, remote, body) => (seen.push(body ? new TextDecoder().decode(body) : null), echo(r, remote, body));
    const put = await exchange(new Request('http://x/_matrix/federation/v1/send/1', { method: 'PUT', body: 'the body' }), handler);
    expect(await put.response.text()).toBe('the body');
    const get = await exchange(new Request('http://x/_matrix/federation/v1/version'), handler);
    await get.response.arrayBuffer();
    expect(seen).toEqual(['the body', null]);
  });
});

