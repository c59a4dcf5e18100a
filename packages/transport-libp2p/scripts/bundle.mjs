// Bundling the browser node with esbuild: the e2e test page (test-page/) and the size report (size.mjs).
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

/** esbuild options for browser code that uses libp2p. */
export const BROWSER_OPTIONS = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  conditions: ['browser'],
  mainFields: ['browser', 'module', 'main'],
  legalComments: 'none',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
};

/** Build the e2e test page into `outDir` (index.html + main.js). */
export async function buildTestPage(outDir, { minify = false } = {}) {
  await mkdir(outDir, { recursive: true });
  await build({ ...BROWSER_OPTIONS, entryPoints: [join(PACKAGE_DIR, 'test-page/main.ts')], outfile: join(outDir, 'main.js'), minify, sourcemap: false });
  await copyFile(join(PACKAGE_DIR, 'test-page/index.html'), join(outDir, 'index.html'));
  return outDir;
}
