/**
 * The typed endpoint table (architecture practice 2). Each endpoint is declared once: method, path,
 * auth, request schemas, a spec link, and its handler. The router, the 404/405 `M_UNRECOGNIZED`
 * behaviour and the test client are all derived from the table.
 */
import type * as v from 'valibot';
import type { Homeserver } from '../homeserver.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** Who may call: nobody in particular, a logged-in user (Bearer token), optionally a user, or a federating server. */
export type AuthKind = 'none' | 'user' | 'optional-user' | 'server';

export interface Requester {
  userId: string;
  deviceId: string;
  token: string;
}

export interface RequestContext<B, Q> {
  hs: Homeserver;
  request: Request;
  /** Path parameters, already percent-decoded. */
  params: Record<string, string>;
  query: Q;
  /** The validated JSON body (or `undefined` for endpoints without one). */
  body: B;
  /** The raw body for endpoints declared `rawBody` (media upload). */
  raw?: Uint8Array;
  /** The caller for `user` endpoints (and `optional-user` ones when a token was given). */
  user: Requester;
  /** The calling server for `server` endpoints. */
  origin?: string;
}

/** A handler returns a JSON body (status 200), `{status, body}`, or a ready Response. */
export type HandlerResult = unknown | { status: number; body: unknown } | Response;

export interface Endpoint<B = unknown, Q = Record<string, string | undefined>> {
  method: Method;
  /** rou3 pattern, e.g. `/_matrix/client/v3/rooms/:roomId/send/:eventType/:txnId`. */
  path: string;
  auth: AuthKind;
  /** Schema of the JSON body; endpoints that take none leave it out (a body is then ignored). */
  body?: v.GenericSchema<unknown, B>;
  /** Schema of the query parameters (values are strings; arrays for repeated keys declared in `repeatedQuery`). */
  query?: v.GenericSchema<unknown, Q>;
  repeatedQuery?: string[];
  /** The body is bytes, not JSON (media upload). */
  rawBody?: boolean;
  /** Reject bodies larger than this many bytes with 413 M_TOO_LARGE. */
  maxBodyBytes?: number | ((hs: Homeserver) => number);
  /**
   * Work to start on the parsed JSON body before the request is authenticated, side by side with it (a
   * server request's X-Matrix check). It must be harmless whoever sent the request: it may read and compute,
   * never write or let anything be seen. The handler finds its results by itself.
   */
  early?: (hs: Homeserver, json: unknown) => void;
  /** Link to the spec section. */
  spec: string;
  handler: (ctx: RequestContext<B, Q>) => Promise<HandlerResult> | HandlerResult;
}

/** Declare an endpoint with its types inferred from its schemas. */
export function endpoint<B = undefined, Q = Record<string, string | undefined>>(e: Endpoint<B, Q>): AnyEndpoint {
  return e as unknown as AnyEndpoint;
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyEndpoint = Endpoint<any, any>;

export const jsonResult = (status: number, body: unknown) => ({ status, body, __result: true as const });

/**
 * A long-poll's answer (`/sync`): `run` computes the body, calling `waiting()` when it starts to wait for
 * news. From then on the router answers 200 at once and sends the body when `run` settles (see
 * `createApiRouter`); `signal` aborts when the client goes away.
 */
export interface LongPoll {
  __longPoll: true;
  run(waiting: () => void, signal: AbortSignal): Promise<unknown>;
}
export const longPoll = (run: LongPoll['run']): LongPoll => ({ __longPoll: true, run });
export function isLongPoll(x: unknown): x is LongPoll {
  return typeof x === 'object' && x !== null && (x as { __longPoll?: unknown }).__longPoll === true;
}

export function isJsonResult(x: unknown): x is { status: number; body: unknown; __result: true } {
  return typeof x === 'object' && x !== null && (x as { __result?: unknown }).__result === true;
}
