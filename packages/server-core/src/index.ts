/** @matrix-p2p/server-core: the whole public surface. */
export * from './kernel/index.ts';
export { createHomeserver, createMemoryHomeserver, createNetworkedMemoryHomeserver, Homeserver, serverNameOf, type HomeserverOptions } from './homeserver.ts';
export { InProcessNetwork } from './federation/in-process.ts';
export type { FederationTransport, FetchOptions, RemoteContext } from './federation/transport.ts';
export { FederationError } from './federation/service.ts';
export { PEER_DIRECTORY_PATH, PeerDirectory, type PeerDirectoryOptions, type PeerDirectoryStats, type DirectoryEntry } from './services/peer-directory.ts';
export * from './store/index.ts';
export { CachingEngine, MIRRORED_STORES, CACHED_STORES, MIRROR_LIMITS, type CachingEngineOptions, type CachingEngineStats } from './store/caching-engine.ts';
export { MatrixError } from './api/errors.ts';
export { jsonResponse, jsonResponseText, lateBody } from './api/router.ts';
export { clientVersions } from './client/discovery.ts';
export type { Endpoint, AnyEndpoint, RequestContext, Requester } from './api/endpoint.ts';
export { ENDPOINTS } from './endpoints.ts';
