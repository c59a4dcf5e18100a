/**
 * The slice of the Service Worker API this package uses. TypeScript's `webworker` lib cannot be combined
 * with the `DOM` lib the workspace compiles with, so the few interfaces are declared here; the real
 * `self` of a Service Worker satisfies them, and so does the fake scope of the Node tests.
 */

export interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}

export interface FetchEvent extends ExtendableEvent {
  readonly request: Request;
  /** The id of the client (window, worker) that made the request; '' for navigations. */
  readonly clientId: string;
  respondWith(response: Response | Promise<Response>): void;
}

export interface ExtendableMessageEvent extends ExtendableEvent {
  readonly data: unknown;
  readonly ports: readonly MessagePort[];
}

export interface SwClient {
  readonly id: string;
  readonly url: string;
}

export interface SwClients {
  get(id: string): Promise<SwClient | undefined>;
  claim(): Promise<void>;
  /** The pages to tell that the worker needs a transport host (optional: the Node tests' fake has none). */
  matchAll?(opts: { type: 'window' }): Promise<readonly { postMessage(message: unknown): void }[]>;
}

export interface SwStorage {
  estimate(): Promise<StorageEstimate>;
}

/** `self` in a Service Worker, as far as sw-host is concerned. */
export interface SwScope {
  readonly location: { readonly origin: string; readonly href: string };
  readonly registration: { readonly scope: string };
  readonly clients: SwClients;
  readonly caches: CacheStorage;
  readonly navigator?: { readonly storage?: SwStorage };
  skipWaiting(): Promise<void>;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  addEventListener(type: 'install' | 'activate', listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: 'fetch', listener: (event: FetchEvent) => void): void;
  addEventListener(type: 'message', listener: (event: ExtendableMessageEvent) => void): void;
}
