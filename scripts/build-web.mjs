// Builds dist/web (page + sw.js) and dist/element-kit when a source is newer than the last build.
// `node scripts/build-web.mjs [--force]`; exported as ensureWebBuild() for start.mjs and the e2e suite.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUTPUT = join(root, 'dist/web/sw.js');
const SOURCES = ['apps', 'packages', 'vite.config.ts', 'package-lock.json'];

function newest(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let m = 0;
  for (const name of readdirSync(path)) {
    if (name === 'node_modules' || name === 'test' || name === 'bench' || name.startsWith('.')) continue;
    m = Math.max(m, newest(join(path, name)));
  }
  return m;
}

export function needsBuild() {
  if (!existsSync(OUTPUT) || !existsSync(join(root, 'dist/web/index.html'))) return true;
  const built = statSync(OUTPUT).mtimeMs;
  return SOURCES.some((s) => newest(join(root, s)) > built);
}

/** Runs `vite build` if needed (or if forced); throws if the build fails. */
export function ensureWebBuild({ force = false, quiet = false } = {}) {
  if (!force && !needsBuild()) return false;
  const r = spawnSync(join(root, 'node_modules/.bin/vite'), ['build', '--config', join(root, 'vite.config.ts')], {
    cwd: root,
    stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit',
  });
  if (r.status !== 0) throw new Error(`vite build failed (exit ${r.status ?? r.signal})`);
  return true;
}

/** Builds the e2e test pages (e2e/pages → dist/e2e, served under /__e2e/ by the tests and benches). */
export function buildTestPages({ quiet = false } = {}) {
  const r = spawnSync(join(root, 'node_modules/.bin/vite'), ['build', '--config', join(root, 'e2e/pages/vite.config.ts')], {
    cwd: root,
    stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit',
  });
  if (r.status !== 0) throw new Error(`building the e2e test pages failed (exit ${r.status ?? r.signal})`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    ensureWebBuild({ force: process.argv.includes('--force') });
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
