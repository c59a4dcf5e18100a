/**
 * Query endpoints of the server-server API (spec: "Querying for information", "Published Room
 * Directory", "Content Repository"): room aliases, profiles, the published room directory and media,
 * for other servers. X-Matrix authenticated by the router.
 */
import * as v from 'valibot';
import { endpoint, type AnyEndpoint } from '../api/endpoint.ts';
import { MatrixError, invalidParam, notFound } from '../api/errors.ts';
import { checkAliasSyntax, localPublicRooms, type PublicRoomsQuery } from '../services/directory.ts';
import { DEFAULT_DOWNLOAD_WAIT_MS, loadMedia, multipartMediaResponse } from '../services/media.ts';
import { profileOf } from '../services/profile.ts';
import { PublicRoomsBody, QueryBool, QueryInt } from '../client/schemas.ts';
import type { Homeserver } from '../homeserver.ts';
import { isUserId, serverOf } from '../util/ids.ts';
import { roomServers } from './join.ts';

const SS = 'https://spec.matrix.org/latest/server-server-api';
const F = '/_matrix/federation/v1';

const PublicRoomsGetQuery = v.object({
  limit: v.optional(QueryInt(0)),
  since: v.optional(v.string()),
  include_all_networks: v.optional(QueryBool),
  third_party_instance_id: v.optional(v.string()),
});

const MediaQuery = v.object({ timeout_ms: v.optional(QueryInt(0)) });
const ThumbnailQuery = v.object({
  width: QueryInt(0),
  height: QueryInt(0),
  method: v.optional(v.picklist(['crop', 'scale'])),
  animated: v.optional(QueryBool),
  timeout_ms: v.optional(QueryInt(0)),
});

/** No application services, hence no third-party networks: a given instance lists nothing. */
async function publicRooms(hs: Homeserver, q: PublicRoomsQuery, thirdPartyInstance: string | undefined) {
  if (thirdPartyInstance !== undefined) return { chunk: [], total_room_count_estimate: 0 };
  return localPublicRooms(hs, q);
}

/** The local media of a federation media request (404 for anything else, never remote media we cached). */
async function localMedia(hs: Homeserver, mediaId: string, timeoutMs: number | undefined) {
  return loadMedia(hs, hs.serverName, mediaId, timeoutMs ?? DEFAULT_DOWNLOAD_WAIT_MS);
}

export const queriesFederationEndpoints: AnyEndpoint[] = [
  endpoint({
    method: 'GET', path: `${F}/query/directory`, auth: 'server', spec: `${SS}/#get_matrixfederationv1querydirectory`,
    query: v.object({ room_alias: v.string() }),
    handler: async ({ hs, query }) => {
      const alias = query.room_alias;
      checkAliasSyntax(alias);
      if (serverOf(alias) !== hs.serverName) throw notFound('Room alias not found.');
      const rec = await hs.store.rooms.alias(alias);
      if (!rec) throw notFound('Room alias not found.');
      // The servers in the room, ours first (a joining server tries them in order).
      const servers = [hs.serverName, ...[...(await roomServers(hs, rec.roomId))].sort()];
      return { room_id: rec.roomId, servers };
    },
  }),
  endpoint({
    method: 'GET', path: `${F}/query/profile`, auth: 'server', spec: `${SS}/#get_matrixfederationv1queryprofile`,
    query: v.object({ user_id: v.string(), field: v.optional(v.string()) }),
    handler: async ({ hs, query }) => {
      if (!isUserId(query.user_id)) throw invalidParam('Invalid user id');
      if (!hs.isLocal(query.user_id)) throw invalidParam('User is not hosted on this homeserver');
      const acct = await hs.store.accounts.get(query.user_id);
      if (!acct || acct.deactivated) throw notFound('User does not exist.');
      const profile: Record<string, string> = profileOf(acct);
      if (query.field === undefined) return profile;
      if (!Object.hasOwn(profile, query.field)) throw notFound('The queried field does not exist.');
      return { [query.field]: profile[query.field] };
    },
  }),
  endpoint({
    method: 'GET', path: `${F}/publicRooms`, auth: 'server', spec: `${SS}/#get_matrixfederationv1publicrooms`, query: PublicRoomsGetQuery,
    handler: ({ hs, query }) =>
      publicRooms(hs, { limit: query.limit, since: query.since }, query.include_all_networks ? undefined : query.third_party_instance_id),
  }),
  endpoint({
    method: 'POST', path: `${F}/publicRooms`, auth: 'server', spec: `${SS}/#post_matrixfederationv1publicrooms`, body: PublicRoomsBody,
    handler: ({ hs, body }) =>
      publicRooms(
        hs,
        {
          limit: body.limit ?? undefined,
          since: body.since ?? undefined,
          searchTerm: body.filter?.generic_search_term ?? undefined,
          roomTypes: body.filter?.room_types ?? undefined,
        },
        body.include_all_networks ? undefined : body.third_party_instance_id ?? undefined,
      ),
  }),
  endpoint({
    method: 'GET', path: `${F}/media/download/:mediaId`, auth: 'server', spec: `${SS}/#get_matrixfederationv1mediadownloadmediaid`, query: MediaQuery,
    handler: async ({ hs, params, query }) => multipartMediaResponse(await localMedia(hs, params.mediaId, query.timeout_ms)),
  }),
  endpoint({
    method: 'GET', path: `${F}/media/thumbnail/:mediaId`, auth: 'server', spec: `${SS}/#get_matrixfederationv1mediathumbnailmediaid`, query: ThumbnailQuery,
    handler: async ({ hs, params, query }) => {
      const rec = await localMedia(hs, params.mediaId, query.timeout_ms);
      // The original stands in for a thumbnail when it is an image (nothing is scaled here).
      if (!/^image\/(jpeg|png|apng|gif|webp)$/.test(rec.contentType.split(';')[0].trim().toLowerCase())) {
        throw new MatrixError(400, 'M_UNKNOWN', 'Cannot generate thumbnails for the requested content');
      }
      return multipartMediaResponse(rec, { thumbnail: true });
    },
  }),
];
