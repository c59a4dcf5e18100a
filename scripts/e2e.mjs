#!/usr/bin/env node
// `npm run test:e2e [-- playwright args]`: the browser suite. Builds the app and the test pages, then
// runs Playwright with Debian's Chromium ($CHROMIUM_PATH or /usr/bin/chromium) inside a fresh network
// namespace that has only loopback (scripts/netns.sh). Results: .test-results/e2e.json (Playwright's
// JSON report), which scripts/test.mjs adds to its totals. Exit status: Playwright's, or 1 if the suite
// cannot run at all (no Chromium, a failed build): that is a failure, never a skip.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTestPages, ensureWebBuild } from './build-web.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const results = join(root, '.test-results');
mkdirSync(results, { recursive: true });
rmSync(join(results, 'e2e.json'), { force: true });
for (const f of readdirSync(results)) if (/^e2e-conformance-\d+\.json$/.test(f)) rmSync(join(results, f), { force: true });

function cannotRun(reason) {
  console.error(`\ne2e: cannot run the browser suite: ${reason}`);
  process.exit(1);
}

const chromium = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
if (!existsSync(chromium)) {
  cannotRun(`no Chromium at ${chromium}. Install Debian's: sudo apt-get install -y chromium (or set CHROMIUM_PATH)`);
}

try {
  ensureWebBuild({ force: !!process.env.CI });
  buildTestPages();
} catch (e) {
  cannotRun(e.message);
}

const r = spawnSync(
  join(root, 'scripts/netns.sh'),
  [join(root, 'node_modules/.bin/playwright'), 'test', '-c', join(root, 'e2e/playwright.config.ts'), ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit', env: { ...process.env, CHROMIUM_PATH: chromium } },
);
process.exit(r.status ?? 1);
