/**
 * Shared e2e fixtures: the static server (dist/web at `/`, the test pages of dist/e2e at `/__e2e/`),
 * opening the app until the worker controls the page, Matrix calls made with `fetch` from inside the
 * page (so they go through the worker), and stopping the worker through the DevTools protocol.
 */
import { test as base, expect, type BrowserContext, type Page } from '@playwright/test';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStatic, type StaticServer } from '../scripts/static-server.mjs';
import type { WorkerStatus } from '../packages/sw-host/src/protocol.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const WEB_DIR = join(ROOT, 'dist/web');
export const E2E_DIR = join(ROOT, 'dist/e2e');

export function startServer(port = 0): Promise<StaticServer> {
  return serveStatic({ root: WEB_DIR, mounts: { '/__e2e/': E2E_DIR }, port });
}

export const test = base.extend<{ app: (context?: BrowserContext) => Promise<Page> }, { server: StaticServer }>({
  server: [
    async ({}, use) => {
      const s = await startServer();
      await use(s);
      await s.close();
    },
    { scope: 'worker' },
  ],
  /** Opens the app in a page (of `context`, default the test's own) and waits until the worker controls it. */
  app: async ({ context, server }, use) => {
    await use(async (ctx = context) => openApp(ctx, server.url));
  },
});
export { expect };

export async function openApp(context: BrowserContext, origin: string, path = '/'): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(origin + path);
  await waitControlled(page);
  return page;
}

export async function waitControlled(page: Page): Promise<void> {
  await page.waitForFunction(() => document.documentElement.dataset.homeserver === 'ready' && !!navigator.serviceWorker.controller, null, {
    timeout: 20_000,
  });
}

export interface MxResult<T = Record<string, unknown>> {
  status: number;
  body: T;
}

/** One Matrix API call with `fetch` from inside the page (through the worker). Network errors reject. */
export async function mx<T = Record<string, any>>(
  page: Page,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown } = {},
): Promise<MxResult<T>> {
  return page.evaluate(
    async ({ method, path, token, body }) => {
      const headers: Record<string, string> = {};
      if (token) headers.authorization = `Bearer ${token}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await r.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: r.status, body: parsed as never };
    },
    { method, path, token: opts.token, body: opts.body },
  );
}

export async function ok<T = Record<string, any>>(p: Promise<MxResult<T>>): Promise<T> {
  const r = await p;
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

export interface Session {
  userId: string;
  token: string;
  deviceId: string;
}

export const PASSWORD = 'correct horse battery staple';

/** Register through the user-interactive auth dance (401 + session, then the dummy stage). */
export async function register(page: Page, username: string): Promise<Session> {
  const first = await mx(page, 'POST', '/_matrix/client/v3/register', { body: { username, password: PASSWORD } });
  expect(first.status).toBe(401);
  const done = await ok(mx(page, 'POST', '/_matrix/client/v3/register', {
    body: { username, password: PASSWORD, auth: { type: 'm.login.dummy', session: first.body.session } },
  }));
  return { userId: done.user_id, token: done.access_token, deviceId: done.device_id };
}

export async function createRoom(page: Page, s: Session, body: Record<string, unknown> = {}): Promise<string> {
  return (await ok(mx(page, 'POST', '/_matrix/client/v3/createRoom', { token: s.token, body }))).room_id;
}

let txn = 0;
export async function send(page: Page, s: Session, roomId: string, body: string): Promise<string> {
  const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t${Date.now()}-${txn++}`;
  return (await ok(mx(page, 'PUT', path, { token: s.token, body: { msgtype: 'm.text', body } }))).event_id;
}

export async function sync(page: Page, s: Session, since?: string, timeout = 0, filter?: Record<string, unknown>): Promise<Record<string, any>> {
  const q = new URLSearchParams({ timeout: String(timeout) });
  if (since) q.set('since', since);
  if (filter) q.set('filter', JSON.stringify(filter));
  return ok(mx(page, 'GET', `/_matrix/client/v3/sync?${q}`, { token: s.token }));
}

/** The `m.room.message` bodies of a room in a sync response. */
export function messagesIn(syncBody: Record<string, any>, roomId: string): string[] {
  const events: any[] = syncBody.rooms?.join?.[roomId]?.timeline?.events ?? [];
  return events.filter((e) => e.type === 'm.room.message').map((e) => e.content.body);
}

/** Every message of a room, oldest first, through /messages (paginating backwards from now). */
export async function allMessages(page: Page, s: Session, roomId: string): Promise<string[]> {
  const out: string[] = [];
  let from: string | undefined;
  for (let i = 0; i < 50; i++) {
    const q = new URLSearchParams({ dir: 'b', limit: '100' });
    if (from) q.set('from', from);
    const r = await ok(mx(page, 'GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?${q}`, { token: s.token }));
    for (const e of r.chunk as any[]) if (e.type === 'm.room.message') out.unshift(e.content.body);
    if (!r.end || (r.chunk as unknown[]).length === 0) break;
    from = r.end;
  }
  return out;
}

/** The worker's status over the page's MessageChannel API. */
export async function workerStatus(page: Page): Promise<WorkerStatus> {
  return page.evaluate(
    () =>
      new Promise<WorkerStatus>((resolve, reject) => {
        const ch = new MessageChannel();
        const t = setTimeout(() => reject(new Error('no answer from the worker')), 10_000);
        ch.port1.onmessage = (e) => {
          clearTimeout(t);
          if (e.data.ok) resolve(e.data.status);
          else reject(new Error(e.data.error));
        };
        navigator.serviceWorker.controller!.postMessage({ type: 'matrix-p2p/status' }, [ch.port2]);
      }),
  );
}

/**
 * Stop every Service Worker of the browser through CDP (`ServiceWorker.stopAllWorkers`) and wait until
 * DevTools reports them stopped. (With DevTools attached Chromium keeps idle workers alive, so tests stop
 * them on purpose to exercise restarts.)
 */
export async function stopWorkers(page: Page): Promise<void> {
  const cdp = await page.context().newCDPSession(page);
  const seen = new Set<string>();
  const stopped = new Set<string>();
  let asked = false;
  cdp.on('ServiceWorker.workerVersionUpdated', (e: { versions: Array<{ versionId: string; runningStatus: string }> }) => {
    for (const v of e.versions) {
      seen.add(v.versionId);
      if (asked && v.runningStatus === 'stopped') stopped.add(v.versionId);
    }
  });
  await cdp.send('ServiceWorker.enable');
  await new Promise((r) => setTimeout(r, 50)); // let DevTools report the current versions
  asked = true;
  await cdp.send('ServiceWorker.stopAllWorkers');
  // Wait until each version was seen stopped (a pending event may start it again right away).
  const start = Date.now();
  while (seen.size === 0 || [...seen].some((id) => !stopped.has(id))) {
    if (seen.size === 0 && Date.now() - start > 2_000) break; // no worker at all
    if (Date.now() - start > 10_000) throw new Error(`workers did not stop: seen ${[...seen]}, stopped ${[...stopped]}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  await cdp.send('ServiceWorker.disable').catch(() => {});
  await cdp.detach().catch(() => {});
}
