/**
 * `npm start -w @matrix-p2p/rendezvous` (or `tsx rendezvous/src/main.ts`): run a rendezvous.
 *
 *   --host H         RENDEZVOUS_HOST       interface (default 127.0.0.1)
 *   --port P         RENDEZVOUS_PORT       websockets + HTTP port (default 9090; 0: any free port)
 *   --key-file F     RENDEZVOUS_KEY_FILE   private key, created on first start (default rendezvous/.data/peer.key)
 *   --announce A,B   RENDEZVOUS_ANNOUNCE   multiaddrs to announce instead of the listening ones
 *   --addr-file F    RENDEZVOUS_ADDR_FILE  also write {"peerId","multiaddrs"} to F (e.g. for a static server)
 *
 * Prints one JSON line `{"rendezvous": {"peerId", "multiaddrs", "http"}}` when ready (scripts parse it), and
 * the multiaddrs in plain text on stderr. Stops cleanly on SIGINT / SIGTERM.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { startRendezvous } from './index.ts';

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    'key-file': { type: 'string' },
    announce: { type: 'string' },
    'addr-file': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('usage: rendezvous [--host H] [--port P] [--key-file F] [--announce MA,MA] [--addr-file F]');
  process.exit(0);
}
const env = process.env;
const portText = values.port ?? env.RENDEZVOUS_PORT;
const port = portText === undefined ? undefined : Number(portText);
if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
  console.error(`rendezvous: not a port number: ${portText}`);
  process.exit(2);
}
const announce = (values.announce ?? env.RENDEZVOUS_ANNOUNCE)?.split(',').map((s) => s.trim()).filter(Boolean);
const addrFile = values['addr-file'] ?? env.RENDEZVOUS_ADDR_FILE;

let r;
try {
  r = await startRendezvous({
    host: values.host ?? env.RENDEZVOUS_HOST,
    port,
    keyFile: values['key-file'] ?? env.RENDEZVOUS_KEY_FILE,
    announce,
    log: (m) => console.error(`rendezvous: ${m}`),
  });
} catch (e) {
  console.error(`rendezvous: cannot start: ${(e as Error).message}`);
  process.exit(1);
}
const rv = r;
if (addrFile) {
  await mkdir(dirname(addrFile), { recursive: true });
  await writeFile(`${addrFile}.tmp`, JSON.stringify(rv.info()) + '\n');
  await rename(`${addrFile}.tmp`, addrFile);
}
console.error(`rendezvous ${rv.peerId}${rv.keyCreated ? ' (new key)' : ''} listening on\n${rv.multiaddrs.map((m) => `  ${m}`).join('\n')}\n  ${rv.httpUrl}/rendezvous.json`);
console.log(JSON.stringify({ rendezvous: { peerId: rv.peerId, multiaddrs: rv.multiaddrs, http: rv.httpUrl } }));

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    const t = setTimeout(() => process.exit(0), 3_000);
    t.unref();
    void rv.stop().finally(() => process.exit(0));
  });
}
