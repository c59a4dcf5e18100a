/**
 * server-core's StorageEngine and Store conformance suites, run IN Chromium against the real IndexedDB
 * engine (the same suites run in Node over memory and fake-indexeddb). The page runs them all once with
 * a tiny harness; each becomes one reported Playwright test here, so they count in the totals.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHarness, type HarnessResult } from './harness.ts';
import { registerConformance } from './pages/conformance-suites.ts';
import { expect, ROOT, test } from './fixtures.ts';

// The names, learned by registering the suites in Node (nothing runs: engines are made inside tests).
const listing = createHarness();
registerConformance(listing, () => Promise.reject(new Error('not run in Node')));
const NAMES = listing.names();

// One browser run per test-runner process. A failing test restarts Playwright's worker process, so
// the results are also kept in a file named after the runner (the workers' parent process).
const CACHE = join(ROOT, '.test-results', `e2e-conformance-${process.ppid}.json`);
let results: Map<string, HarnessResult> | undefined;

test.describe('in Chromium', () => {
  test.beforeAll(async ({ browser, server }) => {
    test.setTimeout(300_000);
    try {
      results = new Map((JSON.parse(readFileSync(CACHE, 'utf8')) as HarnessResult[]).map((r) => [r.name, r]));
      return;
    } catch {
      /* first run in this runner */
    }
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/__e2e/conformance.html`);
    await page.waitForFunction(() => typeof window.runConformance === 'function');
    expect(await page.evaluate(() => window.conformanceNames())).toEqual(NAMES);
    const list = await page.evaluate(() => window.runConformance());
    await context.close();
    mkdirSync(join(ROOT, '.test-results'), { recursive: true });
    writeFileSync(CACHE, JSON.stringify(list));
    results = new Map(list.map((r) => [r.name, r]));
  });

  for (const name of NAMES) {
    test(name, () => {
      const r = results?.get(name);
      expect(r, 'the page did not run this test').toBeDefined();
      if (!r!.ok) throw new Error(r!.error);
    });
  }
});
