/**
 * The Node host's command line: `npm run serve -- [--port 8008] [--host 127.0.0.1] [--peer <url>]...`.
 * Serves the homeserver's API over HTTP with an in-memory store and open registration, prints one
 * ready line (`matrix-p2p node host ready: server name <name> at <url>`), and stops cleanly on
 * SIGINT/SIGTERM. Exit 0 after a clean stop, 2 for bad arguments, 1 if it cannot start.
 */
import { parseArgs } from 'node:util';

const USAGE = `usage: npm run serve -- [--port <port>] [--host <address>] [--peer <url>]...

  --port <port>     TCP port to listen on (default 8008; 0 picks a free port, printed on the ready line)
  --host <address>  interface to listen on (default 127.0.0.1)
  --peer <url>      a federation peer: another node host's base URL (repeatable). The host learns
                    each peer's server name from its signed key, retrying peers that are down
  -h, --help        this help
`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(2);
}

let values: { port?: string; host?: string; peer?: string[]; help?: boolean };
try {
  ({ values } = parseArgs({
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      peer: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (e) {
  fail((e as Error).message);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const port = values.port === undefined ? 8008 : Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port: not a port number: ${values.port}`);
const host = values.host ?? '127.0.0.1';

// Federation peers: other node hosts, by base URL.
const peers = values.peer ?? [];
for (const p of peers) {
  let url: URL | undefined;
  try {
    url = new URL(p);
  } catch {
    /* below */
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) fail(`--peer: not an http(s) URL: ${p}`);
}

// Imported only now, so that --help and argument errors answer even if the server does not load.
const { startNodeHost } = await import('./index.ts');
let node;
try {
  node = await startNodeHost({ port, host, peers, federation: { log: (line) => process.stderr.write(`matrix-p2p node host: federation: ${line}\n`) } });
} catch (e) {
  process.stderr.write(`matrix-p2p node host: cannot listen on ${host}:${port}: ${(e as Error).message}\n`);
  process.exit(1);
}
const running = node;
process.stdout.write(`matrix-p2p node host ready: server name ${running.hs.serverName} at ${running.url}\n`);

let stoppingSince = 0;
async function stop(signal: NodeJS.Signals): Promise<void> {
  if (stoppingSince) {
    // The same signal often arrives twice (from the terminal's process group and relayed by tsx);
    // a second one a while later means "stop waiting".
    if (Date.now() - stoppingSince > 1000) process.exit(130);
    return;
  }
  stoppingSince = Date.now();
  process.stderr.write(`matrix-p2p node host: ${signal}, stopping\n`);
  let code = 0;
  try {
    await running.close();
    process.stdout.write('matrix-p2p node host stopped\n');
  } catch (e) {
    process.stderr.write(`matrix-p2p node host: error while stopping: ${(e as Error).message}\n`);
    code = 1;
  }
  // Everything is closed; do not wait for stray timers.
  process.exit(code);
}
process.on('SIGINT', (s) => void stop(s));
process.on('SIGTERM', (s) => void stop(s));
