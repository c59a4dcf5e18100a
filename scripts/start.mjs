#!/usr/bin/env node
// `npm start`: builds the web app if needed, then serves dist/web on http://127.0.0.1:${PORT:-8080}
// (HOST to change the interface) and prints one line with `ready` and the URL. Stops on SIGINT/SIGTERM.
// `--no-build` serves what is there.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureWebBuild } from './build-web.mjs';
import { serveStatic } from './static-server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const port = Number(process.env.PORT ?? 8080);
const host = process.env.HOST ?? '127.0.0.1';
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT: not a port number: ${process.env.PORT}`);
  process.exit(2);
}

if (!process.argv.includes('--no-build')) {
  try {
    ensureWebBuild();
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}

const stops = [];

// 1. The web app (the page, and sw.js: the homeserver itself runs in the visitor's browser).
const web = await serveStatic({ root: join(root, 'dist/web'), host, port }).catch((e) => {
  console.error(`cannot listen on ${host}:${port}: ${e.message}`);
  process.exit(1);
});
stops.push(() => web.close());

// 2. The rendezvous (relay + discovery for federation between browsers) starts here, in a later issue.

console.log(`matrix-p2p ready: ${web.url}/`);

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    await Promise.all(stops.map((s) => s()));
    process.exit(0);
  });
}
