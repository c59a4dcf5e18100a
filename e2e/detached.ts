/**
 * Chromium started on its own, with no automation attached (the benches' "as people run it" figures: Playwright's
 * DevTools instrumentation of each request adds about 0.5 ms per round trip through the worker on our machines).
 * A fresh profile, the suite's flags; the page reports by logging `<TAG> <json>` to its console, which Chromium
 * writes to stderr.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './playwright.config.ts';

export interface DetachedChromium {
  /** The JSON the page logged after `tag` (the first such line); rejects on `{ error }`, exit or timeout. */
  report<T>(tag: string, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

export function launchDetached(url: string, extraArgs: readonly string[] = []): DetachedChromium {
  const profile = mkdtempSync(join(tmpdir(), 'matrix-p2p-detached-'));
  const child = spawn(CHROMIUM_PATH, [...CHROMIUM_ARGS, ...extraArgs, `--user-data-dir=${profile}`, '--enable-logging=stderr', '--v=0', url], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true, // its own process group: killed whole, renderers included
  });
  let log = '';
  const listeners = new Set<() => void>();
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    log += chunk;
    for (const l of listeners) l();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    report<T>(tag: string, timeoutMs = 180_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const done = (f: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          f();
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no ${tag} from ${url} within ${timeoutMs / 1000} s`))), timeoutMs);
        const check = () => {
          const m = new RegExp(`${tag} (\\{.*?\\})", source:`).exec(log);
          if (m) {
            const r = JSON.parse(m[1]) as T & { error?: string };
            done(() => (r.error ? reject(new Error(`${url}: ${r.error}`)) : resolve(r)));
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done(() => reject(new Error(`Chromium exited before ${tag} (${url})`)));
          }
        };
        listeners.add(check);
        void exited.then(check);
        check();
      });
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(-child.pid!, 'SIGKILL');
        await exited;
      }
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
}
