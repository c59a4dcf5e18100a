/** The responding side of `/matrix-p2p/http/1` (see wire.ts): each Request in, the handler's Response out, for
 *  as many exchanges as the requester sends on the stream (keep-alive). */
import type { MessageStream } from '@libp2p/interface';
import { isRemotePathAllowed, resolveRemotePath } from './policy.ts';
import { encodeHead, FrameReader, headerPairs, parseRequestHead, sendMessage, TimeoutError, toHeaders, WireError, type HttpLimits, type RequestHead, type ResponseHead } from './wire.ts';

/** Handles one inbound request; `remoteServerName` is the authenticated peer (its key is its name); `body` is
 *  the request's body as read (null when it has none), for handlers that pass bytes on. */
export type RequestHandler = (request: Request, remoteServerName: string, body: Uint8Array | null) => Promise<Response>;

export interface ServeOptions {
  limits: HttpLimits;
  /** Paths remote peers may reach (default: federation, key and media endpoints). */
  isPathAllowed?: (pathname: string) => boolean;
  /** Where handler failures are reported. */
  log?: (message: string, error?: unknown) => void;
}

function matrixError(status: number, errcode: string, error: string): Response {
  return new Response(JSON.stringify({ errcode, error }), { status, headers: { 'content-type': 'application/json' } });
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new TimeoutError(`handler took over ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Serve one inbound stream: its exchanges one after the other, until the requester closes its writable end
 * (or stays silent between exchanges for `limits.keepAliveIdleMs`: then we close the stream). Each request body
 * is read whole (bounded by `maxRequestBodyBytes`: 413 over it) before the handler runs, so the handler gets an
 * ordinary Request it can forward anywhere (e.g. to a Service Worker); the response body streams out as the
 * handler produces it.
 */
export async function serveStream(stream: MessageStream, remoteServerName: string, handler: RequestHandler, opts: ServeOptions): Promise<void> {
  const { limits } = opts;
  const reader = new FrameReader(stream, limits.maxRequestBodyBytes + 2 * limits.maxFrameBytes + 64);
  try {
    for (let first = true; ; first = false) {
      let frame: Uint8Array | null;
      try {
        frame = await reader.next(limits.maxHeadBytes, first ? limits.requestHeadTimeoutMs : limits.keepAliveIdleMs);
      } catch (e) {
        if (!first && e instanceof TimeoutError) {
          // An idle kept-alive stream: end it cleanly (the requester sees the close and opens a fresh one).
          await stream.close().catch(() => {});
          return;
        }
        stream.abort(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      if (frame === null) {
        // The requester closed its writable end between exchanges: no more requests on this stream.
        if (stream.status === 'open') await stream.close().catch(() => {});
        if (first) opts.log?.('a stream closed before its request');
        return;
      }
      let bodyComplete = false;
      let response: Response;
      try {
        response = await readAndHandle(parseHead(frame), reader, remoteServerName, handler, opts, () => (bodyComplete = true));
      } catch (e) {
        if (e instanceof WireError || e instanceof TimeoutError || stream.status !== 'open') {
          // The peer broke the protocol or went away: no answer is owed.
          stream.abort(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        throw e;
      }
      const head: ResponseHead = { status: response.status, headers: headerPairs(response.headers) };
      if (!bodyComplete) head.close = true;
      await sendMessage(stream, encodeHead(head), response.body, { maxFrameBytes: limits.maxFrameBytes });
      // Answered before the request body was read (403, 413): discard what the peer is still sending, and the
      // stream with it (it cannot carry another exchange).
      if (!bodyComplete) {
        await stream.close().catch(() => {}); // delivers the answer first
        if (stream.status === 'open') stream.abort(new Error('request refused before its body was read'));
        return;
      }
    }
  } catch (e) {
    opts.log?.('serving a request failed', e);
    if (stream.status === 'open') stream.abort(e instanceof Error ? e : new Error(String(e)));
  } finally {
    reader.release();
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function parseHead(frame: Uint8Array): RequestHead {
  if (frame.byteLength === 0) throw new WireError('empty head');
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(frame));
  } catch {
    throw new WireError('head is not UTF-8 JSON');
  }
  return parseRequestHead(json);
}

async function readAndHandle(head: RequestHead, reader: FrameReader, remote: string, handler: RequestHandler, opts: ServeOptions, bodyRead: () => void): Promise<Response> {
  const { limits } = opts;
  const url = resolveRemotePath(head.path);
  if (!url) return matrixError(400, 'M_UNRECOGNIZED', 'Bad request path');
  if (!(opts.isPathAllowed ?? isRemotePathAllowed)(url.pathname)) {
    return matrixError(403, 'M_FORBIDDEN', 'Remote peers may only use the federation, key and media APIs');
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const frame = await reader.next(limits.maxFrameBytes, limits.idleTimeoutMs);
    if (frame === null) throw new WireError('stream closed before the end of the request body');
    if (frame.byteLength === 0) break;
    total += frame.byteLength;
    if (total > limits.maxRequestBodyBytes) return matrixError(413, 'M_TOO_LARGE', `Request body over ${limits.maxRequestBodyBytes} bytes`);
    chunks.push(frame);
  }
  bodyRead();
  let body: Uint8Array | undefined;
  if (total > 0) {
    if (head.method === 'GET' || head.method === 'HEAD') return matrixError(400, 'M_UNRECOGNIZED', `${head.method} with a body`);
    body = chunks.length === 1 ? chunks[0]! : new Uint8Array(total);
    if (chunks.length > 1) {
      let off = 0;
      for (const c of chunks) (body.set(c, off), (off += c.byteLength));
    }
  }
  let request: Request;
  try {
    request = new Request(url, { method: head.method, headers: toHeaders(head.headers), body: body as BodyInit | undefined });
  } catch (e) {
    return matrixError(400, 'M_UNRECOGNIZED', `Bad request: ${(e as Error).message}`);
  }
  try {
    return await withTimeout(handler(request, remote, body ?? null), limits.handlerTimeoutMs);
  } catch (e) {
    if (e instanceof TimeoutError) return matrixError(504, 'M_UNKNOWN', 'The homeserver did not answer in time');
    opts.log?.('request handler failed', e);
    return matrixError(500, 'M_UNKNOWN', 'Internal error');
  }
}
