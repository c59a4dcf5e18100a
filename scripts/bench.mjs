#!/usr/bin/env node
// `npm run bench`: runs every package's benchmarks (packages/*/bench/*.bench.ts) and prints their figures.
import { spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const only = process.argv.slice(2);
let failed = 0;
for (const pkg of readdirSync(join(root, 'packages')).sort()) {
  const dir = join(root, 'packages', pkg, 'bench');
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.bench.ts')).sort()) {
    if (only.length && !only.some((o) => `${pkg}/${f}`.includes(o))) continue;
    console.log(`\n## ${pkg}/bench/${f}`);
    const r = spawnSync(join(root, 'node_modules/.bin/tsx'), [join(dir, f)], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) failed++;
  }
}
process.exit(failed ? 1 : 0);
