/** `/sync` and filters (spec: client-server API, "Syncing", "Filtering"). */
import * as v from 'valibot';
import { endpoint, longPoll } from '../api/endpoint.ts';
import { MatrixError, forbidden, notFound } from '../api/errors.ts';
import { parseJson } from '../kernel/canonical-json.ts';
import type { JsonObject } from '../kernel/types.ts';
import { validateFilter, type Filter } from '../services/filters.ts';
import { randomId } from '../util/ids.ts';
import { JsonObjectSchema, QueryBool, QueryInt } from './schemas.ts';

const CS = 'https://spec.matrix.org/latest/client-server-api';

export const syncEndpoints = [
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/sync', auth: 'user', spec: `${CS}/#get_matrixclientv3sync`,
    query: v.object({
      since: v.optional(v.string()),
      timeout: v.optional(QueryInt(0)),
      filter: v.optional(v.string()),
      full_state: v.optional(QueryBool),
      set_presence: v.optional(v.picklist(['online', 'offline', 'unavailable'])),
      use_state_after: v.optional(v.string()),
    }),
    handler: async ({ hs, user, query }) => {
      let filter: Filter = {};
      if (query.filter) {
        if (query.filter.trimStart().startsWith('{')) {
          let json: unknown;
          try {
            json = parseJson(query.filter, { rejectFloats: false });
          } catch {
            throw new MatrixError(400, 'M_INVALID_PARAM', 'filter is not valid JSON');
          }
          filter = validateFilter(json, 'M_INVALID_PARAM');
        } else {
          const stored = await hs.store.userData.filter(user.userId, query.filter);
          if (!stored) throw new MatrixError(400, 'M_INVALID_PARAM', `Unknown filter ${query.filter}`);
          filter = validateFilter(stored, 'M_INVALID_PARAM');
        }
      }
      const params = { since: query.since, timeout: query.timeout ?? 0, filter, fullState: query.full_state ?? false };
      return longPoll((waiting, signal) => hs.sync.sync(user, { ...params, signal, waiting }));
    },
  }),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/user/:userId/filter', auth: 'user', spec: `${CS}/#post_matrixclientv3useruseridfilter`, body: JsonObjectSchema,
    handler: async ({ hs, user, params, body }) => {
      if (params.userId !== user.userId) throw forbidden('Cannot create filters for other users');
      validateFilter(body);
      const filterId = randomId(8);
      await hs.store.batch().put('filters', { userId: user.userId, filterId, filter: body }).commit();
      return { filter_id: filterId };
    },
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/user/:userId/filter/:filterId', auth: 'user', spec: `${CS}/#get_matrixclientv3useruseridfilterfilterid`,
    handler: async ({ hs, user, params }) => {
      if (params.userId !== user.userId) throw forbidden('Cannot read filters of other users');
      const f = await hs.store.userData.filter(user.userId, params.filterId);
      if (!f) throw notFound('Unknown filter');
      return f as JsonObject;
    },
  }),
];
