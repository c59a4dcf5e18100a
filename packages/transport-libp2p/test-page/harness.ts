/**
 * Node-side helpers for the browser specs (e2e/p2p-*.spec.ts): build and serve the test page, run the
 * rendezvous as a real child process (so a test can kill it), and open pages with the flags and permission
 * WebRTC needs in a loopback-only namespace (shared/notes/browser-p2p.md).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from '@playwright/test';
import { serveStatic, type StaticServer } from '../../../scripts/static-server.mjs';
import { buildTestPage } from '../scripts/bundle.mjs';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
export const PAGE_DIR = join(ROOT, 'dist/p2p-test');
// One list of Chromium flags for the whole browser suite.
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../../e2e/playwright.config.ts';

export async function serveTestPage(): Promise<StaticServer> {
  await buildTestPage(PAGE_DIR);
  return serveStatic({ root: PAGE_DIR, port: 0 });
}

export interface RendezvousProcess {
  peerId: string;
  multiaddrs: string[];
  http: string;
  child: ChildProcess;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
}

/** Start `rendezvous/src/main.ts` (tsx) on a free port with a fresh key; resolves once it prints its addresses. */
export async function startRendezvousProcess(): Promise<RendezvousProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'p2p-rendezvous-'));
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'rendezvous/src/main.ts'), '--port', '0', '--key-file', join(dir, 'key')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => rmSync(dir, { recursive: true, force: true }));
  const info = await new Promise<{ peerId: string; multiaddrs: string[]; http: string }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the rendezvous did not start in 30 s: ${stderr}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`the rendezvous exited (${code}): ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const j = JSON.parse(line);
        if (j.rendezvous) {
          clearTimeout(t);
          resolve(j.rendezvous);
        }
      } catch {
        /* not our line */
      }
    });
  });
  return {
    ...info,
    child,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** One browser per peer (as real users have), each with a page on the test page. */
export async function openPeer(url: string): Promise<{ browser: Browser; page: Page }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
  // Without a media permission Chromium gathers no ICE candidates when only loopback exists.
  const context = await browser.newContext({ permissions: ['microphone'] });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
  return { browser, page };
}

export function quantile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
}
