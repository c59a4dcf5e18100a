#!/usr/bin/env node
// `npm run size -w @matrix-p2p/transport-libp2p`: the browser node's bundle size (minified, gzip), against the
// budget below. The entry is the package's whole public surface (src/index.ts), bundled for browsers.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { BROWSER_OPTIONS, PACKAGE_DIR } from './bundle.mjs';

/** Budget: shared/notes/browser-p2p.md measured 757 / 206 KB for a WebRTC node with gossipsub + discovery. */
export const BUDGET = { min: 700 * 1024, gzip: 200 * 1024 };

export async function measure() {
  const r = await build({ ...BROWSER_OPTIONS, entryPoints: [join(PACKAGE_DIR, 'src/index.ts')], write: false, minify: true, metafile: true, outfile: 'out.js' });
  const js = r.outputFiles.find((f) => f.path.endsWith('.js')).contents;
  const inputs = {};
  for (const [file, info] of Object.entries(r.metafile.outputs['out.js'].inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
    const key = m ? m[1] : file.startsWith('src/') || file.includes('transport-libp2p/src') ? '(this package)' : file;
    inputs[key] = (inputs[key] ?? 0) + info.bytesInOutput;
  }
  return { min: js.byteLength, gzip: gzipSync(js, { level: 9 }).byteLength, inputs };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const s = await measure();
  const kb = (n) => `${(n / 1024).toFixed(0)} KB`;
  console.log(`browser node bundle: ${kb(s.min)} minified, ${kb(s.gzip)} gzip (budget ${kb(BUDGET.min)} / ${kb(BUDGET.gzip)})`);
  for (const [k, v] of Object.entries(s.inputs).sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${kb(v).padStart(7)}  ${k}`);
  if (s.min > BUDGET.min || s.gzip > BUDGET.gzip) {
    console.error('over budget');
    process.exit(1);
  }
}
