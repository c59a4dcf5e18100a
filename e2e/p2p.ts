/**
 * Helpers for the specs and benches where browsers federate (e2e/p2p-*.spec.ts, packages/transport-libp2p/bench):
 * a real rendezvous process plus the static server announcing it (`/rendezvous.json`), one Chromium per peer
 * with the app (optionally with a persistent profile, so a browser can be closed and reopened with its data),
 * the page's transport host (`window.matrixP2pTransport`), and waiting for a message in a long-poll /sync.
 */
import { chromium, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveStatic, type StaticServer } from '../scripts/static-server.mjs';
import { startRendezvousProcess, type RendezvousProcess } from '../packages/transport-libp2p/test-page/harness.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './playwright.config.ts';
import { basename } from 'node:path';
import { E2E_DIR, expect, messagesIn, openApp, sync, test, waitControlled, WEB_DIR, type Session } from './fixtures.ts';

export interface P2PEnv {
  rendezvous: RendezvousProcess;
  server: StaticServer;
  /** The app's origin. */
  url: string;
  /** A temporary directory (removed by `close`), for profiles and the like. */
  dir: string;
  close(): Promise<void>;
}

/** Start the rendezvous (a child process) and the static server (dist/web, dist/e2e under /__e2e/, and the
 *  rendezvous' description at /rendezvous.json, where the app looks for it). */
export async function startP2PEnv(name = 'p2p'): Promise<P2PEnv> {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const rendezvous = await startRendezvousProcess();
  const rvFile = join(dir, 'rendezvous.json');
  writeFileSync(rvFile, JSON.stringify({ peerId: rendezvous.peerId, multiaddrs: rendezvous.multiaddrs }));
  let server: StaticServer;
  try {
    server = await serveStatic({ root: WEB_DIR, mounts: { '/rendezvous.json': rvFile, '/__e2e/': E2E_DIR }, port: 0 });
  } catch (e) {
    await rendezvous.kill();
    throw e;
  }
  return {
    rendezvous,
    server,
    url: server.url,
    dir,
    async close() {
      await rendezvous.kill();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One browser with the app: `close()` closes the whole browser (for a persistent profile, its data stays). */
export interface AppBrowser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/**
 * The browsers of a test, each a separate Chromium (as real users have), closed together by `closeAll`.
 * With `profile` (a directory), the browser keeps its profile there, so IndexedDB (the homeserver, its key and
 * server name) survives closing it: launching again with the same directory reopens the same homeserver.
 */
export class AppBrowsers {
  private open = new Set<AppBrowser>();

  /** `path`: the page to open (default `/`, e.g. `/?p2p-webrtc=0`); `initScripts`: run in every page before its own. */
  async launch(url: string, opts: { profile?: string; path?: string; waitHost?: boolean; initScripts?: string[] } = {}): Promise<AppBrowser> {
    let browser: Browser | undefined;
    let context: BrowserContext;
    // Without a media permission Chromium gathers no ICE candidates when only loopback exists.
    if (opts.profile) {
      context = await chromium.launchPersistentContext(opts.profile, { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true, permissions: ['microphone'] });
    } else {
      browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
      context = await browser.newContext({ permissions: ['microphone'] });
    }
    for (const script of opts.initScripts ?? []) await context.addInitScript(script);
    const app: AppBrowser = {
      context,
      page: undefined as unknown as Page,
      close: async () => {
        this.open.delete(app);
        await (browser ? browser.close() : context.close()).catch(() => {});
      },
    };
    this.open.add(app);
    try {
      // A persistent context opens with one blank page: use it.
      const blank = context.pages().find((p) => p.url() === 'about:blank');
      if (blank) {
        blank.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
        await blank.goto(url + (opts.path ?? '/'));
        await waitControlled(blank);
        app.page = blank;
      } else app.page = await openApp(context, url, opts.path);
      if (opts.waitHost !== false) await waitTransportHost(app.page);
    } catch (e) {
      await app.close();
      throw e;
    }
    return app;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.open].map((a) => a.close()));
  }
}

/** Wait until the page runs the libp2p node (it holds the transport-host lock and the node started). */
export async function waitTransportHost(page: Page, timeout = 30_000): Promise<void> {
  await page.waitForFunction(() => document.documentElement.dataset.transport === 'host', null, { timeout });
}

export type PeerInfo = { serverName: string; kind: string; direct: boolean };

/** The page's transport host (`window.matrixP2pTransport`, apps/web/src/transport-host.ts). */
export const transport = {
  serverName: (p: Page) => p.evaluate(() => (window as any).matrixP2pTransport.serverName as string),
  peers: (p: Page) => p.evaluate(() => ((window as any).matrixP2pTransport.peers() as PeerInfo[]).map((x) => ({ serverName: x.serverName, kind: x.kind, direct: x.direct }))),
  rendezvous: (p: Page) => p.evaluate(() => (window as any).matrixP2pTransport.rendezvousConnected() as boolean),
};

/** Wait until `page` reaches the server `other` over a direct WebRTC link. */
export async function waitDirect(page: Page, other: string, timeout = 60_000): Promise<void> {
  await expect
    .poll(async () => (await transport.peers(page)).some((p) => p.serverName === other && p.kind === 'webrtc' && p.direct), { timeout, intervals: [200] })
    .toBe(true);
}

/** Wait until `body` is among the room's messages in `page`'s /sync (long-polling from `since`); returns the
 *  next `since`. */
export async function arrives(page: Page, s: Session, roomId: string, body: string, since: string | undefined, timeout = 30_000): Promise<string> {
  const deadline = Date.now() + timeout;
  let next = since;
  while (Date.now() < deadline) {
    const r = await sync(page, s, next, 2_000);
    if (messagesIn(r, roomId).includes(body)) return r.next_batch;
    next = r.next_batch;
  }
  throw new Error(`"${body}" did not arrive in ${timeout} ms`);
}

export function quantiles(values: number[]): { n: number; p50: number; p90: number; p99: number; max: number; min: number } {
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { n: s.length, min: s[0] ?? NaN, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: s[s.length - 1] ?? NaN };
}

/**
 * The test fixture of the specs where browsers federate: `p2p` is a fresh environment (rendezvous process and
 * static server) with `p2p.apps`, the test's browsers; both are torn down after the test, whatever happened.
 */
export const p2pTest = test.extend<{ p2p: P2PEnv & { apps: AppBrowsers } }>({
  p2p: async ({}, use, testInfo) => {
    const env = await startP2PEnv(basename(testInfo.file).replace(/\.spec\.ts$/, ''));
    const apps = new AppBrowsers();
    try {
      await use(Object.assign(env, { apps }));
    } finally {
      await apps.closeAll();
      await env.close();
    }
  },
});

