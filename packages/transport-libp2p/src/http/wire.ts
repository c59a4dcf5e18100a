/**
 * HTTP over one libp2p stream: the framing of `/matrix-p2p/http/1`.
 *
 * Every message on the stream is a frame: an unsigned LEB128 varint length, then that many bytes.
 *
 *   requester → responder:  HEAD  BODY*  END   [ HEAD  BODY*  END ... ]   then closes its writable end
 *   responder → requester:  HEAD  BODY*  END   [ HEAD  BODY*  END ... ]   then closes its writable end
 *
 *   HEAD  a JSON object in UTF-8: request  {"method": "PUT", "path": "/_matrix/...?query", "headers": [[name, value], ...]}
 *                                 response {"status": 200, "headers": [[name, value], ...]}  (+ "close": true when
 *                                          the responder ends the stream after this answer)
 *   BODY  1 to `maxFrameBytes` bytes of the body
 *   END   an empty frame: the body is complete
 *
 * A stream that closes before END, or is reset, is a failed exchange (the requester's promise rejects, or
 * its response body errors). The responder may answer before reading the whole request body (413): the
 * requester reads the response while it is still sending (and such a stream is then aborted).
 *
 * Keep-alive: one stream carries one exchange at a time, and may carry another once the previous one is complete
 * (the requester has sent END and read the response's END): the requester sends the next HEAD on the same stream
 * instead of opening a new one (a new stream costs a data channel and a protocol negotiation). The requester
 * closes its writable end when it has nothing more to send; the responder then closes its own. A responder
 * closes a stream that stays idle between exchanges for `keepAliveIdleMs`; a requester must not reuse a
 * stream whose remote end is closed. A reused stream may close under a request before the response HEAD (the
 * responder closed it idle as the request went out), so requesters send only idempotent requests (GET, PUT...)
 * on reused streams, and send such a request again on a fresh stream when that happens; a request that must
 * not be sent twice (POST) always gets a fresh stream. Many streams run side by side on one connection.
 *
 * No dependency on libp2p here beyond the `MessageStream` shape, so this runs over anything stream-like.
 */
import type { MessageStream } from '@libp2p/interface';
// libp2p streams call Promise.withResolvers (Node 22+): make sure it exists wherever this module runs.
import '../shims.ts';

export interface HttpLimits {
  /** Largest HEAD frame (JSON), bytes. */
  maxHeadBytes: number;
  /** Largest BODY frame, bytes; bodies are cut into frames of at most this size. */
  maxFrameBytes: number;
  /** Largest request body a node accepts (413 over it), bytes. */
  maxRequestBodyBytes: number;
  /** Largest response body a node accepts (the body stream errors over it), bytes. */
  maxResponseBodyBytes: number;
  /** How long a requester waits for the response HEAD, ms (the request's own AbortSignal may end it sooner). */
  responseTimeoutMs: number;
  /** How long a responder waits for the request HEAD, ms. */
  requestHeadTimeoutMs: number;
  /** Longest silence while a body is being received, ms. */
  idleTimeoutMs: number;
  /** Longest time a responder's handler may take before the transport answers 504, ms. */
  handlerTimeoutMs: number;
  /** A responder closes a stream idle this long between two exchanges, ms (requesters stop reusing theirs sooner). */
  keepAliveIdleMs: number;
}

export const DEFAULT_LIMITS: HttpLimits = {
  maxHeadBytes: 64 * 1024,
  maxFrameBytes: 64 * 1024,
  maxRequestBodyBytes: 32 * 1024 * 1024,
  maxResponseBodyBytes: 64 * 1024 * 1024,
  responseTimeoutMs: 60_000,
  requestHeadTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  handlerTimeoutMs: 120_000,
  keepAliveIdleMs: 60_000,
};

export interface RequestHead {
  method: string;
  path: string;
  headers: [string, string][];
}

export interface ResponseHead {
  status: number;
  headers: [string, string][];
  /** The responder ends the stream after this answer: it cannot carry another exchange (keep-alive). */
  close?: boolean;
}

