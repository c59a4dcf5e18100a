/** Opening the browser node's homeserver over IndexedDB: the one place that names the database. */
import { CachingEngine, MIGRATIONS, createHomeserver, type FederationTransport, type Homeserver } from '@matrix-p2p/server-core';
import { openIdbEngine } from '@matrix-p2p/store-idb';
import type { HomeserverLike } from './host.ts';

/** The IndexedDB database that holds the node: keys, accounts, rooms, media. */
export const DATABASE_NAME = 'matrix-p2p';

export async function openIdbHomeserver(
  events: { onClosed: () => void },
  opts: { name?: string; log?: (e: unknown) => void; transport?: FederationTransport } = {},
): Promise<HomeserverLike> {
  let engine: CachingEngine | undefined;
  let opened: Homeserver | undefined;
  const idb = await openIdbEngine({
    name: opts.name ?? DATABASE_NAME,
    migrations: MIGRATIONS,
    // Another connection (a newer build of the worker) upgrades the schema: this one closed itself;
    // the next request opens the database again. This homeserver stops (its timers, its queues, its
    // directory announcements: they would go on beside the new one's) and its caches close (stale).
    onVersionChange: () => {
      if (opened) void opened.stop().catch(() => {});
      else void engine?.close().catch(() => {});
      events.onClosed();
    },
  });
  // This worker is the database's only writer (tabs share it), so small stores are mirrored in memory
  // and events / state groups cached: most reads of a send or a /sync then need no IndexedDB transaction.
  engine = new CachingEngine(idb, { migrations: MIGRATIONS });
  const hs = await createHomeserver({ engine, openRegistration: true, log: opts.log, ...(opts.transport ? { transport: opts.transport } : {}) });
  opened = hs;
  // The libp2p node's identity is the homeserver's signing key: the transport host asks for its seed.
  return Object.assign(hs, { nodeSeed: async () => (await hs.store.getMeta<string>('signing_seed')) ?? '' });
}
