/**
 * Device and key endpoints of the server-server API (spec: "Device Management", "End-to-End
 * Encryption"): a local user's device list, key queries and one-time key claims, for other servers.
 * The EDUs themselves arrive in `/send` (edu-handlers.ts) and leave through edus-out.ts.
 */
import * as v from 'valibot';
import { endpoint, type AnyEndpoint } from '../api/endpoint.ts';
import { invalidParam } from '../api/errors.ts';
import { claimLocalKeys, localDeviceList, queryLocalKeys } from '../services/keys.ts';
import { isUserId } from '../util/ids.ts';
import type { JsonObject } from '../kernel/types.ts';
import { deviceListStreamId } from './edus-out.ts';

const SS = 'https://spec.matrix.org/latest/server-server-api';
const F = '/_matrix/federation/v1';

/** At most this many users or devices per query or claim (a bound on the work one request causes). */
const MAX_ENTRIES = 1000;
const bounded = <T extends Record<string, unknown>>(what: string) =>
  v.check<T, string>((x) => Object.keys(x).length <= MAX_ENTRIES, `too many ${what}`);

/** A JSON object (valibot's records also accept arrays). */
const plainObject = v.custom<Record<string, unknown>>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), 'must be an object');

const QueryBody = v.looseObject({
  device_keys: v.pipe(plainObject, v.record(v.string(), v.pipe(v.array(v.string()), v.maxLength(MAX_ENTRIES))), bounded('users')),
});
const ClaimBody = v.looseObject({
  one_time_keys: v.pipe(plainObject, v.record(v.string(), v.pipe(plainObject, v.record(v.string(), v.string()), bounded('devices'))), bounded('users')),
});

export const edusFederationEndpoints: AnyEndpoint[] = [
  endpoint({
    method: 'GET', path: `${F}/user/devices/:userId`, auth: 'server', spec: `${SS}/#get_matrixfederationv1userdevicesuserid`,
    handler: async ({ hs, params }) => {
      const userId = params.userId;
      if (!isUserId(userId) || !hs.isLocal(userId)) throw invalidParam('User is not hosted on this homeserver');
      const list = await localDeviceList(hs, userId);
      const out: JsonObject = {
        user_id: userId,
        stream_id: await deviceListStreamId(hs, userId),
        // Devices without keys are of no use to other servers (the spec requires `keys`).
        devices: list.devices.filter((d) => d.keys) as unknown as JsonObject[],
      };
      if (list.master_key) out.master_key = list.master_key;
      if (list.self_signing_key) out.self_signing_key = list.self_signing_key;
      return out;
    },
  }),
  endpoint({
    method: 'POST', path: `${F}/user/keys/query`, auth: 'server', spec: `${SS}/#post_matrixfederationv1userkeysquery`, body: QueryBody,
    handler: async ({ hs, body }) => {
      // Only this server's users are answered; others are left out (spec: "Requested users must be local").
      const local = Object.fromEntries(Object.entries(body.device_keys).filter(([u]) => isUserId(u) && hs.isLocal(u)));
      const r = await queryLocalKeys(hs, '', local);
      return { device_keys: r.device_keys, master_keys: r.master_keys, self_signing_keys: r.self_signing_keys };
    },
  }),
  endpoint({
    method: 'POST', path: `${F}/user/keys/claim`, auth: 'server', spec: `${SS}/#post_matrixfederationv1userkeysclaim`, body: ClaimBody,
    handler: async ({ hs, body }) => {
      const local = Object.fromEntries(Object.entries(body.one_time_keys).filter(([u]) => isUserId(u) && hs.isLocal(u)));
      const r = await claimLocalKeys(hs, local);
      return { one_time_keys: r.one_time_keys };
    },
  }),
];
