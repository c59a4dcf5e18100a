/**
 * The bridge between Node's `http` module and the homeserver's fetch-style handler: a Node request
 * becomes a web `Request` (method, every header, the full URL with its query, the body streamed), and
 * the web `Response` goes back as status, headers and body bytes (streamed, with back-pressure).
 * Nothing here knows about Matrix except the CORS headers every browser client needs, which the core
 * already sets on its own responses; they are added here only where a response lacks them.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

/** What the host serves: `Homeserver.handle`, or anything else with the same shape. */
export type FetchHandler = (request: Request) => Promise<Response>;

/** CORS headers for every response (spec: client-server API, "Web Browser Clients"). */
export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'X-Requested-With, Content-Type, Authorization, Date',
  'access-control-expose-headers': 'Content-Type, Content-Length, Content-Disposition',
};

/** The origin used when a request has no usable `Host` header (HTTP/1.0 clients). */
function originOf(req: IncomingMessage, fallback: string): string {
  const host = req.headers.host;
  if (host && /^[A-Za-z0-9.\-_:[\]]+$/.test(host)) return `http://${host}`;
  return fallback;
}

/**
 * A web `Request` for a Node request. The body (for methods that may have one) is a stream over the
 * socket, read only if the handler reads it. `signal` aborts when the client goes away.
 */
export function toWebRequest(req: IncomingMessage, fallbackOrigin: string, signal?: AbortSignal): Request {
  const method = (req.method ?? 'GET').toUpperCase();
  // Origin-form targets (`/path?query`) are appended, not resolved: `//x` is a path here, not a host.
  const target = req.url ?? '/';
  const urlFrom = (origin: string) => (target.startsWith('/') ? new URL(origin + target) : new URL(target, origin));
  let url: URL;
  try {
    url = urlFrom(originOf(req, fallbackOrigin));
  } catch {
    url = urlFrom(fallbackOrigin);
  }
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i], raw[i + 1]);
    } catch {
      // A header the web Headers class refuses (invalid characters): the handler never needs it.
    }
  }
  const length = req.headers['content-length'];
  const hasBody = method !== 'GET' && method !== 'HEAD' && (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0'));
  const init: RequestInit & { duplex?: 'half' } = { method, headers, signal };
  if (hasBody) {
    init.body = bodyStream(req);
    init.duplex = 'half';
  }
  return new Request(url, init);
}

const BODY_HIGH_WATER_MARK = 256 * 1024;

/**
 * The request body as a web stream, pulled from the socket with back-pressure. (Not
 * `Readable.toWeb`: on Node 20 it throws an uncaught ERR_INVALID_STATE when data arrives after the
 * stream was cancelled, which would take the whole host down.) Cancelling discards the rest of the
 * body, so the connection stays usable.
 */
function bodyStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        req.pause();
        req.on('data', (chunk: Buffer) => {
          if (done) return;
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 0) <= 0) req.pause();
        });
        req.on('end', () => {
          if (done) return;
          done = true;
          controller.close();
        });
        const fail = (e: unknown) => {
          if (done) return;
          done = true;
          controller.error(e);
        };
        req.on('error', fail);
        req.on('close', () => {
          if (!req.complete) fail(new Error('client closed the connection before the request body was complete'));
        });
      },
      pull() {
        req.resume();
      },
      cancel() {
        done = true;
        req.resume();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: BODY_HIGH_WATER_MARK }),
  );
}

/** Write a web `Response` onto a Node response, adding any CORS header it lacks. */
export async function writeWebResponse(res: ServerResponse, response: Response, method: string): Promise<void> {
  const setCookies = response.headers.getSetCookie();
  for (const [name, value] of response.headers) {
    if (name === 'set-cookie') continue;
    res.setHeader(name, value);
  }
  if (setCookies.length > 0) res.setHeader('set-cookie', setCookies);
  for (const [name, value] of Object.entries(CORS_HEADERS)) if (!res.hasHeader(name)) res.setHeader(name, value);
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;

  const body = response.body;
  if (!body || method === 'HEAD' || response.status === 204 || response.status === 304) {
    await body?.cancel().catch(() => undefined);
    res.end();
    return;
  }
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) {
        await reader.cancel().catch(() => undefined);
        return;
      }
      if (!res.write(value)) await drained(res);
    }
    res.end();
  } finally {
    reader.releaseLock();
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function internalError(res: ServerResponse): void {
  if (res.destroyed) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ errcode: 'M_UNKNOWN', error: 'Internal server error' });
  res.writeHead(500, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...CORS_HEADERS });
  res.end(body);
}

export interface RequestTracker {
  /** Requests being answered now. */
  readonly inFlight: number;
  /** Abort every request being answered (its `Request.signal` fires). */
  abortAll(): void;
  /** Resolves when no request is in flight, or after `ms`. */
  idle(ms: number): Promise<void>;
}

/**
 * A Node `request` listener serving `handler`. The returned tracker lets the host abort and drain
 * in-flight requests (long-polling `/sync`) when it stops.
 */
export function createRequestListener(
  handler: FetchHandler,
  opts: { fallbackOrigin: string; log?: (e: unknown) => void },
): { listener: RequestListener; tracker: RequestTracker } {
  const log = opts.log ?? ((e: unknown) => console.error('node host:', e));
  const active = new Set<AbortController>();
  let idleWaiters: (() => void)[] = [];
  const settle = () => {
    if (active.size > 0) return;
    const w = idleWaiters;
    idleWaiters = [];
    for (const f of w) f();
  };

  const listener: RequestListener = (req, res) => {
    const controller = new AbortController();
    active.add(controller);
    // The client went away before the answer was finished: let the handler know.
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    void (async () => {
      let request: Request | undefined;
      try {
        let response: Response;
        try {
          request = toWebRequest(req, opts.fallbackOrigin, controller.signal);
          response = await handler(request);
        } catch (e) {
          if (!controller.signal.aborted) log(e);
          internalError(res);
          return;
        }
        await writeWebResponse(res, response, (req.method ?? 'GET').toUpperCase());
      } catch (e) {
        if (!controller.signal.aborted && !res.destroyed) log(e);
        if (!res.writableEnded) internalError(res);
      } finally {
        active.delete(controller);
        // A body the handler did not read (refused as too large, unknown endpoint): discard the rest,
        // so the connection can carry the next request.
        if (!req.complete) {
          if (request?.body && !request.body.locked) void request.body.cancel().catch(() => undefined);
          else req.resume();
        }
        settle();
      }
    })();
  };

  const tracker: RequestTracker = {
    get inFlight() {
      return active.size;
    },
    abortAll() {
      for (const c of active) c.abort();
    },
    idle(ms) {
      if (active.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        idleWaiters.push(done);
      });
    },
  };
  return { listener, tracker };
}
