/** Opening the browser node's homeserver over IndexedDB: the one place that names the database. */
import { MIGRATIONS, createHomeserver } from '@matrix-p2p/server-core';
import { openIdbEngine } from '@matrix-p2p/store-idb';
import type { HomeserverLike } from './host.ts';

/** The IndexedDB database that holds the node: keys, accounts, rooms, media. */
export const DATABASE_NAME = 'matrix-p2p';

export async function openIdbHomeserver(
  events: { onClosed: () => void },
  opts: { name?: string; log?: (e: unknown) => void } = {},
): Promise<HomeserverLike> {
  const engine = await openIdbEngine({
    name: opts.name ?? DATABASE_NAME,
    migrations: MIGRATIONS,
    // Another connection (a newer build of the worker) upgrades the schema: this one closed itself;
    // the next request opens the database again.
    onVersionChange: () => events.onClosed(),
  });
  return createHomeserver({ engine, openRegistration: true, log: opts.log });
}
