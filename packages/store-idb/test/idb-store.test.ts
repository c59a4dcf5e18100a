// The Store conformance suite over the IndexedDB engine (fake-indexeddb in Node).
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import type { Migration } from '../../server-core/src/store/engine.ts';
import { storeConformance } from '../../server-core/src/store/store-conformance.ts';
import { openIdbEngine } from '../src/index.ts';

const named = new Map<string, IDBFactory>();
storeConformance(
  'IndexedDB (fake-indexeddb)',
  async (migrations: Migration[], dbName?: string) => {
    let factory = new IDBFactory();
    if (dbName !== undefined) {
      factory = named.get(dbName) ?? factory;
      named.set(dbName, factory);
    }
    return openIdbEngine({ name: dbName ?? 'store', migrations, indexedDB: factory });
  },
  { describe, it, expect },
  { persistent: true },
);
