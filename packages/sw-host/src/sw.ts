/**
 * The Service Worker script (built into one classic `sw.js`): the homeserver over IndexedDB, the
 * app-shell cache, Element Web's media job, and the status messages. See host.ts.
 */
import { clientVersions, jsonResponse } from '@matrix-p2p/server-core';
import { createWorkerFederation } from './federation.ts';
import { createSwHost } from './host.ts';
import { openIdbHomeserver } from './open.ts';
import { NEED_HOST } from './protocol.ts';
import type { SwScope } from './worker-types.ts';

/** Injected by the build: the app shell to precache, and the build id. */
declare const __MATRIX_P2P_PRECACHE__: string[];
declare const __MATRIX_P2P_VERSION__: string;

const log = (message: string, e?: unknown) => console.error(`[matrix-p2p sw] ${message}`, e ?? '');

const scope = self as unknown as SwScope;
// The libp2p node runs in a tab (the transport host); this run of the worker starts without one and asks.
const federation = createWorkerFederation({
  askForHost: () =>
    void scope.clients.matchAll?.({ type: 'window' }).then((cs) => cs.forEach((c) => c.postMessage({ type: NEED_HOST }))).catch(() => {}),
});
// A restarted worker has lost its host's port: ask the pages at once (the elected tab attaches again).
void scope.clients.matchAll?.({ type: 'window' }).then((cs) => cs.forEach((c) => c.postMessage({ type: NEED_HOST }))).catch(() => {});

createSwHost(scope, {
  // `/versions` is constant: a restarted worker answers it without waiting for IndexedDB.
  constantAnswer: (request, url) =>
    request.method === 'GET' && url.pathname === '/_matrix/client/versions' ? jsonResponse(200, clientVersions()) : undefined,
  openHomeserver: (events) => openIdbHomeserver(events, { log: (e) => log('internal error', e), transport: federation.transport }),
  federation,
  precache: __MATRIX_P2P_PRECACHE__,
  version: __MATRIX_P2P_VERSION__,
  log,
});
