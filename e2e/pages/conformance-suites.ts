/**
 * The suites that run in Chromium against the real IndexedDB engine, registered on a harness. Imported
 * by the test page (to run them) and by conformance.spec.ts in Node (to name one Playwright test each).
 */
import { engineConformance } from '../../packages/server-core/src/store/engine-conformance.ts';
import { storeConformance } from '../../packages/server-core/src/store/store-conformance.ts';
import type { Migration, StorageEngine } from '../../packages/server-core/src/store/engine.ts';
import type { Harness } from '../harness.ts';

export type MakeEngine = (migrations: Migration[], dbName?: string) => Promise<StorageEngine>;

export const ENGINE_NAME = 'IndexedDB (Chromium)';

export function registerConformance(h: Harness, make: MakeEngine): void {
  const t = { describe: h.describe, it: h.it, expect: h.expect };
  engineConformance(ENGINE_NAME, make, t, { persistent: true });
  storeConformance(ENGINE_NAME, make, t, { persistent: true });
}