export class WireError extends Error {
  override name = 'WireError';
}

export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

// --- varint ----------------------------------------------------------------------------------------------

export function encodeVarint(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varint: ${n}`);
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

/** One frame: varint length, then `payload` (copied into one buffer so it goes out in one send). */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const prefix = encodeVarint(payload.byteLength);
  const out = new Uint8Array(prefix.byteLength + payload.byteLength);
  out.set(prefix, 0);
  out.set(payload, prefix.byteLength);
  return out;
}

export const END_FRAME = encodeFrame(new Uint8Array(0));

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeHead(head: RequestHead | ResponseHead): Uint8Array {
  return encodeFrame(encoder.encode(JSON.stringify(head)));
}

// --- reading ---------------------------------------------------------------------------------------------

interface ChunkLike {
  byteLength: number;
  subarray(start?: number, end?: number): Uint8Array;
}

/** Bytes of a `message` event (a Uint8Array or a Uint8ArrayList). */
function bytesOf(data: Uint8Array | ChunkLike): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}

/**
 * Reads frames from a stream. It listens for 'message' from construction on (so nothing is left in the
 * stream's own buffer), keeps at most `maxBuffered` unread bytes (more is a protocol violation: the stream is
 * aborted), and turns a reset into an error and a clean remote close into end of input.
 */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;
  private error: Error | undefined;
  private cancelled = false;
  private wake: (() => void) | undefined;
  private readonly detach: () => void;

  constructor(
    private readonly stream: MessageStream,
    private readonly maxBuffered: number,
  ) {
    const onMessage = (evt: Event) => {
      if (this.error) return;
      const bytes = bytesOf((evt as unknown as { data: Uint8Array | ChunkLike }).data);
      if (bytes.byteLength === 0) return;
      this.chunks.push(bytes);
      this.buffered += bytes.byteLength;
      if (this.buffered > this.maxBuffered) {
        this.fail(new WireError(`peer sent more than ${this.maxBuffered} unread bytes`));
        queueMicrotask(() => stream.abort(this.error!));
        return;
      }
      this.notify();
    };
    const onClose = (evt: Event) => {
      const err = (evt as unknown as { error?: Error }).error;
      if (err) this.fail(err);
      else this.end();
    };
    const onRemoteCloseWrite = () => this.end();
    stream.addEventListener('message', onMessage);
    stream.addEventListener('close', onClose);
    stream.addEventListener('remoteCloseWrite', onRemoteCloseWrite);
    this.detach = () => {
      stream.removeEventListener('message', onMessage);
      stream.removeEventListener('close', onClose);
      stream.removeEventListener('remoteCloseWrite', onRemoteCloseWrite);
    };
    const remoteWrite = (stream as { remoteWriteStatus?: string }).remoteWriteStatus;
    if (stream.status !== 'open' || (remoteWrite !== undefined && remoteWrite !== 'writable') || stream.readableEnded) {
      // Already closed by the remote (whatever was buffered is delivered by the 'message' listener above).
      queueMicrotask(() => this.end());
    }
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
  private end(): void {
    this.ended = true;
    this.notify();
  }
  private fail(err: Error): void {
    if (!this.error) this.error = err;
    this.notify();
  }

  /** Fail pending and future reads with `err` (the caller gave up on the stream). */
  cancel(err: Error): void {
    this.cancelled = true;
    this.fail(err);
  }

  /** Stop listening (the stream is done with, or handed on). */
  release(): void {
    this.detach();
  }

  /** Bytes received but not yet read. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  private peek(n: number): Uint8Array | undefined {
    if (this.buffered < n) return undefined;
    if (this.chunks[0]!.byteLength >= n) return this.chunks[0]!.subarray(0, n);
    const out = new Uint8Array(n);
    let off = 0;
    for (const c of this.chunks) {
      const take = Math.min(c.byteLength, n - off);
      out.set(c.subarray(0, take), off);
      off += take;
      if (off === n) break;
    }
    return out;
  }

  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const want = n - off;
      if (c.byteLength <= want) {
        out.set(c, off);
        off += c.byteLength;
        this.chunks.shift();
      } else {
        out.set(c.subarray(0, want), off);
        this.chunks[0] = c.subarray(want);
        off += want;
      }
    }
    this.buffered -= n;
    return out;
  }

  /** Parse one frame from the buffer: [header bytes, payload length], or undefined if incomplete. */
  private parseLength(maxLength: number): [number, number] | undefined {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.peek(i + 1);
      if (!b) return undefined;
      const byte = b[i]!;
      value += (byte & 0x7f) * scale;
      if (value > maxLength) throw new WireError(`frame of ${value}+ bytes exceeds the limit of ${maxLength}`);
      if ((byte & 0x80) === 0) return [i + 1, value];
      scale *= 0x80;
    }
    throw new WireError('malformed frame length');
  }

  /**
   * The next frame's payload (an empty Uint8Array is the END frame), or null when the remote closed cleanly
   * between frames. Rejects on reset, on a frame longer than `maxLength`, on a stream that closes mid-frame,
   * or after `timeoutMs` of waiting (then the caller decides what to do with the stream).
   */
  async next(maxLength: number, timeoutMs: number, signal?: AbortSignal): Promise<Uint8Array | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.cancelled) throw this.error!;
      // Frames that arrived before a reset are still delivered (a responder may answer, then reset the stream
      // to refuse the rest of a request body).
      const parsed = this.parseLength(maxLength);
      if (parsed && this.buffered >= parsed[0] + parsed[1]) {
        this.take(parsed[0]);
        return this.take(parsed[1]);
      }
      if (this.error) throw this.error;
      if (this.ended) {
        if (this.buffered === 0) return null;
        throw new WireError('stream closed in the middle of a frame');
      }
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(`no data from the peer for ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        const onAbort = () => done();
        signal?.addEventListener('abort', onAbort, { once: true });
        function done() {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }
        this.wake = done;
      });
    }
  }

  /** The next frame, which must be a HEAD: parsed JSON. */
  async head(maxLength: number, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    const frame = await this.next(maxLength, timeoutMs, signal);
    if (frame === null) throw new WireError('stream closed before the head');
    if (frame.byteLength === 0) throw new WireError('empty head');
    try {
      return JSON.parse(decoder.decode(frame));
    } catch {
      throw new WireError('head is not UTF-8 JSON');
    }
  }
}

