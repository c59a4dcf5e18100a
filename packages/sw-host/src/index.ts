/**
 * @matrix-p2p/sw-host: the homeserver as a Service Worker. The worker script itself is `src/sw.ts`
 * (built to `sw.js`); pages use `@matrix-p2p/sw-host/client`.
 */
export { createSwHost, isHomeserverPath, trustedMediaRequest, CACHE_PREFIX, type SwHost, type SwHostOptions, type HomeserverLike } from './host.ts';
export { openIdbHomeserver, DATABASE_NAME } from './open.ts';
export type { WorkerRequest, WorkerReply, WorkerStatus } from './protocol.ts';
export type { SwScope, FetchEvent, ExtendableEvent, ExtendableMessageEvent } from './worker-types.ts';
