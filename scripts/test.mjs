#!/usr/bin/env node
// `npm test`: type-checks, then runs every test suite (vitest for the Node suites; later issues add
// browser suites), and ends with one line `N passed, N failed` summing them all.
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

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 || broken ? 1 : 0);
