/**
 * History endpoints of the server-server API: `/event`, `/state`, `/state_ids`, `/event_auth`,
 * `/get_missing_events`, `/backfill` (spec: server-server API, "Retrieving events", "Backfilling and
 * retrieving missing events", "Retrieving event authorisation information"). The work is in `backfill.ts`.
 */
import * as v from 'valibot';
import { endpoint, type AnyEndpoint } from '../api/endpoint.ts';
import { missingParam } from '../api/errors.ts';
import { QueryInt } from '../client/schemas.ts';
import { serveBackfill, serveEvent, serveEventAuth, serveMissingEvents, serveState } from './backfill.ts';

const SS = 'https://spec.matrix.org/latest/server-server-api';
const F = '/_matrix/federation';

const EventIdQuery = v.object({ event_id: v.optional(v.string()) });
const IdList = v.pipe(v.array(v.string()), v.maxLength(100));
const MissingEventsBody = v.looseObject({
  earliest_events: IdList,
  latest_events: IdList,
  limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  min_depth: v.optional(v.pipe(v.number(), v.integer())),
});

function eventIdOf(q: { event_id?: string }): string {
  if (!q.event_id) throw missingParam('event_id is required');
  return q.event_id;
}

export const historyFederationEndpoints: AnyEndpoint[] = [
  endpoint({
    method: 'GET', path: `${F}/v1/event/:eventId`, auth: 'server', spec: `${SS}/#get_matrixfederationv1eventeventid`,
    handler: async ({ hs, origin, params }) => serveEvent(hs, origin!, params.eventId),
  }),
  endpoint({
    method: 'GET', path: `${F}/v1/state/:roomId`, auth: 'server', spec: `${SS}/#get_matrixfederationv1stateroomid`, query: EventIdQuery,
    handler: async ({ hs, origin, params, query }) => serveState(hs, origin!, params.roomId, eventIdOf(query), false),
  }),
  endpoint({
    method: 'GET', path: `${F}/v1/state_ids/:roomId`, auth: 'server', spec: `${SS}/#get_matrixfederationv1state_idsroomid`, query: EventIdQuery,
    handler: async ({ hs, origin, params, query }) => serveState(hs, origin!, params.roomId, eventIdOf(query), true),
  }),
  endpoint({
    method: 'GET', path: `${F}/v1/event_auth/:roomId/:eventId`, auth: 'server', spec: `${SS}/#get_matrixfederationv1event_authroomideventid`,
    handler: async ({ hs, origin, params }) => serveEventAuth(hs, origin!, params.roomId, params.eventId),
  }),
  endpoint({
    method: 'POST', path: `${F}/v1/get_missing_events/:roomId`, auth: 'server', spec: `${SS}/#post_matrixfederationv1get_missing_eventsroomid`,
    body: MissingEventsBody,
    handler: async ({ hs, origin, params, body }) => serveMissingEvents(hs, origin!, params.roomId, body),
  }),
  endpoint({
    method: 'GET', path: `${F}/v1/backfill/:roomId`, auth: 'server', spec: `${SS}/#get_matrixfederationv1backfillroomid`,
    repeatedQuery: ['v'], query: v.object({ v: v.optional(v.array(v.string())), limit: v.optional(QueryInt(0, 10_000)) }),
    handler: async ({ hs, origin, params, query }) => {
      if (!query.v?.length) throw missingParam('v is required');
      if (query.limit === undefined) throw missingParam('limit is required');
      return serveBackfill(hs, origin!, params.roomId, query.v, query.limit);
    },
  }),
];
