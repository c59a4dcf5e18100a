/**
 * Request dispatch derived from the endpoint table: routing (rou3), `r0` → `v3` aliasing, CORS,
 * authentication, body/query validation (valibot) and the mapping of every failure to a Matrix error.
 */
import { addRoute, createRouter, findRoute } from 'rou3';
import * as v from 'valibot';
import { CanonicalJsonError, parseJson } from '../kernel/canonical-json.ts';
import type { Homeserver } from '../homeserver.ts';
import type { RemoteContext } from '../federation/transport.ts';
import { isJsonResult, isLongPoll, type AnyEndpoint as Endpoint, type LongPoll, type Method, type Requester } from './endpoint.ts';
import { MatrixError, badJson, missingToken, notJson, tooLarge, unknownToken, unrecognized } from './errors.ts';

export const DEFAULT_MAX_BODY = 1024 * 1024;

export const CORS_HEADERS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'X-Requested-With, Content-Type, Authorization, Date',
  'access-control-expose-headers': 'Content-Type, Content-Length, Content-Disposition, Server-Timing',
};

/** The body text of each Response that `jsonResponse` made (weakly held: it goes with its Response). */
const jsonTexts = new WeakMap<Response, string>();

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  const text = JSON.stringify(body);
  const res = new Response(text, { status, headers: { 'content-type': 'application/json', ...CORS_HEADERS, ...headers } });
  jsonTexts.set(res, text);
  return res;
}

/**
 * The JSON text of a Response that `jsonResponse` made and nobody has read, else undefined: a host that
 * re-bodies or forwards answers (the Service Worker, the libp2p bridge) takes the text as it is instead of
 * reading the body stream back.
 */
export function jsonResponseText(res: Response): string | undefined {
  return res.bodyUsed ? undefined : jsonTexts.get(res);
}

/** For each long-poll answer whose body comes later (see `createApiRouter`): settles when that body is sent. */
const lateBodies = new WeakMap<Response, Promise<void>>();

/**
 * When the body of `res` will have been sent, if it comes later (a long-poll that waited): a host keeps the
 * request alive until then (a Service Worker's `waitUntil`). Undefined for every other answer.
 */
export function lateBody(res: Response): Promise<void> | undefined {
  return lateBodies.get(res);
}

export function errorResponse(e: MatrixError): Response {
  return jsonResponse(e.status, e.body());
}

