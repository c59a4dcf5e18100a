/**
 * Federation plumbing: authenticating inbound server requests, signed outbound requests, and the
 * durable per-destination queues (stored in the `outbound` object store, so they survive restarts),
 * flushed with backoff and at once when the transport says a peer is reachable again.
 */
import { MatrixError } from '../api/errors.ts';
import { CanonicalJsonError, parseJson } from '../kernel/canonical-json.ts';
import type { JsonObject, JsonValue } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import type { WriteBatch } from '../store/store.ts';
import { randomId } from '../util/ids.ts';
import { FEDERATION_ORIGIN, type FederationTransport, type RemoteContext } from './transport.ts';
import { parseXMatrix, verifyXMatrix, xMatrixHeader } from './x-matrix.ts';

const utf8 = new TextEncoder();

/** A failed outbound federation request: the remote's Matrix error, or a transport failure (status 0). */
export class FederationError extends Error {
  override name = 'FederationError';
  constructor(readonly destination: string, readonly status: number, readonly errcode: string, message: string, readonly body?: unknown) {
    super(message);
  }
}

export interface OutboundRecord {
  destination: string;
  seq: number;
  kind: 'pdu' | 'edu';
  payload: JsonObject;
}

/** Largest transaction (spec: server-server API, "Transactions"): 50 PDUs and 100 EDUs. */
const MAX_PDUS = 50;
const MAX_EDUS = 100;
const MAX_BACKOFF_MS = 60_000;
/** While backing off, new traffic retries at once only if the last attempt is at least this old. */
const MIN_RETRY_GAP_MS = 2_000;

interface SenderState {
  running: boolean;
  again: boolean;
  failures: number;
  timer?: ReturnType<typeof setTimeout>;
  /** When the last attempt started (ms since the epoch). */
  lastAttempt?: number;
  /** The peer became reachable during the attempt in flight: if that attempt fails, retry at once, not after
   *  the backoff (the attempt may have started before the peer was back). */
  reachedDuringAttempt?: boolean;
  /** The transaction being sent: retried as it is, same id and content, until the peer takes it (spec). */
  pending?: { txnId: string; sent: OutboundRecord[]; body: JsonObject; mark?: number };
}

export interface RequestOptions {
  timeoutMs?: number;
  /**
   * Called once the request is built and signed, just before it goes: false stops it (NotDurable). The
   * sender uses it to send only what is durable while signing during the commit.
   */
  ready?: () => Promise<boolean>;
}

/** What `ready` said: what the request carries was read from a write that failed (read it again). */
class NotDurable extends Error {}

/** Transactions received lately, per origin and id, so a retried one gets the same answer (spec: one txnId, one transaction). */
const RECENT_TXNS = 1000;

export class FederationService {
  private senders = new Map<string, SenderState>();
  private isStopped = false;

  private recentTxns = new Map<string, Promise<JsonObject>>();

  constructor(private readonly hs: Homeserver, readonly transport: FederationTransport | undefined) {
    transport?.onPeerReachable?.((name) => {
      const s = this.senders.get(name);
      if (s) s.failures = 0;
      this.kick(name, true);
    });
  }

  /**
   * Process an inbound transaction once: a retry of the same `txnId` from the same origin (the sender
   * did not get our answer) gets the same answer, and its EDUs are not applied twice.
   */
  receiveTransaction(origin: string, txnId: string, process: () => Promise<JsonObject>): Promise<JsonObject> {
    const key = `${origin}\u0000${txnId}`;
    const seen = this.recentTxns.get(key);
    if (seen) return seen;
    const p = process();
    this.recentTxns.set(key, p);
    // A failure is not remembered: the sender will retry and it will be processed again.
    p.catch(() => this.recentTxns.delete(key));
    if (this.recentTxns.size > RECENT_TXNS) this.recentTxns.delete(this.recentTxns.keys().next().value!);
    return p;
  }

  get enabled(): boolean {
    return !!this.transport;
  }
  /** Whether `stop` was called (the node is shutting down: it neither sends nor should be sent to). */
  get stopped(): boolean {
    return this.isStopped;
  }

