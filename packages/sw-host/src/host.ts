/**
 * The Service Worker host: wires a homeserver and an app-shell cache into a Service Worker scope.
 *
 * - `/_matrix/*` and `/.well-known/matrix/*`, whatever origin a request targets, are answered by the
 *   homeserver. It is opened lazily, once per run of the worker (the browser stops idle workers and
 *   starts them again for the next event); all its state is in IndexedDB, so a restart costs one cheap
 *   start-up and never data.
 * - Element Web's job for its own `sw.js`: `<img>` requests for authenticated media carry no token.
 *   Such a request from a page this worker controls is served as the page's own (see `trustedMedia`).
 * - Everything else on our origin: network first, falling back to the cache (precached app shell plus
 *   what was fetched before); offline navigations get the cached `index.html`.
 */
import { jsonResponseText, lateBody } from '@matrix-p2p/server-core';
import { deserializeRequest, exposeInbound, serializeResponse, serializeResponseHead, type WireRequest, type WireResponse } from '@matrix-p2p/transport-libp2p/bridge';
import type { WorkerFederation } from './federation.ts';
import { NEED_HOST, isWorkerRequest, type AnyWorkerReply, type WorkerRequest, type WorkerStatus } from './protocol.ts';
import type { ExtendableEvent, ExtendableMessageEvent, FetchEvent, SwScope } from './worker-types.ts';

/** What the host needs of a homeserver (server-core's `Homeserver` fits). */
export interface HomeserverLike {
  readonly serverName: string;
  handle(request: Request, remote?: { peer?: string }): Promise<Response>;
  stop(): Promise<void>;
  /** Base64 of the ed25519 signing seed (the libp2p node's identity derives from it). */
  nodeSeed?: () => Promise<string>;
}

export interface SwHostOptions {
  /** Opens (creating on first use) the homeserver; called once per worker run, again after a failure. */
  openHomeserver: (events: { onClosed: () => void }) => Promise<HomeserverLike>;
  /** App-shell URLs, relative to the worker's scope, cached at install (injected by the build). */
  precache: readonly string[];
  /** The build id: names the cache, so a new build drops the old one on activation. */
  version: string;
  /** Where failures go (default: console.error). */
  log?: (message: string, error?: unknown) => void;
  /** Clock for the status figures (tests). */
  now?: () => number;
  /**
   * Start opening the homeserver as soon as the script has run, rather than at the first request: the
   * browser starts a stopped worker for an event (almost always a /_matrix request), and the store opens
   * while that event is being delivered. Default true.
   */
  eager?: boolean;
  /** Federation through a transport host tab (see federation.ts); without it the node does not federate. */
  federation?: WorkerFederation;
  /**
   * Answers that need no homeserver (constant ones, such as `/_matrix/client/versions`, the first thing every
   * client asks): given first refusal on each `/_matrix` request, so a cold worker answers them while its
   * store is still opening. Undefined: the homeserver answers.
   */
  constantAnswer?: (request: Request, url: URL) => Response | undefined;
}

export interface SwHost {
  /** The homeserver of this run, opening it if needed. */
  homeserver(): Promise<HomeserverLike>;
  status(): Promise<WorkerStatus>;
  readonly cacheName: string;
}

/** Cache names of every build start with this; activation deletes the ones of other builds. */
export const CACHE_PREFIX = 'matrix-p2p-shell-';

/** Paths the homeserver answers, on any origin. */
export function isHomeserverPath(pathname: string): boolean {
  return pathname.startsWith('/_matrix/') || pathname.startsWith('/.well-known/matrix/');
}

const AUTH_MEDIA = /^\/_matrix\/client\/v1\/media\/(download|thumbnail)\//;

/**
 * Element Web's `<img>` requests: authenticated media (`/_matrix/client/v1/media/{download,thumbnail}/…`)
 * with no token. Element's own worker adds the page's Bearer token; ours is the homeserver, so it serves
 * the same bytes from the content repository's token-free read (`/_matrix/media/v3/…`, which server-core
 * keeps for clients before v1.11). Only for pages this worker controls: nobody else reaches this worker.
 */
export function trustedMediaRequest(request: Request): Request | undefined {
  if (request.method !== 'GET' && request.method !== 'HEAD') return undefined;
  const url = new URL(request.url);
  if (!AUTH_MEDIA.test(url.pathname)) return undefined;
  if (request.headers.has('authorization') || url.searchParams.has('access_token')) return undefined;
  url.pathname = url.pathname.replace('/_matrix/client/v1/media/', '/_matrix/media/v3/');
  return new Request(url.href, { method: request.method, headers: request.headers });
}

const utf8 = new TextEncoder();

/**
 * A homeserver answer as handed to the page. Chromium passes a Service Worker's Response whose body is a
 * string or bytes to the page as a blob: it registers the blob with the browser process, and the page then
 * reads it back from there, which costs about 0.5 ms per response on the 2-core machines we measure on
 * (`npm run bench -- sw-host`). A stream body goes over a data pipe straight to the page. JSON answers (all
 * but media) are small and their text is at hand, so they go as a one-chunk stream; media keeps its blob.
 */
