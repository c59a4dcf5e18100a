/**
 * Queries of other servers (spec: server-server API, "Querying for information"): aliases, profiles.
 * Placeholder signatures: filled in by the federation queries work.
 */
import type { Homeserver } from '../homeserver.ts';

/** Resolve a remote alias with `GET /query/directory`; undefined when it does not exist or cannot be reached. */
export async function queryRemoteAlias(_hs: Homeserver, _alias: string): Promise<{ room_id: string; servers: string[] } | undefined> {
  return undefined;
}
