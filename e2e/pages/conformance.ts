/** The conformance page: runs the Store and StorageEngine suites over the browser's real IndexedDB. */
import { openIdbEngine } from '../../packages/store-idb/src/index.ts';
import { createHarness, type HarnessResult } from '../harness.ts';
import { registerConformance } from './conformance-suites.ts';

const h = createHarness();
let fresh = 0;
const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
registerConformance(h, (migrations, dbName) =>
  // Without a name: a new, empty database. With one: that database, created or re-opened.
  openIdbEngine({ name: dbName !== undefined ? `conformance-${run}-named-${dbName}` : `conformance-${run}-${fresh++}`, migrations }),
);

declare global {
  interface Window {
    conformanceNames: () => string[];
    runConformance: () => Promise<HarnessResult[]>;
  }
}

window.conformanceNames = () => h.names();
window.runConformance = async () => {
  const out = document.getElementById('out')!;
  const results = await h.run((r) => {
    out.textContent += `${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.error ? `\n     ${r.error.split('\n')[0]}` : ''}\n`;
  });
  const bad = results.filter((r) => !r.ok).length;
  out.textContent += `\n${results.length - bad} passed, ${bad} failed\n`;
  return results;
};
