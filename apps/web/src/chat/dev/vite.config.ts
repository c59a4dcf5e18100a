/**
 * Dev harness build for the chat alone (the app's own build lives in apps/web):
 *   npx vite --config apps/web/src/chat/dev/vite.config.ts            (dev server)
 *   npx vite build --config apps/web/src/chat/dev/vite.config.ts      (→ $CHAT_DEV_OUT or dist-chat-dev/)
 * then open the page with `?hs=http://127.0.0.1:8099` against `npm run serve -- --port 8099`.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: './',
  build: {
    outDir: process.env.CHAT_DEV_OUT ?? fileURLToPath(new URL('../../../dist-chat-dev', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
  },
  server: { host: '127.0.0.1' },
});
