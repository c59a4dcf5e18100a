#!/usr/bin/env node
// `npm start`: builds the web app if needed, then serves dist/web on http://127.0.0.1:${PORT:-8080}
// (HOST to change the interface) and prints one line with `ready` and the URL. Stops on SIGINT/SIGTERM.
// `--no-build` serves what is there.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
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
const rvPort = Number(process.env.RENDEZVOUS_PORT ?? 9090);

// 0. The rendezvous (relay + discovery for federation between browsers): a child process, stopped on exit.
// Its addresses are written to a file that the static server answers as `/rendezvous.json`, so the page
// finds it without configuration. If it cannot start, the app still serves (it just cannot federate).
const rvDir = mkdtempSync(join(tmpdir(), 'matrix-p2p-rendezvous-'));
const rvFile = join(rvDir, 'rendezvous.json');
writeFileSync(rvFile, '{}\n');
const rendezvous = spawn(process.execPath, ['--import', 'tsx', join(root, 'rendezvous/src/main.ts'), '--port', String(rvPort), '--key-file', join(rvDir, 'key')], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
});
const rvExited = new Promise((resolve) => rendezvous.once('exit', resolve));
stops.push(async () => {
  if (rendezvous.exitCode === null && rendezvous.signalCode === null) rendezvous.kill('SIGTERM');
  await Promise.race([rvExited, new Promise((r) => setTimeout(r, 2000))]);
  if (rendezvous.exitCode === null && rendezvous.signalCode === null) rendezvous.kill('SIGKILL');
  rmSync(rvDir, { recursive: true, force: true });
});
process.on('exit', () => {
  if (rendezvous.exitCode === null && rendezvous.signalCode === null) rendezvous.kill('SIGKILL');
});
const rvInfo = await new Promise((resolve) => {
  const t = setTimeout(() => resolve(undefined), 30_000);
  rendezvous.once('exit', (code) => {
    clearTimeout(t);
    resolve(undefined);
    console.error(`the rendezvous exited (${code}); browsers will not federate`);
  });
  createInterface({ input: rendezvous.stdout }).on('line', (line) => {
    try {
      const j = JSON.parse(line);
      if (j.rendezvous) {
        clearTimeout(t);
        resolve(j.rendezvous);
      }
    } catch {
      /* not our line */
    }
  });
});
if (rvInfo) writeFileSync(rvFile, JSON.stringify({ peerId: rvInfo.peerId, multiaddrs: rvInfo.multiaddrs }) + '\n');

// 1. The web app (the page, and sw.js: the homeserver itself runs in the visitor's browser).
const web = await serveStatic({ root: join(root, 'dist/web'), mounts: { '/rendezvous.json': rvFile }, host, port }).catch((e) => {
  console.error(`cannot listen on ${host}:${port}: ${e.message}`);
  process.exit(1);
});
stops.push(() => web.close());

if (rvInfo) console.log(`rendezvous: ${rvInfo.multiaddrs.join(' ')}`);
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
