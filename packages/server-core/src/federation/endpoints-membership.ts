/**
 * Membership endpoints of the server-server API that do not join: invites (v2), make_leave /
 * send_leave (v1 and v2), make_knock / send_knock (spec: server-server API, "Inviting to a room",
 * "Leaving Rooms (Rejecting Invites)", "Knocking upon a room"). The work is in `membership.ts`.
 */
import * as v from 'valibot';
import { endpoint, type AnyEndpoint } from '../api/endpoint.ts';
import { missingParam } from '../api/errors.ts';
import { makeMembership, receiveInvite, sendMembership } from './membership.ts';

const SS = 'https://spec.matrix.org/latest/server-server-api';
const F = '/_matrix/federation';

const InviteBody = v.looseObject({
  room_version: v.string(),
  event: v.looseObject({}),
  invite_room_state: v.optional(v.array(v.unknown())),
});

export const membershipFederationEndpoints: AnyEndpoint[] = [
  endpoint({
    method: 'PUT', path: `${F}/v2/invite/:roomId/:eventId`, auth: 'server', spec: `${SS}/#put_matrixfederationv2inviteroomideventid`,
    body: InviteBody, maxBodyBytes: 512 * 1024,
    handler: async ({ hs, origin, params, body }) => receiveInvite(hs, origin!, params.roomId, params.eventId, body),
  }),
  endpoint({
    method: 'GET', path: `${F}/v1/make_leave/:roomId/:userId`, auth: 'server', spec: `${SS}/#get_matrixfederationv1make_leaveroomiduserid`,
    handler: async ({ hs, origin, params }) => makeMembership(hs, origin!, params.roomId, params.userId, 'leave'),
  }),
  endpoint({
    method: 'PUT', path: `${F}/v1/send_leave/:roomId/:eventId`, auth: 'server', spec: `${SS}/#put_matrixfederationv1send_leaveroomideventid`,
    body: v.looseObject({}), maxBodyBytes: 128 * 1024,
    // v1 answers `[200, {}]` (spec: leaving-v1, kept for older servers).
    handler: async ({ hs, origin, params, body }) => [200, await sendMembership(hs, origin!, params.roomId, params.eventId, body, 'leave')],
  }),
  endpoint({
    method: 'PUT', path: `${F}/v2/send_leave/:roomId/:eventId`, auth: 'server', spec: `${SS}/#put_matrixfederationv2send_leaveroomideventid`,
    body: v.looseObject({}), maxBodyBytes: 128 * 1024,
    handler: async ({ hs, origin, params, body }) => sendMembership(hs, origin!, params.roomId, params.eventId, body, 'leave'),
  }),
  endpoint({
    method: 'GET', path: `${F}/v1/make_knock/:roomId/:userId`, auth: 'server', spec: `${SS}/#get_matrixfederationv1make_knockroomiduserid`,
    repeatedQuery: ['ver'], query: v.object({ ver: v.optional(v.array(v.string())) }),
    handler: async ({ hs, origin, params, query }) => {
      if (!query.ver?.length) throw missingParam('ver is required');
      return makeMembership(hs, origin!, params.roomId, params.userId, 'knock', query.ver);
    },
  }),
  endpoint({
    method: 'PUT', path: `${F}/v1/send_knock/:roomId/:eventId`, auth: 'server', spec: `${SS}/#put_matrixfederationv1send_knockroomideventid`,
    body: v.looseObject({}), maxBodyBytes: 128 * 1024,
    handler: async ({ hs, origin, params, body }) => sendMembership(hs, origin!, params.roomId, params.eventId, body, 'knock'),
  }),
];
