/**
 * The homeserver worker, measured in Chromium (real worker, real IndexedDB), inside a loopback-only
 * network namespace (re-executes itself under scripts/netns.sh):
 *
 *   - worker bundle size, gzip (budget 200 KB: exit 1 when over);
 *   - cold start: worker stopped via CDP → first `/_matrix/client/versions` answered (goal ≤ 30 ms), and the
 *     same for a request that needs the store (`/account/whoami`);
 *   - local echo: PUT send → the sender's pending long-poll `/sync` returns it (goal ≤ 5 ms p50), in Chromiums
 *     started with no automation attached (as people run it; 3 in turn, 200 sends each, the p50 over all), then
 *     the same with Playwright attached; beside it, the floor under it: a no-op round trip through the worker
 *     after the same idle time, and back to back;
 *   - first incremental `/sync` after a restart with 10,000 stored events (goal ≤ 100 ms).
 *
 *   npm run bench -- sw-host           (BENCH_EVENTS=2000 for a quicker run; BENCH_ECHO_RUNS browsers for the echo, 3)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium, type Page } from '@playwright/test';
import { buildTestPages, ensureWebBuild } from '../../../scripts/build-web.mjs';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../../e2e/playwright.config.ts';
import { launchDetached } from '../../../e2e/detached.ts';
import { createRoom, openApp, register, ROOT, send, startServer, stopWorkers, sync, workerStatus } from '../../../e2e/fixtures.ts';

if (process.env.MATRIX_P2P_NETNS !== '1') {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(join(ROOT, 'scripts/netns.sh'), [join(ROOT, 'node_modules/.bin/tsx'), self], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const BUDGET = 200 * 1024;
const EVENTS = Number(process.env.BENCH_EVENTS ?? 10_000);
/** Browsers the local echo is measured in, one after the other (BENCH_ECHO_RUNS). */
const ECHO_RUNS = Math.max(1, Math.floor(Number(process.env.BENCH_ECHO_RUNS)) || 3);

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, min: s[0], p50: q(0.5), p90: q(0.9), max: s[s.length - 1] };
}
const ms = (x: number) => `${x.toFixed(2)} ms`;
function line(label: string, xs: number[], goal?: { p50?: number; max?: number }) {
  const s = stats(xs);
  const verdict = goal?.p50 !== undefined ? (s.p50 <= goal.p50 ? ` (goal p50 ≤ ${goal.p50} ms: met)` : ` (goal p50 ≤ ${goal.p50} ms: MISSED)`) : '';
  console.log(`${label.padEnd(58)} p50 ${ms(s.p50)}  p90 ${ms(s.p90)}  min ${ms(s.min)}  max ${ms(s.max)}  n=${s.n}${verdict}`);
  return s;
}

/** `workerEcho` in a Chromium with no automation attached (the bench page registers the worker and runs). */
async function detachedWorkerEcho(origin: string, n: number): Promise<{ echoes: number[]; sends: number[]; noopIdle: number[]; noopBusy: number[] }> {
  const chromium = launchDetached(`${origin}/__e2e/bench.html?run=worker-echo&n=${n}`);
  try {
    return await chromium.report('MATRIX_P2P_BENCH', 120_000);
  } finally {
    await chromium.close();
  }
}

// 1. Size.
ensureWebBuild({ quiet: true });
buildTestPages({ quiet: true });
const code = readFileSync(join(ROOT, 'dist/web/sw.js'));
const gz = gzipSync(code, { level: 9 }).byteLength;
console.log(`sw.js: ${(code.byteLength / 1024).toFixed(1)} KB minified, ${(gz / 1024).toFixed(1)} KB gzip (budget ${BUDGET / 1024} KB: ${gz <= BUDGET ? 'within' : 'OVER'})`);

