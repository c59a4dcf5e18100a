/**
 * Profiles, presence and the user directory (spec: client-server API, "Profiles", "Presence",
 * "User directory"). Remote users' profiles are asked of their servers (`GET /query/profile`); their
 * presence is what their servers' `m.presence` EDUs said.
 */
import * as v from 'valibot';
import { endpoint, type AnyEndpoint } from '../api/endpoint.ts';
import { forbidden, invalidParam, missingParam, notFound } from '../api/errors.ts';
import {
  MAX_AVATAR_URL_LENGTH, MAX_DISPLAYNAME_LENGTH, getPresence, localAccount, profileOf, searchUsers, setPresence, setProfileField, type ProfileField,
} from '../services/profile.ts';
import { queryRemoteProfile } from '../federation/queries.ts';
import type { Homeserver } from '../homeserver.ts';
import { isUserId } from '../util/ids.ts';

const CS = 'https://spec.matrix.org/latest/client-server-api';

/** A well-formed user id of another server, on a node that federates (asked of that server). */
function isRemoteUser(hs: Homeserver, userId: string): boolean {
  return hs.federation.enabled && isUserId(userId) && !hs.isLocal(userId);
}

/**
 * valibot's object schemas accept arrays; a request body must be a JSON object (M_BAD_JSON otherwise).
 * (Belongs in the router or client/schemas.ts for every endpoint; kept here until it is.)
 */
const objectBody = <S extends v.GenericSchema>(schema: S) =>
  v.pipe(v.custom<unknown>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), 'Body must be a JSON object'), schema);

/** Results per user directory search: 10 by default (spec), at most this many. */
const MAX_DIRECTORY_RESULTS = 100;

const FIELDS: Record<ProfileField, number> = { displayname: MAX_DISPLAYNAME_LENGTH, avatar_url: MAX_AVATAR_URL_LENGTH };

function profileFieldEndpoints(field: ProfileField): AnyEndpoint[] {
  return [
    endpoint({
      method: 'GET', path: `/_matrix/client/v3/profile/:userId/${field}`, auth: 'none', spec: `${CS}/#get_matrixclientv3profileuseridkeyname`,
      handler: async ({ hs, params }) => {
        if (isRemoteUser(hs, params.userId)) return queryRemoteProfile(hs, params.userId, field);
        const value = profileOf(await localAccount(hs, params.userId))[field];
        if (value === undefined) throw notFound(`No ${field} set for this user`);
        return { [field]: value };
      },
    }),
    endpoint({
      method: 'PUT', path: `/_matrix/client/v3/profile/:userId/${field}`, auth: 'user', spec: `${CS}/#put_matrixclientv3profileuseridkeyname`,
      body: objectBody(v.looseObject({ [field]: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(FIELDS[field], `${field} is too long`)))) })),
      handler: async ({ hs, user, params, body }) => {
        if (params.userId !== user.userId) throw forbidden(`You cannot change the ${field} of another user`);
        if (!(field in body)) throw missingParam(`${field} is required`);
        // An empty string or null clears the field (as Synapse).
        const value = (body[field] as string | null | undefined) || undefined;
        if (field === 'avatar_url' && value !== undefined && !/^mxc:\/\/[^/]+\/[^/]+$/.test(value)) throw invalidParam('avatar_url must be an mxc:// URI');
        await setProfileField(hs, user.userId, field, value);
        return {};
      },
    }),
  ];
}

export const profileEndpoints: AnyEndpoint[] = [
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/profile/:userId', auth: 'none', spec: `${CS}/#get_matrixclientv3profileuserid`,
    handler: async ({ hs, params }) => {
      if (isRemoteUser(hs, params.userId)) return queryRemoteProfile(hs, params.userId);
      return profileOf(await localAccount(hs, params.userId));
    },
  }),
  ...profileFieldEndpoints('displayname'),
  ...profileFieldEndpoints('avatar_url'),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/user_directory/search', auth: 'user', spec: `${CS}/#post_matrixclientv3user_directorysearch`,
    body: objectBody(v.looseObject({ search_term: v.string(), limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))) })),
    handler: ({ hs, user, body }) => searchUsers(hs, user.userId, body.search_term, Math.min(body.limit ?? 10, MAX_DIRECTORY_RESULTS)),
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/presence/:userId/status', auth: 'user', spec: `${CS}/#get_matrixclientv3presenceuseridstatus`,
    handler: ({ hs, user, params }) => getPresence(hs, user.userId, params.userId),
  }),
  endpoint({
    method: 'PUT', path: '/_matrix/client/v3/presence/:userId/status', auth: 'user', spec: `${CS}/#put_matrixclientv3presenceuseridstatus`,
    body: objectBody(v.looseObject({
      presence: v.picklist(['online', 'offline', 'unavailable']),
      status_msg: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(1024)))),
    })),
    handler: async ({ hs, user, params, body }) => {
      if (params.userId !== user.userId) throw forbidden('You cannot set the presence of another user');
      await setPresence(hs, user.userId, body.presence, body.status_msg);
      return {};
    },
  }),
];
