/**
 * The Node ⇄ web bridge (`src/http.ts`) over a real socket, with a handler that echoes what it got:
 * method, full URL with query, every header, streamed bodies both ways, CORS on every answer,
 * handler failures, and aborting a request whose client left.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CORS_HEADERS, createRequestListener, type FetchHandler, type RequestTracker } from '../src/http.ts';

let server: Server | undefined;
let tracker: RequestTracker | undefined;

async function serveHandler(handler: FetchHandler, log: (e: unknown) => void = () => {}): Promise<string> {
  const made = createRequestListener(handler, { fallbackOrigin: 'http://fallback.invalid', log });
  tracker = made.tracker;
  server = createServer(made.listener);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  if (server) {
    server.closeAllConnections();
    await new Promise((r) => server!.close(r));
  }
  server = undefined;
  tracker = undefined;
});

const echo: FetchHandler = async (req) => {
  const body = req.body ? new Uint8Array(await req.arrayBuffer()) : null;
  return Response.json({
    method: req.method,
    url: req.url,
    headers: Object.fromEntries(req.headers),
    bodyLength: body?.length ?? null,
    bodySum: body ? body.reduce((a, b) => (a + b) % 65521, 0) : null,
  });
};

describe('node host HTTP bridge', () => {
  it('keeps the method, the full URL with its query, and the headers', async () => {
    const base = await serveHandler(echo);
    const r = await fetch(`${base}/_matrix/client/v3/rooms/!a%3Ab/messages?dir=b&limit=3&filter=%7B%7D`, {
      method: 'PUT',
      headers: { authorization: 'Bearer tok', 'content-type': 'application/json', 'x-custom': 'yes' },
      body: '{"a":1}',
    });
    expect(r.status).toBe(200);
    const got = (await r.json()) as { method: string; url: string; headers: Record<string, string>; bodyLength: number };
    expect(got.method).toBe('PUT');
    expect(got.url).toBe(`${base}/_matrix/client/v3/rooms/!a%3Ab/messages?dir=b&limit=3&filter=%7B%7D`);
    expect(got.headers.authorization).toBe('Bearer tok');
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['x-custom']).toBe('yes');
    expect(got.bodyLength).toBe(7);
  });

  it('keeps a path that starts with // as a path', async () => {
    const base = await serveHandler(echo);
    const got = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${base}//_matrix/client/versions?a=b`, (res) => {
        let s = '';
        res.on('data', (d) => (s += d));
        res.on('end', () => resolve(s));
      });
      req.on('error', reject);
      req.end();
    });
    expect((JSON.parse(got) as { url: string }).url).toBe(`${base}//_matrix/client/versions?a=b`);
  });

  it('gives an empty POST an empty body', async () => {
    const base = await serveHandler(echo);
    const got = (await (await fetch(`${base}/logout`, { method: 'POST' })).json()) as { bodyLength: number | null };
    expect(got.bodyLength ?? 0).toBe(0);
  });

  it('streams a large request body through unchanged', async () => {
    const base = await serveHandler(echo);
    const bytes = new Uint8Array(3 * 1024 * 1024 + 17);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) & 0xff;
    const r = await fetch(`${base}/upload`, { method: 'POST', body: bytes });
    const got = (await r.json()) as { bodyLength: number; bodySum: number };
    expect(got.bodyLength).toBe(bytes.length);
    expect(got.bodySum).toBe(bytes.reduce((a, b) => (a + b) % 65521, 0));
  });

  it('reads a chunked request body (no Content-Length)', async () => {
    const base = await serveHandler(echo);
    const parts = [new Uint8Array(1000).fill(1), new Uint8Array(70_000).fill(2), new Uint8Array(5).fill(3)];
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of parts) c.enqueue(p);
        c.close();
      },
    });
    const r = await fetch(`${base}/chunked`, { method: 'PUT', body, duplex: 'half' } as RequestInit);
    const got = (await r.json()) as { bodyLength: number; headers: Record<string, string> };
    expect(got.headers['transfer-encoding']).toBe('chunked');
    expect(got.bodyLength).toBe(71_005);
  });

  it('gives GET and HEAD requests no body', async () => {
    const base = await serveHandler(echo);
    const got = (await (await fetch(`${base}/x`)).json()) as { bodyLength: number | null };
    expect(got.bodyLength).toBeNull();
    const head = await fetch(`${base}/x`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect((await head.arrayBuffer()).byteLength).toBe(0);
  });

  it('returns status, headers (several Set-Cookie too) and a streamed body', async () => {
    const chunks = ['first ', 'second ', 'third'];
    const base = await serveHandler(async () => {
      const stream = new ReadableStream<Uint8Array>({
        async start(c) {
          for (const s of chunks) {
            c.enqueue(new TextEncoder().encode(s));
            await new Promise((r) => setTimeout(r, 5));
          }
          c.close();
        },
      });
      const headers = new Headers({ 'content-type': 'text/plain', 'content-disposition': 'inline; filename="a.txt"' });
      headers.append('set-cookie', 'a=1');
      headers.append('set-cookie', 'b=2');
      return new Response(stream, { status: 201, headers });
    });
    const r = await fetch(`${base}/stream`);
    expect(r.status).toBe(201);
    expect(r.headers.get('content-type')).toBe('text/plain');
    expect(r.headers.get('content-disposition')).toBe('inline; filename="a.txt"');
    expect(r.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await r.text()).toBe(chunks.join(''));
  });

  it('adds CORS headers a response lacks, and keeps the ones it has', async () => {
    const base = await serveHandler(async (req) =>
      new URL(req.url).pathname === '/own'
        ? new Response('x', { headers: { 'access-control-allow-origin': 'https://only.example' } })
        : new Response(new Uint8Array([1, 2, 3]), { headers: { 'content-type': 'application/octet-stream' } }),
    );
    const bare = await fetch(`${base}/media`);
    for (const [k, v] of Object.entries(CORS_HEADERS)) expect(bare.headers.get(k)).toBe(v);
    expect(new Uint8Array(await bare.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3]));
    const own = await fetch(`${base}/own`);
    expect(own.headers.get('access-control-allow-origin')).toBe('https://only.example');
    expect(own.headers.get('access-control-allow-methods')).toBe(CORS_HEADERS['access-control-allow-methods']);
  });

  it('answers 500 M_UNKNOWN with CORS when the handler throws', async () => {
    const logged: unknown[] = [];
    const base = await serveHandler(async () => {
      throw new Error('boom');
    }, (e) => logged.push(e));
    const r = await fetch(`${base}/x`);
    expect(r.status).toBe(500);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(((await r.json()) as { errcode: string }).errcode).toBe('M_UNKNOWN');
    expect(logged).toHaveLength(1);
  });

  it('answers a refused request whose body the handler never read', async () => {
    const base = await serveHandler(async () => Response.json({ errcode: 'M_TOO_LARGE' }, { status: 413 }));
    const r = await fetch(`${base}/upload`, { method: 'POST', body: new Uint8Array(8 * 1024 * 1024) });
    expect(r.status).toBe(413);
    expect(((await r.json()) as { errcode: string }).errcode).toBe('M_TOO_LARGE');
  });

  it('aborts the request signal when the client goes away, and tracks in-flight requests', async () => {
    let aborted!: () => void;
    const sawAbort = new Promise<void>((r) => (aborted = r));
    let started!: () => void;
    const sawStart = new Promise<void>((r) => (started = r));
    const base = await serveHandler(
      (req) =>
        new Promise<Response>((resolve) => {
          started();
          req.signal.addEventListener('abort', () => {
            aborted();
            resolve(new Response('late'));
          });
        }),
    );
    const client = httpRequest(`${base}/sync?timeout=30000`);
    client.on('error', () => {});
    client.end();
    await sawStart;
    expect(tracker!.inFlight).toBe(1);
    client.destroy();
    await sawAbort;
    await tracker!.idle(2000);
    expect(tracker!.inFlight).toBe(0);
  });

  it('abortAll ends every in-flight request', async () => {
    const base = await serveHandler(
      (req) => new Promise<Response>((resolve) => req.signal.addEventListener('abort', () => resolve(Response.json({ ended: true })))),
    );
    const pending = [fetch(`${base}/a`), fetch(`${base}/b`)];
    while (tracker!.inFlight < 2) await new Promise((r) => setTimeout(r, 5));
    tracker!.abortAll();
    await tracker!.idle(2000);
    expect(tracker!.inFlight).toBe(0);
    // The answers were written after the abort (the client had not gone away).
    for (const p of pending) expect(await (await p).json()).toEqual({ ended: true });
  });
});
