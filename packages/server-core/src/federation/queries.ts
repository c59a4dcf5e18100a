/**
 * Queries of other servers (spec: server-server API, "Querying for information", "Published Room
 * Directory"): room aliases, profiles, another server's public rooms. Used by the client API when what a
 * client asks for belongs to another server.
 */
import { MatrixError, notFound } from '../api/errors.ts';
import type { JsonObject, JsonValue } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import { isRoomId, serverOf } from '../util/ids.ts';
import { FederationError } from './service.ts';

const F = '/_matrix/federation/v1';

/** A federation failure as the client should see it: the remote's 4xx as is, anything else 502. */
export function remoteFailure(e: unknown, what: string): MatrixError {
  if (e instanceof MatrixError) return e;
  if (e instanceof FederationError) {
    if (e.status === 404) return notFound(`${what}: not found on ${e.destination}`);
    if (e.status >= 400 && e.status < 500 && e.status !== 401 && e.status !== 429) return new MatrixError(e.status, e.errcode, `${what}: ${e.message}`);
    return new MatrixError(502, 'M_UNKNOWN', `${what}: ${e.destination} could not be reached (${e.message})`);
  }
  return new MatrixError(502, 'M_UNKNOWN', `${what}: remote request failed`);
}

/**
 * Resolve an alias of another server with `GET /query/directory`: its room and servers to join through
 * (the alias's server last, when the answer leaves it out). Throws 404 when the alias does not exist,
 * 502 when its server cannot be reached.
 */
export async function lookupRemoteAlias(hs: Homeserver, alias: string): Promise<{ room_id: string; servers: string[] }> {
  const server = serverOf(alias);
  if (!hs.federation.enabled) throw notFound(`Room alias ${alias} not found (this node does not federate)`);
  let res: JsonObject;
  try {
    res = await hs.federation.request(server, 'GET', `${F}/query/directory?room_alias=${encodeURIComponent(alias)}`);
  } catch (e) {
    throw remoteFailure(e, `Room alias ${alias}`);
  }
  if (!isRoomId(res.room_id)) throw new MatrixError(502, 'M_UNKNOWN', `${server} answered without a room id`);
  const servers = Array.isArray(res.servers) ? res.servers.filter((s): s is string => typeof s === 'string' && s.length > 0 && s.length <= 255) : [];
  if (!servers.includes(server)) servers.push(server);
  return { room_id: res.room_id, servers: [...new Set(servers)] };
}

/** The profile fields a client gets of a remote user: string values only (null means unset). */
function cleanProfile(res: JsonObject): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(res)) if (typeof v === 'string') out[k] = v;
  return out;
}

/**
 * A remote user's profile (`GET /query/profile`), or one field of it. Throws 404 when the user or field
 * does not exist, the remote's refusal (403) as is, 502 when the server cannot be reached.
 */
export async function queryRemoteProfile(hs: Homeserver, userId: string, field?: string): Promise<Record<string, JsonValue>> {
  if (!hs.federation.enabled) throw notFound('Profile not found (this node does not federate)');
  const q = `user_id=${encodeURIComponent(userId)}${field ? `&field=${encodeURIComponent(field)}` : ''}`;
  let res: JsonObject;
  try {
    res = await hs.federation.request(serverOf(userId), 'GET', `${F}/query/profile?${q}`);
  } catch (e) {
    throw remoteFailure(e, 'Profile');
  }
  const p = cleanProfile(res && typeof res === 'object' && !Array.isArray(res) ? res : {});
  if (field) {
    if (p[field] === undefined) throw notFound(`No ${field} set for this user`);
    return { [field]: p[field] };
  }
  return p;
}

/** What a client may ask of another server's directory. */
export interface RemotePublicRoomsQuery {
  limit?: number;
  since?: string;
  filter?: JsonObject;
  include_all_networks?: boolean;
  third_party_instance_id?: string;
}

/**
 * Another server's published rooms (`GET` or, with a filter, `POST /publicRooms`). Throws the remote's
 * 4xx, or 502 when it cannot be reached.
 */
export async function queryRemotePublicRooms(hs: Homeserver, server: string, q: RemotePublicRoomsQuery): Promise<JsonObject> {
  if (!hs.federation.enabled) throw notFound(`Cannot list the rooms of ${server}: this node does not federate`);
  let res: JsonObject;
  try {
    if (q.filter !== undefined || q.third_party_instance_id !== undefined) {
      const body: JsonObject = {};
      if (q.limit !== undefined) body.limit = q.limit;
      if (q.since !== undefined) body.since = q.since;
      if (q.filter !== undefined) body.filter = q.filter;
      if (q.include_all_networks !== undefined) body.include_all_networks = q.include_all_networks;
      if (q.third_party_instance_id !== undefined) body.third_party_instance_id = q.third_party_instance_id;
      res = await hs.federation.request(server, 'POST', `${F}/publicRooms`, body);
    } else {
      const params = new URLSearchParams();
      if (q.limit !== undefined) params.set('limit', String(q.limit));
      if (q.since !== undefined) params.set('since', q.since);
      if (q.include_all_networks !== undefined) params.set('include_all_networks', String(q.include_all_networks));
      const qs = params.toString();
      res = await hs.federation.request(server, 'GET', `${F}/publicRooms${qs ? `?${qs}` : ''}`);
    }
  } catch (e) {
    throw remoteFailure(e, `Public rooms of ${server}`);
  }
  const chunk = Array.isArray(res.chunk) ? res.chunk.filter((c) => c && typeof c === 'object' && !Array.isArray(c) && isRoomId((c as JsonObject).room_id)) : [];
  const out: JsonObject = { chunk, total_room_count_estimate: typeof res.total_room_count_estimate === 'number' ? res.total_room_count_estimate : chunk.length };
  if (typeof res.next_batch === 'string') out.next_batch = res.next_batch;
  if (typeof res.prev_batch === 'string') out.prev_batch = res.prev_batch;
  return out;
}
