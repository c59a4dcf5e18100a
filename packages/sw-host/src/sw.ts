/**
 * The Service Worker script (built into one classic `sw.js`): the homeserver over IndexedDB, the
 * app-shell cache, Element Web's media job, and the status messages. See host.ts.
 */
import { createSwHost } from './host.ts';
import { openIdbHomeserver } from './open.ts';
import type { SwScope } from './worker-types.ts';

/** Injected by the build: the app shell to precache, and the build id. */
declare const __MATRIX_P2P_PRECACHE__: string[];
declare const __MATRIX_P2P_VERSION__: string;

const log = (message: string, e?: unknown) => console.error(`[matrix-p2p sw] ${message}`, e ?? '');

createSwHost(self as unknown as SwScope, {
  openHomeserver: (events) => openIdbHomeserver(events, { log: (e) => log('internal error', e) }),
  precache: __MATRIX_P2P_PRECACHE__,
  version: __MATRIX_P2P_VERSION__,
  log,
});