  /** Verify an inbound server request's X-Matrix header; returns the origin (401 M_UNAUTHORIZED otherwise). */
  async authenticate(req: Request, url: URL, content: unknown, remote: RemoteContext | undefined): Promise<string> {
    const header = req.headers.get('authorization');
    const p = header ? parseXMatrix(header) : undefined;
    if (!p) throw new MatrixError(401, 'M_UNAUTHORIZED', 'Missing or malformed X-Matrix authorization');
    if (p.destination !== undefined && p.destination !== this.hs.serverName) throw new MatrixError(401, 'M_UNAUTHORIZED', 'Request is for another destination');
    if (remote?.peer !== undefined && remote.peer !== p.origin) throw new MatrixError(401, 'M_UNAUTHORIZED', 'Origin does not match the connected peer');
    const ok = await verifyXMatrix(p, req.method.toUpperCase(), url.pathname + url.search, this.hs.serverName, content as JsonValue | undefined);
    if (!ok) throw new MatrixError(401, 'M_UNAUTHORIZED', 'Invalid X-Matrix signature');
    return p.origin;
  }

  /**
   * A signed request to another server; resolves with its JSON body, rejects with FederationError. With
   * `maxBytes`, a longer answer is refused (M_TOO_LARGE) as soon as it exceeds it, not read to its end.
   */
  async request<T = JsonObject>(destination: string, method: string, path: string, body?: JsonValue, opts: RequestOptions & { maxBytes?: number } = {}): Promise<T> {
    const res = await this.rawRequest(destination, method, path, body, opts);
    const text = opts.maxBytes === undefined ? await res.text() : await boundedText(res, opts.maxBytes, destination);
    let json: unknown;
    try {
      json = text ? parseJson(text, { rejectFloats: false }) : {};
    } catch (e) {
      throw new FederationError(destination, res.status, 'M_NOT_JSON', e instanceof CanonicalJsonError ? e.message : 'response is not JSON');
    }
    if (!res.ok) {
      const j = (json ?? {}) as JsonObject;
      throw new FederationError(destination, res.status, String(j.errcode ?? 'M_UNKNOWN'), String(j.error ?? `HTTP ${res.status}`), json);
    }
    return json as T;
  }

