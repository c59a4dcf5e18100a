/** @matrix-p2p/store-idb: the IndexedDB StorageEngine. */
export { openIdbEngine, type IdbEngineOptions } from './idb-engine.ts';
