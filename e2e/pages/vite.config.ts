// The e2e test pages (not part of the app): built into dist/e2e and served under /__e2e/ by the
// e2e suite's static server, on the app's origin (so the homeserver worker controls them).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: here,
  base: '/__e2e/',
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir: join(here, '../../dist/e2e'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 10_000,
    rollupOptions: {
      input: { conformance: join(here, 'conformance.html'), 'js-sdk': join(here, 'js-sdk.html'), bench: join(here, 'bench.html'), 'p2p-bench': join(here, 'p2p-bench.html') },
    },
  },
});
