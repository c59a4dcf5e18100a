/**
 * The HTTP side of the websocket port: browsers learn the rendezvous' multiaddrs from the port they already
 * know. Answers
 *   GET /rendezvous.json   {"peerId", "multiaddrs"}           (CORS: any origin)
 *   GET /multiaddr         the multiaddrs, one per line, preferred first
 *   GET /healthz           ok
 * and 404 otherwise; websocket upgrades still go to libp2p.
 *
 * @libp2p/websockets answers plain HTTP requests on its listening port with a 400 and offers no hook, so this
 * takes over the `request` event of the listener's HTTP server (the `http` / `https` property of its
 * WebSocketListener). `attachHttp` reports whether it found one; the test suite checks that it still does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RendezvousInfo } from '@matrix-p2p/transport-libp2p/constants';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface ServerLike {
  on(event: 'request', listener: Handler): unknown;
  removeAllListeners(event: 'request'): unknown;
}

function isServerLike(x: unknown): x is ServerLike {
  return !!x && typeof (x as ServerLike).on === 'function' && typeof (x as ServerLike).removeAllListeners === 'function';
}

export function infoHandler(info: () => RendezvousInfo): Handler {
  return (req, res) => {
    const headers: Record<string, string> = {
      'access-control-allow-origin': '*',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    };
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'OPTIONS') {
      headers['access-control-allow-methods'] = 'GET, OPTIONS';
      if (req.headers['access-control-request-private-network'] === 'true') headers['access-control-allow-private-network'] = 'true';
      res.writeHead(204, headers).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, allow: 'GET, OPTIONS' }).end();
      return;
    }
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { ...headers, 'content-type': type, 'content-length': String(Buffer.byteLength(body)) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const i = info();
    if (path === '/rendezvous.json' || path === '/.well-known/matrix-p2p/rendezvous') send(200, 'application/json', JSON.stringify(i));
    else if (path === '/multiaddr') send(200, 'text/plain; charset=utf-8', i.multiaddrs.join('\n') + '\n');
    else if (path === '/healthz') send(200, 'text/plain; charset=utf-8', 'ok\n');
    else send(404, 'text/plain; charset=utf-8', 'not found: this is a matrix-p2p rendezvous (websockets; GET /rendezvous.json)\n');
  };
}

/** Route plain HTTP requests on libp2p's websocket listeners to `handler`. Returns how many it took over. */
export function attachHttp(libp2p: unknown, handler: Handler): number {
  const tm = (libp2p as { components?: { transportManager?: { getListeners?: () => unknown[] } } }).components?.transportManager;
  let n = 0;
  for (const listener of tm?.getListeners?.() ?? []) {
    for (const server of [(listener as { http?: unknown }).http, (listener as { https?: unknown }).https]) {
      if (!isServerLike(server)) continue;
      server.removeAllListeners('request');
      server.on('request', handler);
      n++;
    }
  }
  return n;
}
