/** @matrix-p2p/server-core: the whole public surface. */
export * from './kernel/index.ts';
export { createHomeserver, createMemoryHomeserver, Homeserver, serverNameOf, type HomeserverOptions } from './homeserver.ts';
export * from './store/index.ts';
export { MatrixError } from './api/errors.ts';
export type { Endpoint, AnyEndpoint, RequestContext, Requester } from './api/endpoint.ts';
export { ENDPOINTS } from './endpoints.ts';
