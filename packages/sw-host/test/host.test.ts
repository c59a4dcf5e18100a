// The Service Worker host over a fake worker scope in Node: routing, the lazy homeserver, the app-shell
// cache, Element's authenticated-media job and the status messages. (The real worker in real Chromium
// is exercised by the e2e suite.)
import { describe, expect, it } from 'vitest';
import { clientVersions, createMemoryHomeserver, jsonResponse } from '@matrix-p2p/server-core';
import { CACHE_PREFIX, createSwHost, isHomeserverPath, trustedMediaRequest, type HomeserverLike, type SwHostOptions, type SwScope } from '../src/index.ts';
import type { WorkerReply } from '../src/protocol.ts';

const ORIGIN = 'https://app.test';

class FakeCache {
  readonly entries = new Map<string, Response>();
  constructor(private readonly net: (r: Request) => Promise<Response>) {}
  private key(r: RequestInfo | URL, ignoreSearch = false): string {
    const u = new URL(typeof r === 'string' || r instanceof URL ? r.toString() : r.url);
    if (ignoreSearch) u.search = '';
    return u.href;
  }
  async match(r: RequestInfo | URL, opts: CacheQueryOptions = {}): Promise<Response | undefined> {
    const hit = this.entries.get(this.key(r, opts.ignoreSearch));
    return hit?.clone();
  }
  async put(r: RequestInfo | URL, res: Response): Promise<void> {
    this.entries.set(this.key(r), res.clone());
  }
  async add(r: RequestInfo | URL): Promise<void> {
    const req = r instanceof Request ? r : new Request(r);
    const res = await this.net(req);
    if (!res.ok) throw new TypeError(`bad status ${res.status}`);
    await this.put(req, res);
  }
}

class FakeCaches {
  readonly map = new Map<string, FakeCache>();
  constructor(private readonly net: (r: Request) => Promise<Response>) {}
  async open(name: string): Promise<FakeCache> {
    let c = this.map.get(name);
    if (!c) this.map.set(name, (c = new FakeCache(this.net)));
    return c;
  }
  async keys(): Promise<string[]> {
    return [...this.map.keys()];
  }
  async delete(name: string): Promise<boolean> {
    return this.map.delete(name);
  }
}

/** A Service Worker global scope: EventTarget + the few properties sw-host reads. */
function fakeScope(files: Record<string, string> = {}) {
  let online = true;
  const fetched: string[] = [];
  const net = async (r: Request): Promise<Response> => {
    fetched.push(r.url);
    if (!online) throw new TypeError('Failed to fetch');
    const u = new URL(r.url);
    const body = u.origin === ORIGIN ? files[u.pathname] : undefined;
    if (body === undefined) return new Response('not found', { status: 404 });
    const res = new Response(body, { status: 200, headers: { 'content-type': 'text/plain' } });
    Object.defineProperty(res, 'type', { value: 'basic' });
    return res;
  };
  const clients = new Map<string, { id: string; url: string }>();
  const target = new EventTarget();
  let claimed = 0;
  let skipped = 0;
  const scope = Object.assign(target, {
    location: { origin: ORIGIN, href: `${ORIGIN}/sw.js` },
    registration: { scope: `${ORIGIN}/` },
    caches: new FakeCaches(net),
    navigator: { storage: { estimate: async () => ({ usage: 1234, quota: 10_000_000 }) } },
    clients: {
      get: async (id: string) => clients.get(id),
      claim: async () => void claimed++,
    },
    skipWaiting: async () => void skipped++,
    fetch: (input: RequestInfo | URL) => net(input instanceof Request ? input : new Request(input)),
  });
  return {
    scope: scope as unknown as SwScope,
    caches: scope.caches,
    fetched,
    clients,
    setOnline: (v: boolean) => void (online = v),
    get claimed() {
      return claimed;
    },
    get skipped() {
      return skipped;
    },
    target,
  };
}

