#!/usr/bin/env node
// `npm test`: type-checks, then runs every test suite (vitest for the Node suites, then the browser
// suite: Playwright in Chromium inside a loopback-only network namespace), and ends with one line
// `N passed, N failed` summing them all. Skipped tests are not counted as passed; a suite that cannot
// run at all (no Chromium, a failed build) counts as a failure.
// Exit status: non-zero if anything failed (or if a suite ran no test at all).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const results = join(root, '.test-results');
mkdirSync(results, { recursive: true });
const bin = (name) => join(root, 'node_modules/.bin', name);

let passed = 0;
let failed = 0;
let broken = false;

function step(title, cmd, args) {
  console.log(`\n=== ${title}: ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env });
  return r.status ?? 1;
}

// 1. Types: a type error fails the run (it is not counted as a test).
if (step('typecheck', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']) !== 0) {
  console.error('typecheck failed');
  broken = true;
}

// 2. Node suites (vitest).
const vitestJson = join(results, 'vitest.json');
const code = step('node suites (vitest)', bin('vitest'), ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${vitestJson}`]);
if (existsSync(vitestJson)) {
  const r = JSON.parse(readFileSync(vitestJson, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  // A file that failed to load has no test results: count it as a failure.
  for (const f of r.testResults ?? []) if (f.status === 'failed' && (f.assertionResults ?? []).length === 0) failed += 1;
  if (r.numTotalTests === 0) broken = true;
} else {
  broken = true;
}
if (code !== 0 && failed === 0) broken = true;

// 3. Browser suite: scripts/e2e.mjs builds the app, then runs Playwright inside scripts/netns.sh.
const e2eJson = join(results, 'e2e.json');
const e2eCode = step('browser suite (playwright, Chromium, loopback-only netns)', process.execPath, [join(root, 'scripts/e2e.mjs')]);
const e2e = readE2e(e2eJson);
if (!e2e) {
  console.error('the browser suite did not run (see above): counted as 1 failure');
  failed += 1;
} else {
  passed += e2e.passed;
  failed += e2e.failed;
  if (e2e.passed + e2e.failed === 0) {
    console.error('the browser suite ran no test: counted as 1 failure');
    failed += 1;
  } else if (e2eCode !== 0 && e2e.failed === 0) {
    console.error(`the browser suite exited ${e2eCode} with no failed test: counted as 1 failure`);
    failed += 1;
  }
  console.log(`browser suite: ${e2e.passed} passed, ${e2e.failed} failed, ${e2e.skipped} skipped`);
}

/** Playwright's JSON report: passed = expected; failed = unexpected + flaky + errors outside tests. */
function readE2e(file) {
  if (!existsSync(file)) return undefined;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8'));
    const s = r.stats ?? {};
    return {
      passed: s.expected ?? 0,
      failed: (s.unexpected ?? 0) + (s.flaky ?? 0) + (r.errors ?? []).length,
      skipped: s.skipped ?? 0,
    };
  } catch (e) {
    console.error(`unreadable ${file}: ${e.message}`);
    return undefined;
  }
}

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 || broken ? 1 : 0);