// --- writing ---------------------------------------------------------------------------------------------

/** Send bytes, waiting for the stream to drain when its buffer is full. */
export async function sendBytes(stream: MessageStream, bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
  if (!stream.send(bytes)) await stream.onDrain(signal ? { signal } : undefined);
}

const NOT_YET = Symbol('not yet');

/** Resolves after the current macrotask: whatever is already queued (an in-memory body's chunks) goes first. */
function afterMacrotask(): Promise<typeof NOT_YET> {
  return new Promise((resolve) => {
    const g = globalThis as { setImmediate?: (fn: () => void) => unknown };
    if (typeof g.setImmediate === 'function') {
      g.setImmediate(() => resolve(NOT_YET));
      return;
    }
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve(NOT_YET);
    };
    ch.port2.postMessage(0);
  });
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) (out.set(p, off), (off += p.byteLength));
  return out;
}

/**
 * Send a whole message: its HEAD frame, the body (a Uint8Array or a ReadableStream) as BODY frames of at most
 * `maxFrameBytes`, then END. Frames are coalesced into one `send` while data is at hand (a small message is
 * one send, not three); whatever is buffered goes out as soon as the body source has to wait, or reaches
 * `maxFrameBytes`. Resolves with the number of body bytes.
 */
export async function sendMessage(
  stream: MessageStream,
  head: Uint8Array,
  body: Uint8Array | ReadableStream<Uint8Array> | null,
  opts: { maxFrameBytes: number; maxBytes?: number; signal?: AbortSignal },
): Promise<number> {
  const queued: Uint8Array[] = [head];
  let queuedBytes = head.byteLength;
  let total = 0;
  const flush = async () => {
    if (queuedBytes === 0) return;
    const bytes = concat(queued, queuedBytes);
    queued.length = 0;
    queuedBytes = 0;
    await sendBytes(stream, bytes, opts.signal);
  };
  const push = async (chunk: Uint8Array) => {
    for (let off = 0; off < chunk.byteLength; off += opts.maxFrameBytes) {
      const part = chunk.subarray(off, Math.min(chunk.byteLength, off + opts.maxFrameBytes));
      total += part.byteLength;
      if (opts.maxBytes !== undefined && total > opts.maxBytes) throw new WireError(`body exceeds ${opts.maxBytes} bytes`);
      const frame = encodeFrame(part);
      queued.push(frame);
      queuedBytes += frame.byteLength;
      if (queuedBytes >= opts.maxFrameBytes) await flush();
    }
  };
  if (body instanceof Uint8Array) {
    await push(body);
  } else if (body) {
    const reader = body.getReader();
    try {
      for (;;) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
        const pending = reader.read();
        let next = await Promise.race([pending, afterMacrotask()]);
        if (next === NOT_YET) {
          // The source has to wait (a slow producer): send what we have meanwhile.
          await flush();
          next = await pending;
        }
        if (next.done) break;
        if (next.value && next.value.byteLength > 0) await push(next.value);
      }
    } catch (e) {
      await reader.cancel(e).catch(() => {});
      throw e;
    } finally {
      reader.releaseLock();
    }
  }
  queued.push(END_FRAME);
  queuedBytes += END_FRAME.byteLength;
  await flush();
  return total;
}