/** Dispatch an extendable event; resolves once every waitUntil settled. */
async function lifecycle(target: EventTarget, type: 'install' | 'activate'): Promise<void> {
  const waits: Promise<unknown>[] = [];
  target.dispatchEvent(Object.assign(new Event(type), { waitUntil: (p: Promise<unknown>) => void waits.push(p) }));
  await Promise.all(waits);
}

/** Dispatch a fetch event; resolves to the worker's response, or undefined when it left the request alone. */
async function fetchEvent(target: EventTarget, request: Request, clientId = ''): Promise<Response | undefined> {
  let responded: Promise<Response> | undefined;
  const waits: Promise<unknown>[] = [];
  target.dispatchEvent(
    Object.assign(new Event('fetch'), {
      request,
      clientId,
      respondWith: (r: Response | Promise<Response>) => void (responded = Promise.resolve(r)),
      waitUntil: (p: Promise<unknown>) => void waits.push(p),
    }),
  );
  const res = await responded;
  await Promise.all(waits);
  return res;
}

function navigation(url: string): Request {
  const r = new Request(url);
  Object.defineProperty(r, 'mode', { value: 'navigate' });
  return r;
}

function host(env: ReturnType<typeof fakeScope>, over: Partial<SwHostOptions> = {}) {
  let opened = 0;
  let hs: Promise<HomeserverLike> | undefined;
  const logged: string[] = [];
  const h = createSwHost(env.scope, {
    openHomeserver: async () => {
      opened++;
      return (hs ??= createMemoryHomeserver({ log: () => {} }));
    },
    precache: ['index.html', 'assets/app.js'],
    version: 'v2',
    log: (m) => void logged.push(m),
    eager: false,
    ...over,
  });
  return { h, logged, get opened() { return opened; } };
}

async function json(res: Response | undefined): Promise<Record<string, unknown>> {
  expect(res).toBeDefined();
  return (await res!.json()) as Record<string, unknown>;
}