  /** A signed request returning the raw Response (media). */
  async rawRequest(destination: string, method: string, path: string, body?: JsonValue, opts: RequestOptions = {}): Promise<Response> {
    if (!this.transport) throw new FederationError(destination, 0, 'M_UNRECOGNIZED', 'Federation is not enabled on this node');
    if (destination === this.hs.serverName) throw new FederationError(destination, 0, 'M_UNKNOWN', 'Refusing to federate with ourselves');
    const url = new URL(path, FEDERATION_ORIGIN);
    const uri = url.pathname + url.search;
    const headers: Record<string, string> = {
      authorization: await xMatrixHeader(this.hs.signingKey, this.hs.serverName, destination, method, uri, body),
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const signal = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
    let res: Response;
    try {
      const bytes = body === undefined ? undefined : utf8.encode(JSON.stringify(body));
      if (opts.ready && !(await opts.ready())) throw new NotDurable();
      res = await this.transport.fetch(destination, new Request(url, { method, headers, body: bytes, signal }), bytes ? { body: bytes } : undefined);
    } catch (e) {
      if (e instanceof NotDurable) throw e;
      throw new FederationError(destination, 0, 'M_UNREACHABLE', `cannot reach ${destination}: ${(e as Error)?.message ?? e}`);
    }
    return res;
  }

  // --- durable outbound queues ---------------------------------------------------------------------

  /** Stage PDUs / EDUs for destinations in a write batch; call `kick` after the batch commits. */
  enqueue(b: WriteBatch, destinations: Iterable<string>, kind: 'pdu' | 'edu', payload: JsonObject, seq: number): string[] {
    const out: string[] = [];
    for (const d of destinations) {
      if (d === this.hs.serverName || !d) continue;
      b.put('outbound', { destination: d, seq, kind, payload } satisfies OutboundRecord);
      out.push(d);
    }
    return out;
  }

  /**
   * Send now what is queued for a destination (no-op without a transport). While the destination is
   * backing off after failures, new traffic waits for the retry timer (or tries at once when the last
   * attempt is a while ago), unless `now`: the transport said the peer is reachable again.
   */
  kick(destination: string, now = false): void {
    if (!this.transport || this.isStopped) return;
    let s = this.senders.get(destination);
    if (!s) this.senders.set(destination, (s = { running: false, again: false, failures: 0 }));
    if (s.timer) {
      if (!now && this.hs.clock() - (s.lastAttempt ?? 0) < MIN_RETRY_GAP_MS) return;
      clearTimeout(s.timer);
      s.timer = undefined;
    }
    if (s.running) {
      s.again = true;
      if (now) s.reachedDuringAttempt = true;
      return;
    }
    void this.run(destination, s);
  }

  /** After a restart: flush every destination with queued traffic. */
  async start(): Promise<void> {
    if (!this.transport) return;
    const rows = await this.hs.store.rooms.read((tx) => tx.query<OutboundRecord>('outbound'));
    for (const d of new Set(rows.map((r) => r.destination))) this.kick(d);
  }

  stop(): void {
    this.isStopped = true;
    for (const s of this.senders.values()) if (s.timer) clearTimeout(s.timer);
  }

  /** Destinations with queued traffic and how much (status, tests). */
  async queued(destination: string): Promise<number> {
    return this.hs.store.rooms.read((tx) => tx.count('outbound', { range: { lower: [destination], upper: [destination, []] } }));
  }

  private async run(destination: string, s: SenderState): Promise<void> {
    s.running = true;
    try {
      for (;;) {
        s.again = false;
        if (this.isStopped) break;
        if (!s.pending) {
          const mark = this.hs.store.readMark();
          const rows = await this.hs.store.rooms.read((tx) =>
            tx.query<OutboundRecord>('outbound', { range: { lower: [destination], upper: [destination, []] }, limit: MAX_PDUS + MAX_EDUS }),
          );
          if (rows.length === 0) break;
          const pdus: JsonObject[] = [];
          const edus: JsonObject[] = [];
          const sent: OutboundRecord[] = [];
          for (const r of rows) {
            if (r.kind === 'pdu' && pdus.length < MAX_PDUS) (pdus.push(r.payload), sent.push(r));
            else if (r.kind === 'edu' && edus.length < MAX_EDUS) (edus.push(r.payload), sent.push(r));
          }
          s.pending = { txnId: `${this.hs.clock()}_${randomId(6)}`, sent, body: { origin: this.hs.serverName, origin_server_ts: this.hs.clock(), pdus, edus }, mark };
        }
        const pending = s.pending;
        const { txnId, sent, body } = pending;
        s.lastAttempt = this.hs.clock();
        s.reachedDuringAttempt = false;
        try {
          // The queue is kicked as soon as a batch is visible, while it commits: the transaction is built and
          // signed meanwhile, and goes once what it read is durable (read again if a write failed).
          const ready = async () => {
            if (pending.mark === undefined) return true;
            if (!(await this.hs.store.durable(pending.mark))) return false;
            pending.mark = undefined;
            return true;
          };
          await this.request(destination, 'PUT', `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`, body, { ready });
        } catch (e) {
          if (e instanceof NotDurable) {
            s.pending = undefined;
            continue;
          }
          // A 4xx other than rate limiting will not get better by retrying: drop the transaction
          // (spec: PDUs a server refuses are not retried); otherwise back off and retry the same one.
          if (e instanceof FederationError && e.status >= 400 && e.status < 500 && e.status !== 429 && e.status !== 401 && e.status !== 404) {
            s.pending = undefined;
            await this.deleteSent(sent);
            continue;
          }
          if (s.reachedDuringAttempt) continue;
          s.failures++;
          const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(s.failures, 10));
          s.timer = setTimeout(() => {
            s.timer = undefined;
            this.kick(destination);
          }, delay);
          return;
        }
        s.failures = 0;
        s.pending = undefined;
        await this.deleteSent(sent);
      }
    } catch (e) {
      // After stop, the store may be closed under a send in flight: nothing to report.
      if (!this.isStopped) this.hs.log(e);
    } finally {
      s.running = false;
      if (s.again && !s.timer) this.kick(destination);
    }
  }

  private async deleteSent(sent: OutboundRecord[]): Promise<void> {
    const b = this.hs.store.batch();
    for (const r of sent) b.delete('outbound', [r.destination, r.seq]);
    await b.commit();
  }
}

/** A response body as text, refusing (and cancelling) it once it exceeds `maxBytes`. */
async function boundedText(res: Response, maxBytes: number, destination: string): Promise<string> {
  if (!res.body) return '';
  const declared = Number(res.headers.get('content-length') ?? NaN);
  const tooLarge = () => new FederationError(destination, res.status, 'M_TOO_LARGE', `answer over ${maxBytes} bytes`);
  if (declared > maxBytes) {
    await res.body.cancel().catch(() => {});
    throw tooLarge();
  }
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    parts.push(value);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const p of parts) (all.set(p, at), (at += p.byteLength));
  return new TextDecoder().decode(all);
}