/** `/_matrix/client/r0/...` and `/_matrix/media/r0/...` are the v3 endpoints (clients.md: Hydrogen uses r0). */
function normalisePath(path: string): string {
  return path.replace(/^\/_matrix\/(client|media)\/r0\//, '/_matrix/$1/v3/');
}

export interface Router {
  handle(request: Request, remote?: RemoteContext): Promise<Response>;
  endpoints: readonly Endpoint[];
}

export function createApiRouter(hs: Homeserver, endpoints: readonly Endpoint[], log: (e: unknown) => void = console.error): Router {
  const byMethod = createRouter<Endpoint>();
  const anyMethod = createRouter<Set<Method>>();
  for (const e of endpoints) {
    addRoute(byMethod, e.method, e.path, e);
    const found = findRoute(anyMethod, '', e.path);
    if (found && found.data) found.data.add(e.method);
    else addRoute(anyMethod, '', e.path, new Set([e.method]));
  }

  async function authenticate(req: Request, url: URL, required: boolean): Promise<Requester | undefined> {
    const header = req.headers.get('authorization');
    let token: string | undefined;
    if (header) {
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      if (!m) throw unknownToken('Malformed Authorization header');
      token = m[1];
    } else {
      token = url.searchParams.get('access_token') ?? undefined;
    }
    if (!token) {
      if (required) throw missingToken();
      return undefined;
    }
    const who = await hs.auth.resolveToken(token);
    if (!who) throw unknownToken();
    return who;
  }

  /**
   * A long-poll that answers before it has to wait answers the usual way. Once it waits, the head (200, JSON)
   * is sent at once and the body when there is news: the head's trip to the client (about 1 ms from a
   * Service Worker to its page, `npm run bench -- sw-host`) is then made while nothing happens, not after the
   * news. The body, like every answer, leaves only once what it read is durable. A failure after the head
   * errors the body: the client sees a dropped connection and polls again, as after any dropped long-poll.
   */
  async function longPollAnswer(poll: LongPoll, req: Request, mark: number): Promise<Response> {
    const gone = new AbortController();
    let waiting!: () => void;
    const waited = new Promise<undefined>((r) => (waiting = () => r(undefined)));
    const body = poll.run(waiting, AbortSignal.any([req.signal, gone.signal]));
    const first = await Promise.race([body.then((b) => ({ b })), waited]);
    if (first) return jsonResponse(200, first.b ?? {});
    let cancelled = false;
    let sent!: Promise<void>;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        sent = body
          .then(async (b) => {
            const bytes = utf8Encoder.encode(JSON.stringify(b ?? {})); // (while the write it read commits)
            if (!(await hs.store.durable(mark))) throw new MatrixError(503, 'M_UNKNOWN', 'A write failed while this request was answered');
            if (!cancelled) c.enqueue(bytes);
            if (!cancelled) c.close();
          })
          .catch((e) => {
            if (cancelled) return;
            if (!(e instanceof MatrixError)) log(e);
            c.error(e);
          });
      },
      cancel() {
        cancelled = true;
        gone.abort();
      },
    });
    const res = new Response(stream, { status: 200, headers: { 'content-type': 'application/json', ...CORS_HEADERS } });
    lateBodies.set(res, sent);
    return res;
  }

  async function dispatch(req: Request, remote: RemoteContext | undefined, mark: number): Promise<Response> {
    const url = new URL(req.url);
    const method = req.method.toUpperCase();
    if (method === 'OPTIONS') return new Response(null, { status: 204, headers: CORS_HEADERS });
    const path = normalisePath(url.pathname);
    // Remote peers reach federation, key and media endpoints only, never the client API (ARCHITECTURE.md).
    if (remote && !/^\/_matrix\/(federation|key|media)\//.test(path)) throw new MatrixError(403, 'M_FORBIDDEN', 'Remote peers may only use the federation API');
    const head = method === 'HEAD';
    const match = findRoute(byMethod, head ? 'GET' : method, path);
    if (!match) {
      if (findRoute(anyMethod, '', path)) throw unrecognized(405, `${method} is not allowed here`);
      throw unrecognized(404);
    }
    const e = match.data;
    const params: Record<string, string> = {};
    for (const [k, raw] of Object.entries(match.params ?? {})) {
      try {
        params[k] = decodeURIComponent(raw);
      } catch {
        throw new MatrixError(400, 'M_INVALID_PARAM', `malformed path parameter ${k}`);
      }
    }
    let user: Requester | undefined;
    let origin: string | undefined;
    if (e.auth === 'user' || e.auth === 'optional-user') user = await authenticate(req, url, e.auth === 'user');

    // Body.
    let body: unknown = undefined;
    let raw: Uint8Array | undefined;
    if (e.body || e.rawBody) {
      const max = typeof e.maxBodyBytes === 'function' ? e.maxBodyBytes(hs) : e.maxBodyBytes ?? DEFAULT_MAX_BODY;
      const declared = Number(req.headers.get('content-length') ?? NaN);
      if (declared > max) throw tooLarge(`request body over ${max} bytes`);
      const bytes = new Uint8Array(await req.arrayBuffer());
      if (bytes.length > max) throw tooLarge(`request body over ${max} bytes`);
      if (e.rawBody) raw = bytes;
      else {
        const json = parseJsonBody(bytes);
        if (e.early) {
          try {
            e.early(hs, json);
          } catch (err) {
            log(err);
          }
        }
        // Server requests are authenticated over their exact body, before its shape is judged.
        if (e.auth === 'server') origin = await hs.federation.authenticate(req, url, bytes.length ? json : undefined, remote);
        body = validateJsonBody(e, json);
      }
    }
    if (e.auth === 'server' && origin === undefined) origin = await hs.federation.authenticate(req, url, undefined, remote);

    // Query parameters (after authentication: an unauthenticated request learns nothing about its query).
    const rawQuery: Record<string, string | string[]> = {};
    for (const [k, val] of url.searchParams) {
      if (k === 'access_token') continue;
      if (e.repeatedQuery?.includes(k)) ((rawQuery[k] as string[] | undefined) ??= [] as string[], (rawQuery[k] as string[]).push(val));
      else if (!(k in rawQuery)) rawQuery[k] = val;
    }
    let query: unknown = rawQuery;
    if (e.query) {
      const r = v.safeParse(e.query, rawQuery);
      if (!r.success) throw new MatrixError(400, 'M_INVALID_PARAM', describeIssues(r.issues));
      query = r.output;
    }

    const result = await e.handler({ hs, request: req, params, query, body, raw, user: user as Requester, origin });
    if (result instanceof Response) return result;
    if (isLongPoll(result)) return longPollAnswer(result, req, mark);
    if (isJsonResult(result)) return jsonResponse(result.status, result.body);
    return jsonResponse(200, result ?? {});
  }

  return {
    endpoints,
    async handle(req, remote) {
      const t0 = performance.now();
      const mark = hs.store.readMark();
      let res: Response;
      try {
        res = await dispatch(req, remote, mark);
      } catch (err) {
        if (err instanceof MatrixError) res = errorResponse(err);
        else {
          log(err);
          res = errorResponse(new MatrixError(500, 'M_UNKNOWN', 'Internal server error'));
        }
      }
      // Nothing leaves before what it may have read is durable (the store shows writes while they commit; a
      // long-poll's late body waits on its own).
      if (!lateBodies.has(res) && !(await hs.store.durable(mark))) {
        res = jsonResponse(503, { errcode: 'M_UNKNOWN', error: 'A write failed while this request was answered; try again' }, { 'retry-after': '1' });
      }
      // How long the homeserver itself took (Server-Timing, W3C): benchmarks and DevTools tell it apart from
      // the time spent reaching the worker or the peer. A handler's own Response may have immutable headers.
      try {
        res.headers.set('server-timing', `hs;dur=${(performance.now() - t0).toFixed(2)}`);
      } catch {
        /* immutable headers */
      }
      return res;
    },
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

function parseJsonBody(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw notJson('Body is not UTF-8');
  }
  let json: unknown;
  if (text.trim() === '') json = {};
  else {
    try {
      // Numbers JSON.parse would round are refused; floats are allowed here (event content of
      // older room versions may carry them) and refused where canonical JSON is required.
      json = parseJson(text, { rejectFloats: false });
    } catch (err) {
      if (err instanceof CanonicalJsonError) throw badJson(err.message);
      throw notJson();
    }
  }
  return json;
}

function validateJsonBody(e: Endpoint, json: unknown): unknown {
  // Every Matrix request body is a JSON object (valibot's object schemas would also let arrays through).
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw badJson('Request body must be a JSON object');
  const r = v.safeParse(e.body!, json);
  if (!r.success) throw badJson(describeIssues(r.issues));
  return r.output;
}

function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  const first = issues[0];
  const path = first.path?.map((p) => String(p.key)).join('.') ?? '';
  return path ? `${path}: ${first.message}` : first.message;
}
