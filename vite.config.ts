/**
 * The browser build: `apps/web` (the page) into `dist/web`, plus the homeserver Service Worker
 * (`packages/sw-host/src/sw.ts`) as ONE classic script `dist/web/sw.js`, and the Element Web embedding
 * kit `dist/element-kit/{sw.js,README.md}` (the same worker; it precaches only Element's `index.html`
 * and keeps the rest of Element's files as they are fetched).
 *
 *   npx vite build          (npm start builds when needed)
 *
 * The worker is built by a nested Vite build once the page's files are known: their names are the
 * precache list, and a hash of the worker and that list names its cache. The build fails when the
 * worker is over its size budget (gzip).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, defineConfig, type Plugin } from 'vite';

const root = dirname(fileURLToPath(import.meta.url));
const SW_ENTRY = join(root, 'packages/sw-host/src/sw.ts');
const KIT_README = join(root, 'packages/sw-host/element-kit/README.md');
const OUT_WEB = join(root, 'dist/web');
const OUT_KIT = join(root, 'dist/element-kit');
/** The whole worker, gzip-compressed, must stay within this (issue budget). */
export const SW_BUDGET_GZIP_BYTES = 200 * 1024;
const VERSION_PLACEHOLDER = '@@MATRIX_P2P_VERSION@@';

/** Build the worker as one minified classic script; returns its code with the version filled in. */
async function buildWorker(precache: string[], versionSalt: string): Promise<string> {
  const out = await build({
    configFile: false,
    logLevel: 'warn',
    publicDir: false,
    define: {
      __MATRIX_P2P_PRECACHE__: JSON.stringify(precache),
      __MATRIX_P2P_VERSION__: JSON.stringify(VERSION_PLACEHOLDER),
    },
    build: {
      write: false,
      minify: true,
      target: 'es2022',
      sourcemap: false,
      reportCompressedSize: false,
      lib: { entry: SW_ENTRY, formats: ['iife'], name: 'matrixP2pWorker', fileName: () => 'sw.js' },
      // When the script began to run (after load and compile): host.ts reports evaluation time from it.
      rollupOptions: { output: { banner: 'var __matrixP2pScriptStart=performance.now();' } },
    },
  });
  const outputs = (Array.isArray(out) ? out : [out]) as Array<{ output: Array<{ type: string; code?: string }> }>;
  const chunks = outputs.flatMap((o) => o.output).filter((c) => c.type === 'chunk');
  if (chunks.length !== 1 || !chunks[0].code) throw new Error(`the worker must build into one script (got ${chunks.length} chunks)`);
  const code = chunks[0].code;
  const version = createHash('sha256').update(code).update(versionSalt).digest('hex').slice(0, 12);
  return code.replaceAll(VERSION_PLACEHOLDER, version);
}

export function gzipSize(code: string | Uint8Array): number {
  return gzipSync(code, { level: 9 }).byteLength;
}

function homeserverWorker(): Plugin {
  let kitCode = '';
  return {
    name: 'matrix-p2p:homeserver-worker',
    apply: 'build',
    async generateBundle(_options, bundle) {
      const files = Object.keys(bundle).filter((f) => !f.endsWith('.map') && f !== 'sw.js').sort();
      const precache = files.includes('index.html') ? files : ['index.html', ...files];
      const salt = JSON.stringify(precache) + files.map((f) => {
        const item = bundle[f];
        return item.type === 'chunk' ? item.code : typeof item.source === 'string' ? item.source : Buffer.from(item.source).toString('base64');
      }).join('\n');
      const [webCode, elementCode] = await Promise.all([buildWorker(precache, salt), buildWorker(['index.html'], 'element-kit')]);
      const size = gzipSize(webCode);
      if (size > SW_BUDGET_GZIP_BYTES) {
        this.error(`sw.js is ${(size / 1024).toFixed(1)} KB gzip, over the ${SW_BUDGET_GZIP_BYTES / 1024} KB budget`);
      }
      this.info(`sw.js: ${(webCode.length / 1024).toFixed(1)} KB, ${(size / 1024).toFixed(1)} KB gzip (budget ${SW_BUDGET_GZIP_BYTES / 1024} KB)`);
      this.emitFile({ type: 'asset', fileName: 'sw.js', source: webCode });
      kitCode = elementCode;
    },
    writeBundle() {
      mkdirSync(OUT_KIT, { recursive: true });
      writeFileSync(join(OUT_KIT, 'sw.js'), kitCode);
      copyFileSync(KIT_README, join(OUT_KIT, 'README.md'));
    },
  };
}

export default defineConfig({
  root: join(root, 'apps/web'),
  base: '/',
  publicDir: false,
  build: {
    outDir: OUT_WEB,
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
  plugins: [homeserverWorker()],
});
