/** The responding side of `/matrix-p2p/http/1` (see wire.ts): one Request in, the handler's Response out. */
import type { MessageStream } from '@libp2p/interface';
import { isRemotePathAllowed, resolveRemotePath } from './policy.ts';
import { encodeHead, FrameReader, headerPairs, parseRequestHead, sendMessage, TimeoutError, toHeaders, WireError, type HttpLimits } from './wire.ts';

/** Handles one inbound request; `remoteServerName` is the authenticated peer (its key is its name). */
export type RequestHandler = (request: Request, remoteServerName: string) => Promise<Response>;

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
 * Serve one inbound stream. The request body is read whole (bounded by `maxRequestBodyBytes`: 413 over it)
 * before the handler runs, so the handler gets an ordinary Request it can forward anywhere (e.g. to a Service
 * Worker); the response body streams out as the handler produces it.
 */
export async function serveStream(stream: MessageStream, remoteServerName: string, handler: RequestHandler, opts: ServeOptions): Promise<void> {
  const { limits } = opts;
  const reader = new FrameReader(stream, limits.maxRequestBodyBytes + 2 * limits.maxFrameBytes + 64);
  let bodyComplete = false;
  try {
    let response: Response;
    try {
      response = await readAndHandle(reader, remoteServerName, handler, opts, () => (bodyComplete = true));
    } catch (e) {
      if (e instanceof WireError || e instanceof TimeoutError || stream.status !== 'open') {
        // The peer broke the protocol or went away: no answer is owed.
        stream.abort(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      throw e;
    }
    await sendMessage(stream, encodeHead({ status: response.status, headers: headerPairs(response.headers) }), response.body, { maxFrameBytes: limits.maxFrameBytes });
    await stream.close();
    // Answered before the request body was read (403, 413): discard what the peer is still sending.
    if (!bodyComplete && stream.status === 'open') stream.abort(new Error('request refused before its body was read'));
  } catch (e) {
    opts.log?.('serving a request failed', e);
    if (stream.status === 'open') stream.abort(e instanceof Error ? e : new Error(String(e)));
  } finally {
    reader.release();
  }
}

async function readAndHandle(reader: FrameReader, remote: string, handler: RequestHandler, opts: ServeOptions, bodyRead: () => void): Promise<Response> {
  const { limits } = opts;
  const head = parseRequestHead(await reader.head(limits.maxHeadBytes, limits.requestHeadTimeoutMs));
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
    return await withTimeout(handler(request, remote), limits.handlerTimeoutMs);
  } catch (e) {
    if (e instanceof TimeoutError) return matrixError(504, 'M_UNKNOWN', 'The homeserver did not answer in time');
    opts.log?.('request handler failed', e);
    return matrixError(500, 'M_UNKNOWN', 'Internal error');
  }
}
