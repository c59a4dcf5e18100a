/** Discovery: versions, capabilities, auth metadata, and the endpoints clients probe at start. */
import { endpoint } from '../api/endpoint.ts';
import { unrecognized } from '../api/errors.ts';
import { CREATABLE_ROOM_VERSIONS } from '../services/rooms.ts';
import { DEFAULT_ROOM_VERSION } from '../kernel/room-versions.ts';

/** Spec versions we implement (clients.md: each switches client behaviour on; v1.11 = authenticated media). */
export const SPEC_VERSIONS = ['r0.6.1', 'v1.1', 'v1.2', 'v1.3', 'v1.4', 'v1.5', 'v1.6', 'v1.7', 'v1.8', 'v1.9', 'v1.10', 'v1.11'];

const CS = 'https://spec.matrix.org/latest/client-server-api';

/** The body of `GET /_matrix/client/versions`: constant, so a host may answer it before the store is open. */
export function clientVersions(): { versions: string[]; unstable_features: Record<string, boolean> } {
  return { versions: [...SPEC_VERSIONS], unstable_features: {} };
}

export const discoveryEndpoints = [
  endpoint({
    method: 'GET', path: '/_matrix/client/versions', auth: 'none', spec: `${CS}/#get_matrixclientversions`,
    handler: () => clientVersions(),
  }),
  // No OAuth here: 404 M_UNRECOGNIZED is what clients expect (clients.md).
  ...['/_matrix/client/v1/auth_metadata', '/_matrix/client/unstable/org.matrix.msc2965/auth_metadata', '/_matrix/client/unstable/org.matrix.msc2965/auth_issuer'].map((path) =>
    endpoint({ method: 'GET', path, auth: 'none', spec: `${CS}/#get_matrixclientv1auth_metadata`, handler: () => { throw unrecognized(404, 'OAuth 2.0 is not supported'); } }),
  ),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/capabilities', auth: 'user', spec: `${CS}/#get_matrixclientv3capabilities`,
    handler: () => ({
      capabilities: {
        'm.change_password': { enabled: true },
        'm.room_versions': { default: DEFAULT_ROOM_VERSION, available: Object.fromEntries(CREATABLE_ROOM_VERSIONS.map((v) => [v, 'stable'])) },
        'm.set_displayname': { enabled: true },
        'm.set_avatar_url': { enabled: true },
        'm.3pid_changes': { enabled: false },
        'm.get_login_token': { enabled: false },
      },
    }),
  }),
  endpoint({ method: 'GET', path: '/_matrix/client/v3/voip/turnServer', auth: 'user', spec: `${CS}/#get_matrixclientv3voipturnserver`, handler: () => ({}) }),
  endpoint({ method: 'GET', path: '/_matrix/client/v3/thirdparty/protocols', auth: 'user', spec: `${CS}/#get_matrixclientv3thirdpartyprotocols`, handler: () => ({}) }),
  endpoint({ method: 'GET', path: '/_matrix/client/v3/pushers', auth: 'user', spec: `${CS}/#get_matrixclientv3pushers`, handler: () => ({ pushers: [] }) }),
  endpoint({
    method: 'GET', path: '/.well-known/matrix/client', auth: 'none', spec: `${CS}/#getwell-knownmatrixclient`,
    handler: ({ request }) => ({ 'm.homeserver': { base_url: new URL(request.url).origin } }),
  }),
];
