/** The requesting side of `/matrix-p2p/http/1` (see wire.ts): one Request out, one streamed Response back;
 *  with `keepAlive`, the stream stays open for the caller's next exchange. */
import type { MessageStream } from '@libp2p/interface';
import { encodeHead, FrameReader, headerPairs, parseResponseHead, sendMessage, WireError, toHeaders, type HttpLimits } from './wire.ts';

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

function abortError(signal: AbortSignal): Error {
  const r = signal.reason;
  return r instanceof Error ? r : new DOMException('The request was aborted', 'AbortError');
}

export interface SendOptions {
  /**
   * Keep the stream open for another exchange (wire.ts: keep-alive): our writable end stays open, and `done`
   * is called once, with `true` when the exchange completed cleanly (request sent, whole response read: the
   * stream may carry the next request), `false` when the stream was given up (it is aborted).
   */
  keepAlive?: { done(reusable: boolean): void };
  /** The request body, already read (it is sent in one piece, and `request.body` is not touched). */
  body?: Uint8Array | null;
}

/**
 * Send `request` over `stream` (already negotiated to the HTTP protocol) and resolve with the response once its
 * head arrives; the body streams in as the caller reads it. Rejects when the peer does not answer within
 * `limits.responseTimeoutMs`, when `request.signal` aborts, or when the stream fails. Only the request's path
 * and query are sent: the host part of its URL is ignored.
 */
export async function sendRequest(stream: MessageStream, request: Request, limits: HttpLimits, opts: SendOptions = {}): Promise<Response> {
  let reported = false;
  const report = (reusable: boolean) => {
    if (reported) return;
    reported = true;
    opts.keepAlive?.done(reusable);
  };
  const signal = request.signal;
  if (signal?.aborted) {
    stream.abort(abortError(signal));
    report(false);
    throw abortError(signal);
  }
  const reader = new FrameReader(stream, limits.maxResponseBodyBytes + 2 * limits.maxFrameBytes + 64);
  const url = new URL(request.url);
  const onAbort = () => stream.abort(abortError(signal));
  signal?.addEventListener('abort', onAbort, { once: true });
  let headDone = false;
  const fail = (e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    signal?.removeEventListener('abort', onAbort);
    reader.cancel(err);
    reader.release();
    if (stream.status === 'open') stream.abort(err);
    report(false);
  };

  // Send the head and the body; the response is read at the same time (the peer may answer early, e.g. 413).
  let sendError: unknown;
  const sending = (async () => {
    const head = encodeHead({ method: request.method, path: url.pathname + url.search, headers: headerPairs(request.headers) });
    const hasBody = request.method !== 'GET' && request.method !== 'HEAD' && (opts.body !== undefined ? opts.body !== null : request.body !== null);
    await sendMessage(stream, head, hasBody ? (opts.body ?? (request.body as ReadableStream<Uint8Array>)) : null, {
      maxFrameBytes: limits.maxFrameBytes,
      maxBytes: limits.maxRequestBodyBytes,
    });
    // Without keep-alive, closing our writable end tells the responder this was the stream's only request.
    if (!opts.keepAlive) await stream.close();
  })().catch((e) => {
    sendError = e;
    // A body we cannot send is fatal before the answer; after it (an early 413), the answer stands.
    if (!headDone) fail(e);
  });

  let head;
  try {
    head = parseResponseHead(await reader.head(limits.maxHeadBytes, limits.responseTimeoutMs, signal));
  } catch (e) {
    fail(e);
    if (signal?.aborted) throw abortError(signal);
    if (sendError !== undefined) throw sendError;
    throw e;
  } finally {
    headDone = true;
  }

  let received = 0;
  let finished = false;
  const finish = () => {
    finished = true;
    signal?.removeEventListener('abort', onAbort);
    reader.release();
    // Our writable end closes when the body is sent (keep-alive: the stream is reusable once it is sent);
    // nothing more to do unless sending failed.
    void sending.then(() => {
      if (sendError) {
        if (stream.status === 'open') stream.abort(sendError instanceof Error ? sendError : new Error(String(sendError)));
        report(false);
      } else report(!head.close && stream.status === 'open');
    });
  };
  const pullFrame = async (): Promise<Uint8Array | null> => {
    const frame = await reader.next(limits.maxFrameBytes, limits.idleTimeoutMs, signal);
    if (frame === null) throw new WireError('stream closed before the end of the response body');
    if (frame.byteLength === 0) return null;
    received += frame.byteLength;
    if (received > limits.maxResponseBodyBytes) throw new WireError(`response body exceeds ${limits.maxResponseBodyBytes} bytes`);
    return frame;
  };

  const headers = toHeaders(head.headers);
  if (NULL_BODY_STATUS.has(head.status) || request.method === 'HEAD') {
    // No body allowed: still read to END so the stream closes cleanly.
    void (async () => {
      try {
        while ((await pullFrame()) !== null);
        finish();
      } catch (e) {
        fail(e);
      }
    })();
    return new Response(null, { status: head.status, headers });
  }
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const frame = await pullFrame();
        if (frame === null) {
          finish();
          controller.close();
        } else controller.enqueue(frame);
      } catch (e) {
        fail(e);
        controller.error(signal?.aborted ? abortError(signal) : e);
      }
    },
    cancel(reason) {
      if (!finished) fail(reason instanceof Error ? reason : new Error('response body cancelled'));
    },
  });
  return new Response(body, { status: head.status, headers });
}