// --- heads -----------------------------------------------------------------------------------------------

/** Headers that describe one hop, not the message: never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host', 'proxy-authorization', 'proxy-connection', 'content-length']);

export function headerPairs(headers: Headers): [string, string][] {
  const out: [string, string][] = [];
  headers.forEach((value, name) => {
    if (!HOP_BY_HOP.has(name.toLowerCase())) out.push([name, value]);
  });
  return out;
}

function isHeaderList(x: unknown): x is [string, string][] {
  return Array.isArray(x) && x.length <= 256 && x.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string');
}

const METHOD = /^[A-Z]{1,16}$/;

export function parseRequestHead(x: unknown): RequestHead {
  const h = x as Partial<RequestHead> | null;
  if (!h || typeof h !== 'object') throw new WireError('request head: not an object');
  if (typeof h.method !== 'string' || !METHOD.test(h.method)) throw new WireError('request head: bad method');
  if (typeof h.path !== 'string' || !h.path.startsWith('/') || h.path.startsWith('//') || h.path.length > 8192) throw new WireError('request head: bad path');
  if (!isHeaderList(h.headers)) throw new WireError('request head: bad headers');
  return { method: h.method, path: h.path, headers: h.headers };
}

export function parseResponseHead(x: unknown): ResponseHead {
  const h = x as Partial<ResponseHead> | null;
  if (!h || typeof h !== 'object') throw new WireError('response head: not an object');
  if (typeof h.status !== 'number' || !Number.isInteger(h.status) || h.status < 200 || h.status > 599) throw new WireError('response head: bad status');
  if (!isHeaderList(h.headers)) throw new WireError('response head: bad headers');
  if (h.close !== undefined && typeof h.close !== 'boolean') throw new WireError('response head: bad close');
  return h.close ? { status: h.status, headers: h.headers, close: true } : { status: h.status, headers: h.headers };
}

/** Headers from a HEAD, dropping any the platform refuses instead of failing the exchange. */
export function toHeaders(pairs: [string, string][]): Headers {
  const headers = new Headers();
  for (const [k, v] of pairs) {
    if (HOP_BY_HOP.has(k.toLowerCase())) continue;
    try {
      headers.append(k, v);
    } catch {
      /* an invalid name or value: dropped */
    }
  }
  return headers;
}
