/**
 * Dev harness build for the chat alone (the app's own build lives in apps/web):
 *   npx vite --config apps/web/src/chat/dev/vite.config.ts            (dev server)
 *   npx vite build --config apps/web/src/chat/dev/vite.config.ts      (→ $CHAT_DEV_OUT or dist/chat-dev/)
 * then open the page with `?hs=http://127.0.0.1:8099` against `npm run serve -- --port 8099`.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

/**
 * The chat uses no end-to-end encryption, but matrix-js-sdk's `initRustCrypto` dynamically imports its
 * Rust crypto (a 5.4 MB wasm plus ~1 MB of JS chunks). Replace that one import with a module that
 * refuses, so the build emits none of it. (The app's own build wants the same: see README.md.)
 */
export function noSdkCrypto(): Plugin {
  const STUB = '\0matrix-p2p:no-sdk-crypto';
  return {
    name: 'matrix-p2p:no-sdk-crypto',
    enforce: 'pre',
    resolveId(source, importer) {
      if (source === './rust-crypto/index.js' && importer && /[\\/]matrix-js-sdk[\\/]lib[\\/]client\.js$/.test(importer)) return STUB;
      return null;
    },
    load(id) {
      if (id !== STUB) return null;
      return 'export async function initRustCrypto() { throw new Error("end-to-end encryption is not included in this build"); }';
    },
  };
}

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: './',
  build: {
    outDir: process.env.CHAT_DEV_OUT ?? fileURLToPath(new URL('../../../../../dist/chat-dev', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
  },
  server: { host: '127.0.0.1' },
  plugins: [noSdkCrypto()],
});