async function registerUser(env: ReturnType<typeof fakeScope>, username: string): Promise<{ access_token: string; user_id: string }> {
  const post = (body: unknown) =>
    fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/v3/register`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }));
  const first = await post({ username, password: 'pw-12345678' });
  expect(first!.status).toBe(401);
  const { session } = await json(first);
  const done = await post({ username, password: 'pw-12345678', auth: { type: 'm.login.dummy', session } });
  expect(done!.status).toBe(200);
  return (await done!.json()) as { access_token: string; user_id: string };
}

describe('sw-host: routing', () => {
  it('knows the homeserver paths', () => {
    expect(isHomeserverPath('/_matrix/client/versions')).toBe(true);
    expect(isHomeserverPath('/.well-known/matrix/client')).toBe(true);
    expect(isHomeserverPath('/_matrixx')).toBe(false);
    expect(isHomeserverPath('/index.html')).toBe(false);
    expect(isHomeserverPath('/.well-known/other')).toBe(false);
  });

  it('answers /_matrix on any origin, opening the homeserver once for concurrent first requests', async () => {
    const env = fakeScope();
    const t = host(env);
    const [a, b, c] = await Promise.all([
      fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/versions`)),
      fetchEvent(env.target, new Request('https://matrix.example.org/_matrix/client/versions')),
      fetchEvent(env.target, new Request(`${ORIGIN}/.well-known/matrix/client`)),
    ]);
    expect(a!.status).toBe(200);
    expect(((await json(a)).versions as string[]).includes('v1.11')).toBe(true);
    expect(b!.status).toBe(200);
    expect(await json(c)).toEqual({ 'm.homeserver': { base_url: ORIGIN } });
    expect(t.opened).toBe(1);
    expect(env.fetched).toEqual([]); // nothing went to the network
    const unknown = await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/v3/nope`));
    expect(unknown!.status).toBe(404);
    expect((await json(unknown)).errcode).toBe('M_UNRECOGNIZED');
  });

  it('by default starts opening the homeserver as soon as the script runs, still only once', async () => {
    const env = fakeScope();
    let opened = 0;
    createSwHost(env.scope, {
      openHomeserver: async () => {
        opened++;
        return createMemoryHomeserver();
      },
      precache: [],
      version: 'v1',
    });
    expect(opened).toBe(1);
    const r = await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/versions`));
    expect(r!.status).toBe(200);
    expect(opened).toBe(1);
  });

  it("hands JSON answers to the page as a one-chunk stream (the same status, headers and bytes), media as the homeserver made it", async () => {
    const env = fakeScope();
    const media = new Response(new Uint8Array([1, 2, 3]), { headers: { 'content-type': 'image/png' } });
    const made: Response[] = [];
    createSwHost(env.scope, {
      openHomeserver: async () => ({
        serverName: 'x',
        stop: async () => {},
        handle: async (r: Request) => {
          const res = new URL(r.url).pathname.endsWith('/media') ? media : jsonResponse(201, { hello: 'wörld' }, { 'x-extra': 'kept' });
          made.push(res);
          return res;
        },
      }),
      precache: [],
      version: 'v1',
      eager: false,
    });
    const a = await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/v3/json`));
    expect(a).not.toBe(made[0]); // re-bodied
    expect(made[0].bodyUsed).toBe(false); // its text was taken as it is, not read back
    expect(a!.status).toBe(201);
    expect(a!.headers.get('x-extra')).toBe('kept');
    expect(a!.headers.get('content-type')).toBe('application/json');
    expect(await a!.text()).toBe('{"hello":"wörld"}');
    const b = await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/v1/media`));
    expect(b).toBe(media);
    expect([...new Uint8Array(await b!.arrayBuffer())]).toEqual([1, 2, 3]);
  });

  it('answers a waiting /sync long-poll with its head at once and keeps the worker up until its body is sent', async () => {
    const env = fakeScope();
    host(env);
    const { access_token } = await registerUser(env, 'alice');
    const auth = { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' };
    const room = (await json(await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/v3/createRoom`, { method: 'POST', body: '{}', headers: auth })))) as { room_id: string };
    const { next_batch } = (await json(await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/v3/sync?timeout=0`, { headers: auth })))) as { next_batch: string };
    // The fetch event by hand: its answer and what it asks to be kept alive for, separately.
    let responded: Promise<Response> | undefined;
    const waits: Promise<unknown>[] = [];
    env.target.dispatchEvent(
      Object.assign(new Event('fetch'), {
        request: new Request(`${ORIGIN}/_matrix/client/v3/sync?since=${encodeURIComponent(next_batch)}&timeout=30000`, { headers: auth }),
        clientId: 'tab-1',
        respondWith: (r: Response | Promise<Response>) => void (responded = Promise.resolve(r)),
        waitUntil: (p: Promise<unknown>) => void waits.push(p),
      }),
    );
    const res = await responded!;
    expect(res.status).toBe(200);
    expect(waits).toHaveLength(1);
    let kept = true;
    void waits[0]!.then(() => (kept = false));
    await new Promise((r) => setTimeout(r, 10));
    expect(kept).toBe(true);
    const body = res.json() as Promise<{ rooms: { join: Record<string, { timeline: { events: Array<{ content: { body?: string } }> } }> } }>;
    const sent = await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/v3/rooms/${encodeURIComponent(room.room_id)}/send/m.room.message/t1`, { method: 'PUT', body: JSON.stringify({ msgtype: 'm.text', body: 'hi' }), headers: auth }));
    expect(sent!.status).toBe(200);
    expect((await body).rooms.join[room.room_id]!.timeline.events.map((e) => e.content.body)).toEqual(['hi']);
    await waits[0];
    expect(kept).toBe(false);
  });

  it('leaves cross-origin and non-GET requests outside /_matrix to the browser', async () => {
    const env = fakeScope();
    host(env);
    expect(await fetchEvent(env.target, new Request('https://cdn.example.org/lib.js'))).toBeUndefined();
    expect(await fetchEvent(env.target, new Request(`${ORIGIN}/form`, { method: 'POST', body: 'x' }))).toBeUndefined();
  });

  it('answers 503 while the store cannot open, and opens it again on the next request', async () => {
    const env = fakeScope();
    let fail = true;
    let opened = 0;
    const t = host(env, {
      openHomeserver: async () => {
        opened++;
        if (fail) throw new Error('quota exceeded');
        return createMemoryHomeserver();
      },
    });
    const r1 = await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/versions`));
    expect(r1!.status).toBe(503);
    expect((await json(r1)).errcode).toBe('M_UNKNOWN');
    expect(t.logged).toEqual(['the homeserver failed to start']);
    fail = false;
    const r2 = await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/versions`));
    expect(r2!.status).toBe(200);
    expect(opened).toBe(2);
  });

  it('answers constant requests (/versions) without waiting for the homeserver, and everything else through it', async () => {
    const env = fakeScope();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const t = host(env, {
      openHomeserver: async () => (await gate, createMemoryHomeserver()),
      constantAnswer: (req, url) => (req.method === 'GET' && url.pathname === '/_matrix/client/versions' ? jsonResponse(200, clientVersions()) : undefined),
    });
    // The store is still opening: /versions is answered anyway, with what the homeserver itself would say.
    const versions = await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/versions`));
    expect(versions!.status).toBe(200);
    const body = await json(versions);
    expect(body.versions).toContain('v1.11');
    expect(t.opened).toBe(0);
    // A request that needs the store waits for it.
    const whoami = fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/v3/account/whoami`));
    let settled = false;
    void whoami.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    release();
    expect((await whoami)!.status).toBe(401);
    const hs = await t.h.homeserver();
    const direct = await hs.handle(new Request(`${ORIGIN}/_matrix/client/versions`));
    expect((await direct.json()).versions).toEqual(body.versions);
  });

  it('opens the homeserver again after its store closed itself (a newer build upgrades the schema)', async () => {
    const env = fakeScope();
    const closers: Array<() => void> = [];
    let opened = 0;
    createSwHost(env.scope, {
      openHomeserver: async ({ onClosed }) => {
        opened++;
        closers.push(onClosed);
        return createMemoryHomeserver();
      },
      precache: [],
      version: 'v1',
      eager: false,
    });
    await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/versions`));
    await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/versions`));
    expect(opened).toBe(1);
    closers[0]();
    await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/versions`));
    expect(opened).toBe(2);
  });
});

