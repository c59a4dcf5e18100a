/** @matrix-p2p/server-core: the whole public surface. */
export * from './kernel/index.ts';
