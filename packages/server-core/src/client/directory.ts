/**
 * Room aliases and the published room directory (spec: client-server API, "Room aliases",
 * "Room discovery" / "Published room directory").
 */
import * as v from 'valibot';
import { endpoint, type AnyEndpoint } from '../api/endpoint.ts';
import { forbidden, invalidParam, notFound } from '../api/errors.ts';
import type { Homeserver } from '../homeserver.ts';
import type { JsonObject } from '../kernel/types.ts';
import { aggregatedPublicRooms, checkAliasSyntax, createAlias, deleteAlias, localPublicRooms, resolveRemoteAlias, setRoomVisibility, type PublicRoomsQuery } from '../services/directory.ts';
import { isRoomId, serverOf } from '../util/ids.ts';
import { queryRemotePublicRooms, type RemotePublicRoomsQuery } from '../federation/queries.ts';
import { PublicRoomsBody, QueryInt } from './schemas.ts';

const CS = 'https://spec.matrix.org/latest/client-server-api';

/**
 * valibot's object schemas accept arrays; a request body must be a JSON object (M_BAD_JSON otherwise).
 * (Belongs in the router or client/schemas.ts for every endpoint; kept here until it is.)
 */
const objectBody = <S extends v.GenericSchema>(schema: S) =>
  v.pipe(v.custom<unknown>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), 'Body must be a JSON object'), schema);

function requireRoomId(roomId: string): void {
  if (!isRoomId(roomId)) throw invalidParam('Invalid room id');
}

/** A server name as a client may give it (`server=`): hostname[:port] or an IP literal. */
const SERVER_NAME = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::\d{1,5})?$/;

/**
 * Our directory, or another server's over federation (`GET` / `POST /_matrix/federation/v1/publicRooms`).
 * Ours is the aggregated directory of every active node when we federate (issue #7: rooms are found
 * through the peers), else the local one.
 */
async function publicRooms(hs: Homeserver, server: string | undefined, q: PublicRoomsQuery, thirdPartyInstance?: string, remote: RemotePublicRoomsQuery = {}) {
  if (server !== undefined && server !== '' && server !== hs.serverName) {
    if (!SERVER_NAME.test(server)) throw invalidParam('Invalid server name');
    if (!hs.federation.enabled) throw notFound(`Cannot list the rooms of ${server}: federation is not enabled on this node`);
    return queryRemotePublicRooms(hs, server, remote);
  }
  // No application services, hence no third-party networks: a given instance lists nothing.
  if (thirdPartyInstance !== undefined) return { chunk: [], total_room_count_estimate: 0 };
  return hs.federation.enabled ? aggregatedPublicRooms(hs, q) : localPublicRooms(hs, q);
}

const PublicRoomsGetQuery = v.object({
  limit: v.optional(QueryInt(0)),
  since: v.optional(v.string()),
  server: v.optional(v.string()),
});

export const directoryEndpoints: AnyEndpoint[] = [
  endpoint({
    method: 'PUT', path: '/_matrix/client/v3/directory/room/:roomAlias', auth: 'user', spec: `${CS}/#put_matrixclientv3directoryroomroomalias`,
    body: objectBody(v.looseObject({ room_id: v.string() })),
    handler: async ({ hs, user, params, body }) => {
      requireRoomId(body.room_id);
      await createAlias(hs, user.userId, params.roomAlias, body.room_id);
      return {};
    },
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/directory/room/:roomAlias', auth: 'none', spec: `${CS}/#get_matrixclientv3directoryroomroomalias`,
    handler: async ({ hs, params }) => {
      const alias = params.roomAlias;
      checkAliasSyntax(alias);
      if (serverOf(alias) !== hs.serverName) {
        if (!hs.federation.enabled) throw notFound(`Room alias ${alias} not found (federation is not enabled on this node).`);
        // Its server when reachable, else the nodes' aggregated directory.
        return resolveRemoteAlias(hs, alias);
      }
      const rec = await hs.store.rooms.alias(alias);
      if (!rec) throw notFound(`Room alias ${alias} not found.`);
      return { room_id: rec.roomId, servers: rec.servers?.length ? rec.servers : [hs.serverName] };
    },
  }),
  endpoint({
    method: 'DELETE', path: '/_matrix/client/v3/directory/room/:roomAlias', auth: 'user', spec: `${CS}/#delete_matrixclientv3directoryroomroomalias`,
    handler: async ({ hs, user, params }) => (await deleteAlias(hs, user.userId, params.roomAlias), {}),
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/rooms/:roomId/aliases', auth: 'user', spec: `${CS}/#get_matrixclientv3roomsroomidaliases`,
    handler: async ({ hs, user, params }) => {
      const roomId = params.roomId;
      requireRoomId(roomId);
      const m = await hs.store.rooms.membership(roomId, user.userId);
      if (m?.membership !== 'join') {
        const hv = (await hs.store.rooms.stateEvent(roomId, 'm.room.history_visibility', ''))?.pdu.content as JsonObject | undefined;
        if (hv?.history_visibility !== 'world_readable') throw forbidden('You are not a member of the room.');
      }
      return { aliases: (await hs.store.rooms.aliasesOfRoom(roomId)).map((a) => a.alias).sort() };
    },
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/directory/list/room/:roomId', auth: 'none', spec: `${CS}/#get_matrixclientv3directorylistroomroomid`,
    handler: async ({ hs, params }) => {
      requireRoomId(params.roomId);
      const room = await hs.store.rooms.room(params.roomId);
      if (!room) throw notFound('Room not found');
      return { visibility: room.published === 1 ? 'public' : 'private' };
    },
  }),
  endpoint({
    method: 'PUT', path: '/_matrix/client/v3/directory/list/room/:roomId', auth: 'user', spec: `${CS}/#put_matrixclientv3directorylistroomroomid`,
    body: objectBody(v.looseObject({ visibility: v.optional(v.picklist(['public', 'private'])) })),
    handler: async ({ hs, user, params, body }) => {
      requireRoomId(params.roomId);
      await setRoomVisibility(hs, user.userId, params.roomId, body.visibility ?? 'public');
      return {};
    },
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/publicRooms', auth: 'none', spec: `${CS}/#get_matrixclientv3publicrooms`,
    query: PublicRoomsGetQuery,
    handler: ({ hs, query }) => publicRooms(hs, query.server, { limit: query.limit, since: query.since }, undefined, { limit: query.limit, since: query.since }),
  }),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/publicRooms', auth: 'user', spec: `${CS}/#post_matrixclientv3publicrooms`,
    query: v.object({ server: v.optional(v.string()) }), body: objectBody(PublicRoomsBody),
    handler: ({ hs, query, body }) =>
      publicRooms(
        hs,
        query.server,
        {
          limit: body.limit ?? undefined,
          since: body.since ?? undefined,
          searchTerm: body.filter?.generic_search_term ?? undefined,
          roomTypes: body.filter?.room_types ?? undefined,
        },
        body.include_all_networks ? undefined : body.third_party_instance_id ?? undefined,
        {
          limit: body.limit ?? undefined,
          since: body.since ?? undefined,
          filter: body.filter ? (body.filter as unknown as JsonObject) : undefined,
          include_all_networks: body.include_all_networks ?? undefined,
          third_party_instance_id: body.third_party_instance_id ?? undefined,
        },
      ),
  }),
];