describe('sw-host: app shell', () => {
  const files = { '/index.html': '<h1>app</h1>', '/assets/app.js': 'console.log(1)', '/': '<h1>app</h1>', '/late.js': 'late' };

  it('install precaches the shell and skips waiting; activate drops other builds and claims clients', async () => {
    const env = fakeScope(files);
    await (await env.caches.open(`${CACHE_PREFIX}v1`)).put(`${ORIGIN}/old.js`, new Response('old'));
    await env.caches.open('someone-elses-cache');
    const t = host(env);
    await lifecycle(env.target, 'install');
    expect(env.skipped).toBe(1);
    const cache = await env.caches.open(t.h.cacheName);
    expect([...cache.entries.keys()].sort()).toEqual([`${ORIGIN}/assets/app.js`, `${ORIGIN}/index.html`]);
    await lifecycle(env.target, 'activate');
    expect((await env.caches.keys()).sort()).toEqual([`${CACHE_PREFIX}v2`, 'someone-elses-cache']);
    expect(env.claimed).toBe(1);
  });

  it('a file that cannot be precached does not stop the install', async () => {
    const env = fakeScope({ '/index.html': 'x' });
    const t = host(env);
    await lifecycle(env.target, 'install');
    expect(t.logged).toEqual([`could not precache ${ORIGIN}/assets/app.js`]);
  });

  it('serves from the network first, keeps a copy, and falls back to the cache offline', async () => {
    const env = fakeScope(files);
    host(env);
    await lifecycle(env.target, 'install');
    const live = await fetchEvent(env.target, new Request(`${ORIGIN}/late.js`));
    expect(await live!.text()).toBe('late');
    env.setOnline(false);
    expect(await (await fetchEvent(env.target, new Request(`${ORIGIN}/late.js`)))!.text()).toBe('late');
    expect(await (await fetchEvent(env.target, new Request(`${ORIGIN}/assets/app.js`)))!.text()).toBe('console.log(1)');
    // Offline navigations anywhere in scope get the cached index.html.
    expect(await (await fetchEvent(env.target, navigation(`${ORIGIN}/rooms/abc?x=1`)))!.text()).toBe('<h1>app</h1>');
    // Not cached, not a navigation: the network error stands.
    await expect(fetchEvent(env.target, new Request(`${ORIGIN}/never.js`))).rejects.toThrow('Failed to fetch');
    // The homeserver does not need the network at all.
    expect((await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/versions`)))!.status).toBe(200);
  });

  it('does not cache the worker script itself, nor failed responses', async () => {
    const env = fakeScope({ ...files, '/sw.js': 'worker' });
    const t = host(env, { precache: [] });
    await fetchEvent(env.target, new Request(`${ORIGIN}/sw.js`));
    await fetchEvent(env.target, new Request(`${ORIGIN}/missing.js`));
    expect([...(await env.caches.open(t.h.cacheName)).entries.keys()]).toEqual([]);
  });
});

describe('sw-host: Element Web authenticated media', () => {
  it('rewrites only token-less authenticated media reads', () => {
    const r = trustedMediaRequest(new Request(`${ORIGIN}/_matrix/client/v1/media/thumbnail/srv/abc?width=32&height=32`));
    expect(r?.url).toBe(`${ORIGIN}/_matrix/media/v3/thumbnail/srv/abc?width=32&height=32`);
    expect(trustedMediaRequest(new Request(`${ORIGIN}/_matrix/client/v1/media/download/srv/abc`, { headers: { authorization: 'Bearer t' } }))).toBeUndefined();
    expect(trustedMediaRequest(new Request(`${ORIGIN}/_matrix/client/v1/media/download/srv/abc?access_token=t`))).toBeUndefined();
    expect(trustedMediaRequest(new Request(`${ORIGIN}/_matrix/client/v1/media/config`))).toBeUndefined();
    expect(trustedMediaRequest(new Request(`${ORIGIN}/_matrix/client/v1/media/download/srv/abc`, { method: 'POST', body: 'x' }))).toBeUndefined();
  });

  it("serves <img> requests from the pages it controls without a token, like Element's own worker", async () => {
    const env = fakeScope();
    host(env);
    const { access_token } = await registerUser(env, 'alice');
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    const up = await fetchEvent(
      env.target,
      new Request(`${ORIGIN}/_matrix/media/v3/upload?filename=a.png`, { method: 'POST', body: png, headers: { authorization: `Bearer ${access_token}`, 'content-type': 'image/png' } }),
    );
    const { content_uri } = (await json(up)) as { content_uri: string };
    const [, serverAndId] = content_uri.split('mxc://');
    const url = `${ORIGIN}/_matrix/client/v1/media/download/${serverAndId}`;

    env.clients.set('tab-1', { id: 'tab-1', url: `${ORIGIN}/#/room/x` });
    env.clients.set('foreign', { id: 'foreign', url: 'https://evil.example/' });
    const img = await fetchEvent(env.target, new Request(url), 'tab-1');
    expect(img!.status).toBe(200);
    expect(img!.headers.get('content-type')).toBe('image/png');
    expect(new Uint8Array(await img!.arrayBuffer())).toEqual(png);
    const thumb = await fetchEvent(env.target, new Request(url.replace('/download/', '/thumbnail/') + '?width=32&height=32'), 'tab-1');
    expect(thumb!.status).toBe(200);

    // Not from a page of ours (no client, unknown client, another origin): the spec's 401.
    for (const clientId of ['', 'gone', 'foreign']) {
      const r = await fetchEvent(env.target, new Request(url), clientId);
      expect(r!.status).toBe(401);
      expect((await json(r)).errcode).toBe('M_MISSING_TOKEN');
    }
    // With a token the request is served as it is.
    const authed = await fetchEvent(env.target, new Request(url, { headers: { authorization: `Bearer ${access_token}` } }));
    expect(authed!.status).toBe(200);
    const bad = await fetchEvent(env.target, new Request(url, { headers: { authorization: 'Bearer nope' } }), 'tab-1');
    expect(bad!.status).toBe(401);
  });
});

describe('sw-host: status messages', () => {
  it('answers a status request on the given port', async () => {
    const env = fakeScope();
    const t = host(env);
    await fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/versions`));
    const channel = new MessageChannel();
    const reply = new Promise<WorkerReply>((resolve) => {
      channel.port1.onmessage = (e) => resolve(e.data as WorkerReply);
    });
    const waits: Promise<unknown>[] = [];
    env.target.dispatchEvent(
      Object.assign(new Event('message'), { data: { type: 'matrix-p2p/status' }, ports: [channel.port2], waitUntil: (p: Promise<unknown>) => void waits.push(p) }),
    );
    const r = await reply;
    await Promise.all(waits);
    channel.port1.close();
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const hs = await t.h.homeserver();
    expect(r.status.serverName).toBe(hs.serverName);
    expect(r.status.serverName).toMatch(/^[0-9a-f]{64}$/);
    expect(r.status.version).toBe('v2');
    expect(r.status.requests).toBe(1);
    expect(r.status.storage).toEqual({ usage: 1234, quota: 10_000_000 });
    expect(r.status.startId).toMatch(/^[0-9a-f]{16}$/);
  });

  it("hands a page's answer over before a peer's answer that became ready with it (the peer's waits one turn)", async () => {
    const env = fakeScope();
    let release!: () => void;
    const ready = new Promise<void>((r) => (release = r));
    const order: string[] = [];
    createSwHost(env.scope, {
      // Both answers become ready in the same turn, the peer's first (as a transaction and the /sync it woke).
      openHomeserver: async () => ({
        serverName: 'x',
        stop: async () => {},
        handle: async (_r: Request, remote?: { peer?: string }) => {
          await ready;
          if (!remote?.peer) await Promise.resolve();
          return jsonResponse(200, { from: remote?.peer ? 'peer' : 'page' });
        },
      }),
      precache: [],
      version: 'v1',
      eager: false,
      federation: { transport: {} as never, attach: () => {}, hasHost: () => true, peers: async () => undefined, deliverBroadcast: () => {} } as never,
    });
    const channel = new MessageChannel();
    const reply = new Promise<void>((resolve) => {
      channel.port1.onmessage = () => resolve();
    });
    const port = channel.port2;
    const post = port.postMessage.bind(port);
    port.postMessage = ((m: unknown, t?: Transferable[]) => (order.push('peer'), post(m, t ?? []))) as typeof port.postMessage;
    const request = { method: 'PUT', url: 'https://x/_matrix/federation/v1/send/1', headers: [], body: null };
    env.target.dispatchEvent(Object.assign(new Event('message'), { data: { type: 'matrix-p2p/inbound', peer: 'p', request }, ports: [port], waitUntil: () => {} }));
    const page = fetchEvent(env.target, new Request(`${ORIGIN}/_matrix/client/v3/sync`)).then((r) => (order.push('page'), r));
    await new Promise((r) => setTimeout(r, 5));
    release();
    await Promise.all([page, reply]);
    channel.port1.close();
    expect(order).toEqual(['page', 'peer']);
  });

  it('ignores messages that are not requests', async () => {
    const env = fakeScope();
    const t = host(env);
    env.target.dispatchEvent(Object.assign(new Event('message'), { data: 'hello', ports: [], waitUntil: () => {} }));
    expect(t.opened).toBe(0);
  });
});