function forPage(res: Response): Response {
  const text = jsonResponseText(res);
  if (text === undefined) return res;
  const bytes = utf8.encode(text);
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(bytes);
      c.close();
    },
  });
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/** A homeserver answer for the libp2p bridge: JSON text is taken as it is, not read back from the body. */
async function forBridge(res: Response): Promise<WireResponse> {
  const text = jsonResponseText(res);
  if (text === undefined) return serializeResponse(res);
  return serializeResponseHead(res, utf8.encode(text).buffer as ArrayBuffer);
}

function randomId(): string {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function unavailable(message: string): Response {
  return new Response(JSON.stringify({ errcode: 'M_UNKNOWN', error: message }), {
    status: 503,
    headers: { 'content-type': 'application/json', 'access-control-allow-origin': '*', 'retry-after': '1' },
  });
}

/** Install the host's listeners on `scope` (the worker's `self`). */
export function createSwHost(scope: SwScope, opts: SwHostOptions): SwHost {
  const log = opts.log ?? ((m: string, e?: unknown) => console.error(`[matrix-p2p sw] ${m}`, e ?? ''));
  const now = opts.now ?? Date.now;
  const cacheName = CACHE_PREFIX + opts.version;
  const startId = randomId();
  const startedAt = now();
  const scriptMs = performance.now();
  const began = (globalThis as { __matrixP2pScriptStart?: number }).__matrixP2pScriptStart;
  const evalMs = typeof began === 'number' ? scriptMs - began : 0;
  let startupMs = 0;
  let requests = 0;
  const base = scope.registration.scope;
  const shellUrls = opts.precache.map((p) => new URL(p, base).href);
  const indexUrl = new URL('index.html', base).href;
  const selfUrl = scope.location.href;

  // One homeserver per run; a failed or closed one is forgotten so the next request opens it again.
  let opening: Promise<HomeserverLike> | undefined;
  function homeserver(): Promise<HomeserverLike> {
    if (!opening) {
      const t0 = performance.now();
      const p: Promise<HomeserverLike> = opts
        .openHomeserver({ onClosed: () => { if (opening === p) opening = undefined; } })
        .then((hs) => {
          startupMs = performance.now() - t0;
          return hs;
        });
      opening = p;
      p.catch((e) => {
        if (opening === p) opening = undefined;
        log('the homeserver failed to start', e);
      });
    }
    return opening;
  }

  async function answerMatrix(event: FetchEvent): Promise<Response> {
    let request = event.request;
    if (event.clientId) {
      const trusted = trustedMediaRequest(request);
      if (trusted) {
        const client = await scope.clients.get(event.clientId);
        if (client && new URL(client.url).origin === scope.location.origin) request = trusted;
      }
    }
    const constant = opts.constantAnswer?.(request, new URL(request.url));
    if (constant) {
      requests++;
      return forPage(constant);
    }
    let hs: HomeserverLike;
    try {
      hs = await homeserver();
    } catch {
      return unavailable('The homeserver could not open its storage; try again');
    }
    requests++;
    const res = await hs.handle(request);
    // A long-poll that waits answers its head at once: the worker stays up until its body is sent.
    const late = lateBody(res);
    if (late) event.waitUntil(late);
    return forPage(res);
  }

  async function fromCache(request: Request): Promise<Response | undefined> {
    const cache = await scope.caches.open(cacheName);
    const hit = await cache.match(request, { ignoreSearch: request.mode === 'navigate' });
    if (hit) return hit;
    if (request.mode === 'navigate') return (await cache.match(indexUrl)) ?? undefined;
    return undefined;
  }

  async function answerShell(event: FetchEvent): Promise<Response> {
    const request = event.request;
    try {
      const response = await scope.fetch(request);
      if (response.ok && response.type === 'basic' && request.url !== selfUrl && !request.headers.has('range')) {
        const copy = response.clone();
        event.waitUntil(scope.caches.open(cacheName).then((c) => c.put(request, copy)).catch(() => {}));
      }
      return response;
    } catch (e) {
      const cached = await fromCache(request);
      if (cached) return cached;
      throw e;
    }
  }

  async function status(): Promise<WorkerStatus> {
    const hs = await homeserver();
    const s: WorkerStatus = { serverName: hs.serverName, version: opts.version, startId, startedAt, scriptMs, evalMs, startupMs, requests };
    if (opts.federation) {
      s.transportHost = opts.federation.hasHost();
      const peers = await opts.federation.peers();
      if (peers) s.peers = peers;
    }
    const est = await scope.navigator?.storage?.estimate().catch(() => undefined);
    if (est) s.storage = { usage: est.usage ?? 0, quota: est.quota ?? 0 };
    return s;
  }

  scope.addEventListener('install', (event: ExtendableEvent) => {
    void scope.skipWaiting();
    // Precache the shell one file at a time: a file that fails is fetched again later by the
    // network-first path, and never stops the homeserver from installing.
    event.waitUntil(
      scope.caches.open(cacheName).then((cache) =>
        Promise.all(
          shellUrls.map((u) =>
            cache.add(new Request(u, { cache: 'reload' })).catch((e) => log(`could not precache ${u}`, e)),
          ),
        ),
      ),
    );
  });

  scope.addEventListener('activate', (event: ExtendableEvent) => {
    event.waitUntil(
      (async () => {
        for (const name of await scope.caches.keys()) {
          if (name.startsWith(CACHE_PREFIX) && name !== cacheName) await scope.caches.delete(name);
        }
        await scope.clients.claim();
      })(),
    );
  });

  scope.addEventListener('fetch', (event: FetchEvent) => {
    const url = new URL(event.request.url);
    if (isHomeserverPath(url.pathname)) {
      event.respondWith(answerMatrix(event));
      return;
    }
    if (event.request.method !== 'GET' || url.origin !== scope.location.origin) return; // the browser's own way
    // The rendezvous' addresses change with every `npm start`: never from the cache.
    if (url.pathname === '/rendezvous.json') return;
    event.respondWith(answerShell(event));
  });

  scope.addEventListener('message', (event: ExtendableMessageEvent) => {
    const port = event.ports[0];
    if (!port || !isWorkerRequest(event.data)) return;
    const reply = (r: AnyWorkerReply, transfer: Transferable[] = []) => port.postMessage(r, transfer);
    event.waitUntil(
      answerMessage(event.data, event.ports).then(
        (r) => reply(r, 'response' in r && r.response.body ? [r.response.body] : []),
        (e: unknown) => reply({ ok: false, error: e instanceof Error ? e.message : String(e) }),
      ),
    );
  });

  async function answerMessage(msg: WorkerRequest, ports: readonly MessagePort[]): Promise<AnyWorkerReply> {
    switch (msg.type) {
      case 'matrix-p2p/status':
        return { ok: true, status: await status() };
      case 'matrix-p2p/node-seed': {
        const hs = await homeserver();
        if (!hs.nodeSeed) throw new Error('this homeserver has no node seed');
        return { ok: true, seed: await hs.nodeSeed(), serverName: hs.serverName };
      }
      case 'matrix-p2p/transport-host': {
        if (!opts.federation) throw new Error('this worker does not federate');
        // The core listens for peers becoming reachable once it is open: the peers the host replays now
        // (a restarted worker's first attach) must reach those listeners, so open it first.
        await homeserver();
        // The port stays with the host: the reply goes on a second port the host sent along.
        const hostPort = ports[1];
        if (!hostPort) throw new Error('no host port');
        opts.federation.attach(hostPort, msg.peers);
        // The quick inbound path (bridge.ts `wrapInbound`): the host's requests over a port of their own.
        if (ports[2]) exposeInbound(handleInbound, ports[2]);
        return { ok: true, attached: true };
      }
      case 'matrix-p2p/inbound':
        if (opts.federation && !opts.federation.hasHost()) askForHost();
        return { ok: true, response: await handleInbound(msg.request, msg.peer) };
      case 'matrix-p2p/broadcast':
        if (!opts.federation) throw new Error('this worker does not federate');
        await homeserver(); // the core listens for broadcasts once it is open
        opts.federation.deliverBroadcast(new Uint8Array(msg.message));
        return { ok: true, delivered: true };
    }
  }

  /**
   * A request a peer sent, answered as that peer (the core allows it federation and media only).
   *
   * The answer waits one turn of the worker's event loop: the pages go first. A transaction a peer sends
   * (`PUT /send`) and the long-poll `/sync` it wakes become ready together, once the write is durable; the
   * page's answer is a stream the worker still has to pump, and the transport host's thread has to take both
   * (and write the peer's answer out over libp2p). Letting the page's answer get under way first shortens
   * "a peer's message → on screen" by about half a millisecond (`npm run bench -- transport-libp2p`); the peer
   * waits that much longer for its acknowledgement, which nobody is looking at.
   */
  async function handleInbound(request: WireRequest, peer: string): Promise<WireResponse> {
    const hs = await homeserver();
    requests++;
    const res = await hs.handle(deserializeRequest(request), { peer });
    await new Promise((r) => setTimeout(r, 0));
    return forBridge(res);
  }

  /** Ask this origin's pages for a transport host (the elected tab answers by attaching again). */
  function askForHost(): void {
    void scope.clients.matchAll?.({ type: 'window' })
      .then((cs) => cs.forEach((c) => c.postMessage({ type: NEED_HOST })))
      .catch(() => {});
  }

  if (opts.eager ?? true) homeserver().catch(() => {}); // logged above; the next request tries again

  return { homeserver, status, cacheName };
}
