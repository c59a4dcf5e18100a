/**
 * @matrix-p2p/node-host: runs the homeserver in Node over the `http` module. `startNodeHost` is the
 * programmatic door (tests, benchmarks); `serve.ts` is the command line (`npm run serve`).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMemoryHomeserver, type Homeserver, type HomeserverOptions } from '@matrix-p2p/server-core';
import { createRequestListener } from './http.ts';
import { HttpFederationTransport, type HttpFederationOptions } from './federation.ts';

export { CORS_HEADERS, createRequestListener, toWebRequest, writeWebResponse, type FetchHandler, type RequestTracker } from './http.ts';
export { checkServerKey, HttpFederationTransport, type HttpFederationOptions } from './federation.ts';

export interface NodeHostOptions {
  /** TCP port; 0 (the default) picks any free port. */
  port?: number;
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** A homeserver to serve; default a fresh one over the in-memory store with open registration. */
  hs?: Homeserver;
  /** Options for the default homeserver (ignored when `hs` is given). */
  homeserver?: Omit<HomeserverOptions, 'engine'>;
  /**
   * Federation peers (`--peer <url>`): base URLs of other Node hosts. With peers, the host's
   * homeserver federates over plain HTTP (see federation.ts); it learns each peer's server name from
   * its signed key object, in the background. Needs the host to create the homeserver (no `hs`).
   */
  peers?: readonly string[];
  /** Options for the HTTP federation transport (retry delays, logging). */
  federation?: HttpFederationOptions;
  /** Where internal errors go; default console.error. */
  log?: (e: unknown) => void;
  /** How long `close()` waits for in-flight requests after aborting them; default 2000 ms. */
  drainMs?: number;
}

export interface NodeHost {
  /** The base URL clients use, e.g. `http://127.0.0.1:8008` (no trailing slash). */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  readonly hs: Homeserver;
  readonly server: Server;
  /** The HTTP federation transport, when the host was given peers. */
  readonly federation?: HttpFederationTransport;
  /** Requests being answered right now (long-polling `/sync` included). */
  readonly inFlight: number;
  /** Stop accepting, end in-flight requests, close connections, then stop the homeserver. Idempotent. */
  close(): Promise<void>;
}

function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export async function startNodeHost(opts: NodeHostOptions = {}): Promise<NodeHost> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? ((e: unknown) => console.error('matrix-p2p node host: internal error:', e));
  const peers = opts.peers ?? [];
  if (opts.hs && peers.length) throw new TypeError('startNodeHost: `peers` need the host to create the homeserver (leave out `hs`)');
  const federation = peers.length ? new HttpFederationTransport(peers, opts.federation) : undefined;
  const hs = opts.hs ?? (await createMemoryHomeserver({ openRegistration: true, log, ...opts.homeserver, ...(federation ? { transport: federation } : {}) }));

  // The fallback origin is fixed once the port is known (only used for requests without a Host header).
  let origin = `http://${urlHost(host)}`;
  const { listener, tracker } = createRequestListener((req) => hs.handle(req), {
    get fallbackOrigin() {
      return origin;
    },
    log,
  });
  const server = createServer({ keepAlive: true }, listener);
  // Long-polling /sync holds requests for up to its timeout; do not let Node cut them at 5 minutes.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    if (!opts.hs) await hs.stop();
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  origin = `http://${urlHost(host)}:${port}`;
  // Learn the peers only once this host answers, so that peers probing us meanwhile find us too.
  federation?.start(hs.serverName);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Wake long-polls and tell every in-flight handler its client is going away, give them a moment
      // to answer, then cut whatever is left.
      federation?.stop();
      hs.notifier.wakeAll();
      tracker.abortAll();
      await tracker.idle(opts.drainMs ?? 2000);
      server.closeAllConnections();
      await stopped;
      await hs.stop();
    })());

  return {
    url: origin,
    port,
    host,
    hs,
    server,
    federation,
    get inFlight() {
      return tracker.inFlight;
    },
    close,
  };
}