const server = await startServer();
const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
let exit = gz <= BUDGET ? 0 : 1;
try {
  const context = await browser.newContext();
  // tsx compiles this file with esbuild's keepNames: functions inside page.evaluate call its `__name`.
  await context.addInitScript('globalThis.__name = (f) => f');
  const page = await openApp(context, server.url);
  const alice = await register(page, 'alice');
  const roomId = await createRoom(page, alice, { name: 'bench' });
  await send(page, alice, roomId, 'warm-up');

  const timeVersions = (p: Page) =>
    p.evaluate(async () => {
      const t0 = performance.now();
      const r = await fetch('/_matrix/client/versions');
      await r.json();
      return performance.now() - t0;
    });

  const timeWhoami = (p: Page, token: string) =>
    p.evaluate(async (token) => {
      const t0 = performance.now();
      const r = await fetch('/_matrix/client/v3/account/whoami', { headers: { authorization: `Bearer ${token}` } });
      await r.json();
      return performance.now() - t0;
    }, token);

  // 2. Cold start: /versions (constant: the worker answers it while IndexedDB opens), and a request that needs
  // the store (whoami: the token is looked up).
  const cold: number[] = [];
  const coldStore: number[] = [];
  const storeOpen: number[] = [];
  const script: number[] = [];
  const evaluation: number[] = [];
  for (let i = 0; i < 20; i++) {
    await stopWorkers(page);
    cold.push(await timeVersions(page));
    const st = await workerStatus(page);
    storeOpen.push(st.startupMs);
    script.push(st.scriptMs);
    evaluation.push(st.evalMs);
    await stopWorkers(page);
    coldStore.push(await timeWhoami(page, alice.token));
  }
  const warm: number[] = [];
  for (let i = 0; i < 50; i++) warm.push(await timeVersions(page));
  line('cold start: worker stopped → /versions answered', cold, { p50: 30 });
  line('  worker time origin → its script has run', script);
  line('    of which evaluating the script (top level)', evaluation);
  line('  opening the IndexedDB store + homeserver', storeOpen);
  line('cold start: worker stopped → /account/whoami answered (needs the store)', coldStore);
  line('warm /versions round trip through the worker', warm);

  // 3. Local echo: the sender's long-poll /sync returns its own event (e2e/pages/bench.ts `workerEcho`).
  //    First in a Chromium of its own with no automation attached, as a person's browser runs: Playwright's
  //    DevTools instrumentation of every request adds about 0.5 ms per round trip through the worker here.
  //    Several such browsers, one after the other, each with a fresh profile: the figure is over all their sends
  //    (one browser's run can fall in a slow minute of a shared machine), and each run's median is shown too.
  const runs: Awaited<ReturnType<typeof detachedWorkerEcho>>[] = [];
  for (let i = 0; i < ECHO_RUNS; i++) runs.push(await detachedWorkerEcho(server.url, 200));
  const detached = {
    echoes: runs.flatMap((r) => r.echoes),
    sends: runs.flatMap((r) => r.sends),
    noopIdle: runs.flatMap((r) => r.noopIdle),
    noopBusy: runs.flatMap((r) => r.noopBusy),
  };
  line(`local echo: send → sender long-poll /sync returns it (${ECHO_RUNS} browser${ECHO_RUNS > 1 ? 's' : ''})`, detached.echoes, { p50: 5 });
  console.log(`${'  each browser: echo p50'.padEnd(58)} ${runs.map((r) => ms(stats(r.echoes).p50)).join(', ')}`);
  line('  PUT send round trip', detached.sends);
  // What the browser and this machine cost before the homeserver does anything: the echo is one trip to the worker
  // and one back, with the work and the IndexedDB commit in between.
  line('  no-op round trip through the worker (/versions), 15 ms idle before', detached.noopIdle);
  line('  the same, back to back (threads awake)', detached.noopBusy);
  const direct = await context.newPage();
  await direct.goto(`${server.url}/__e2e/bench.html`);
  await direct.waitForFunction(() => typeof window.benchCoreEcho === 'function' && !!navigator.serviceWorker.controller);
  const echo = await direct.evaluate(() => window.benchWorkerEcho(100));
  line('  the same with Playwright attached: echo', echo.echoes);
  line('  the same with Playwright attached: PUT send round trip', echo.sends);

  // The same echo with the homeserver in a page, no worker in between: over memory, over IndexedDB.
  const steps = await direct.evaluate(() => window.benchOpenSteps(20));
  line('  re-opening a node in a page: IndexedDB open', steps.idbOpen);
  line('  re-opening a node in a page: createHomeserver', steps.createHomeserver);
  const mem = await direct.evaluate(() => window.benchCoreEcho('memory', 100));
  const idb = await direct.evaluate(() => window.benchCoreEcho('idb', 100));
  const relaxed = await direct.evaluate(() => window.benchCoreEcho('idb-relaxed', 100));
  const cached = await direct.evaluate(() => window.benchCoreEcho('idb-cached', 100));
  const fed = await direct.evaluate(() => window.benchFedEcho(100));
  await direct.close();
  line('  in a page, no worker, MemoryEngine: echo', mem.echoes);
  line('  in a page, no worker, MemoryEngine: send', mem.sends);
  line('  in a page, no worker, MemoryEngine: incremental sync, 1 new', mem.syncs);
  line('  in a page, no worker, IndexedDB: echo', idb.echoes);
  line('  in a page, no worker, IndexedDB: send', idb.sends);
  line('  in a page, no worker, IndexedDB: incremental sync, 1 new', idb.syncs);
  line("  in a page, no worker, IndexedDB 'relaxed': echo", relaxed.echoes);
  line("  in a page, no worker, the worker's engine (cached IndexedDB): echo", cached.echoes);
  line("  in a page, no worker, the worker's engine (cached IndexedDB): send", cached.sends);
  line("    of which the IndexedDB write transaction (commit)", cached.writes);
  line("  in a page, no worker, the worker's engine (cached IndexedDB): sync, 1 new", cached.syncs);
  line("  in a page, two homeservers (the worker's engine) on an in-process network: send in A → in B's /sync", fed.echoes);
  const ctx = cached.transactions;
  console.log(`  IndexedDB transactions with the worker's engine: per PUT send ${ctx.send.read.toFixed(1)} read + ${ctx.send.write.toFixed(1)} write; per incremental sync ${ctx.sync.read.toFixed(1)} read + ${ctx.sync.write.toFixed(1)} write`);
  line('  one IndexedDB read transaction (one get)', idb.idbGet);
  const tx = idb.transactions;
  console.log(`  store transactions: per PUT send ${tx.send.read.toFixed(1)} read + ${tx.send.write.toFixed(1)} write; per incremental sync ${tx.sync.read.toFixed(1)} read + ${tx.sync.write.toFixed(1)} write`);

  // 4. 10,000 stored events, then the first incremental sync after a restart.
  const t0 = Date.now();
  await page.evaluate(
    async ({ token, roomId, total }) => {
      let next = 0;
      const worker = async () => {
        while (next < total) {
          const i = next++;
          const r = await fetch(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/fill-${i}`, {
            method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ msgtype: 'm.text', body: `message ${i}` }),
          });
          if (r.status !== 200) throw new Error(`send ${i}: HTTP ${r.status}`);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    },
    { token: alice.token, roomId, total: EVENTS },
  );
  const fillS = (Date.now() - t0) / 1000;
  console.log(`stored ${EVENTS} more events in ${fillS.toFixed(1)} s (${(EVENTS / fillS).toFixed(0)} sends/s through the worker)`);
  const caughtUp = await sync(page, alice);
  const afterRestart: number[] = [];
  const withNews: number[] = [];
  for (let i = 0; i < 10; i++) {
    // Nothing new since the token.
    await stopWorkers(page);
    afterRestart.push(
      await page.evaluate(async ({ token, since }) => {
        const t = performance.now();
        const r = await fetch(`/_matrix/client/v3/sync?since=${encodeURIComponent(since)}&timeout=0`, { headers: { authorization: `Bearer ${token}` } });
        await r.json();
        return performance.now() - t;
      }, { token: alice.token, since: caughtUp.next_batch }),
    );
  }
  // One new event since the token (written by the worker's previous run).
  for (let i = 0; i < 10; i++) {
    const before = await sync(page, alice, caughtUp.next_batch);
    await send(page, alice, roomId, `news ${i}`);
    await stopWorkers(page);
    withNews.push(
      await page.evaluate(async ({ token, since }) => {
        const t = performance.now();
        const r = await fetch(`/_matrix/client/v3/sync?since=${encodeURIComponent(since)}&timeout=0`, { headers: { authorization: `Bearer ${token}` } });
        await r.json();
        return performance.now() - t;
      }, { token: alice.token, since: before.next_batch }),
    );
  }
  line(`first incremental /sync after a restart, ${EVENTS} events stored (nothing new)`, afterRestart, { p50: 100 });
  line(`first incremental /sync after a restart, ${EVENTS} events stored (1 new)`, withNews, { p50: 100 });
  const st = await workerStatus(page);
  if (st.storage) console.log(`IndexedDB use for the node: ${(st.storage.usage / 1024 / 1024).toFixed(1)} MB`);
  await context.close();
} catch (e) {
  console.error(e);
  exit = 1;
} finally {
  await browser.close();
  await server.close();
}
process.exit(exit);
