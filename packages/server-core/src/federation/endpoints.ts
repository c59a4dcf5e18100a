/**
 * Server-server API endpoints (spec: server-server API). Declared in the same typed table as the
 * client API; `auth: 'server'` endpoints are X-Matrix authenticated by the router.
 */
import * as v from 'valibot';
import { endpoint, type AnyEndpoint } from '../api/endpoint.ts';
import { MatrixError } from '../api/errors.ts';
import { encodeBase64 } from '../kernel/base64.ts';
import { signJson } from '../kernel/signing.ts';
import type { JsonObject } from '../kernel/types.ts';
import { handleEdu } from './edu-handlers.ts';
import { makeJoin, sendJoin } from './join.ts';
import { edusFederationEndpoints } from './endpoints-edus.ts';
import { historyFederationEndpoints } from './endpoints-history.ts';
import { membershipFederationEndpoints } from './endpoints-membership.ts';
import { queriesFederationEndpoints } from './endpoints-queries.ts';
import { directoryFederationEndpoints } from './endpoints-directory.ts';

const SS = 'https://spec.matrix.org/latest/server-server-api';
const F = '/_matrix/federation';

const TxnBody = v.looseObject({
  origin: v.string(),
  origin_server_ts: v.number(),
  pdus: v.array(v.unknown()),
  edus: v.optional(v.array(v.unknown())),
});

export const coreFederationEndpoints: AnyEndpoint[] = [
  endpoint({
    method: 'GET', path: `${F}/v1/version`, auth: 'none', spec: `${SS}/#get_matrixfederationv1version`,
    handler: () => ({ server: { name: 'matrix-p2p', version: '0.1.0' } }),
  }),
  endpoint({
    method: 'GET', path: '/_matrix/key/v2/server', auth: 'none', spec: `${SS}/#get_matrixkeyv2server`,
    handler: async ({ hs }) => {
      // Our key is our name; serving it keeps ordinary servers and tools working (spec: "Retrieving server keys").
      const body = {
        server_name: hs.serverName,
        valid_until_ts: hs.clock() + 7 * 24 * 3600 * 1000,
        verify_keys: { [hs.signingKey.keyId]: { key: encodeBase64(hs.signingKey.publicKey) } },
        old_verify_keys: {},
      };
      return signJson(body, hs.serverName, hs.signingKey);
    },
  }),
  endpoint({
    method: 'PUT', path: `${F}/v1/send/:txnId`, auth: 'server', spec: `${SS}/#put_matrixfederationv1sendtxnid`, body: TxnBody, maxBodyBytes: 8 * 1024 * 1024,
    // The PDUs' signature checks go beside the X-Matrix one (Ingester.verifyEarly).
    early: (hs, json) => {
      const pdus = (json as { pdus?: unknown } | null)?.pdus;
      if (Array.isArray(pdus)) hs.ingest.verifyEarly(pdus);
    },
    handler: async ({ hs, origin, body, params }) => {
      if (body.origin !== origin) throw new MatrixError(400, 'M_FORBIDDEN', 'Transaction origin does not match the authenticated server');
      if (body.pdus.length > 50 || (body.edus?.length ?? 0) > 100) throw new MatrixError(400, 'M_BAD_JSON', 'Too many PDUs or EDUs in one transaction');
      return hs.federation.receiveTransaction(origin!, params.txnId, async () => {
        const pdus = await hs.ingest.receivePdus(origin!, body.pdus);
        for (const edu of body.edus ?? []) {
          try {
            await handleEdu(hs, origin!, edu);
          } catch (e) {
            hs.log(e);
          }
        }
        return { pdus } as unknown as JsonObject;
      });
    },
  }),
  endpoint({
    method: 'GET', path: `${F}/v1/make_join/:roomId/:userId`, auth: 'server', spec: `${SS}/#get_matrixfederationv1make_joinroomiduserid`, repeatedQuery: ['ver'],
    query: v.object({ ver: v.optional(v.array(v.string())) }),
    handler: async ({ hs, origin, params, query }) => makeJoin(hs, origin!, params.roomId, params.userId, query.ver ?? ['1']),
  }),
  endpoint({
    method: 'PUT', path: `${F}/v2/send_join/:roomId/:eventId`, auth: 'server', spec: `${SS}/#put_matrixfederationv2send_joinroomideventid`,
    body: v.looseObject({}), maxBodyBytes: 128 * 1024,
    query: v.object({ omit_members: v.optional(v.string()) }),
    handler: async ({ hs, origin, params, body }) => sendJoin(hs, origin!, params.roomId, params.eventId, body),
  }),
];

export const FEDERATION_ENDPOINTS: AnyEndpoint[] = [
  ...coreFederationEndpoints,
  ...membershipFederationEndpoints,
  ...historyFederationEndpoints,
  ...queriesFederationEndpoints,
  ...edusFederationEndpoints,
  ...directoryFederationEndpoints,
];
