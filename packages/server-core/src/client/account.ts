/** Registration, login, logout, whoami, password, devices (spec: client-server API, "Client Authentication", "Device Management"). */
import * as v from 'valibot';
import { endpoint } from '../api/endpoint.ts';
import { MatrixError, forbidden, notFound } from '../api/errors.ts';
import { checkPassword } from '../services/auth.ts';
import { LOCALPART, randomId } from '../util/ids.ts';
import { AuthDict } from './schemas.ts';
import type { Homeserver } from '../homeserver.ts';

const CS = 'https://spec.matrix.org/latest/client-server-api';

const RegisterBody = v.looseObject({
  auth: AuthDict,
  username: v.optional(v.string()),
  password: v.optional(v.pipe(v.string(), v.maxLength(512))),
  device_id: v.optional(v.string()),
  initial_device_display_name: v.optional(v.string()),
  inhibit_login: v.optional(v.boolean()),
  refresh_token: v.optional(v.boolean()),
});

const LoginBody = v.looseObject({
  type: v.string(),
  identifier: v.optional(v.looseObject({ type: v.string(), user: v.optional(v.string()) })),
  user: v.optional(v.string()),
  password: v.optional(v.string()),
  device_id: v.optional(v.string()),
  initial_device_display_name: v.optional(v.string()),
});

function userIdFrom(hs: Homeserver, user: string): string {
  const id = user.startsWith('@') ? user : hs.userId(user.toLowerCase());
  return id;
}

/** UIA by password for the logged-in user (device deletion, password change). */
async function passwordUia(hs: Homeserver, userId: string, auth: unknown, purpose: string): Promise<void> {
  await hs.auth.requireUia(auth, purpose, [['m.login.password']], async (stage, a) => {
    if (stage !== 'm.login.password') return false;
    const ident = a.identifier as { user?: string } | undefined;
    const who = ident?.user ?? (a.user as string | undefined) ?? userId;
    if (userIdFrom(hs, who) !== userId) return false;
    const acct = await hs.store.accounts.get(userId);
    return typeof a.password === 'string' && checkPassword(a.password, acct?.passwordHash);
  });
}

export const accountEndpoints = [
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/register/available', auth: 'none', spec: `${CS}/#get_matrixclientv3registeravailable`,
    query: v.object({ username: v.string() }),
    handler: async ({ hs, query }) => {
      const name = query.username.toLowerCase();
      if (!LOCALPART.test(name)) throw new MatrixError(400, 'M_INVALID_USERNAME', 'Invalid username');
      if (await hs.store.accounts.get(hs.userId(name))) throw new MatrixError(400, 'M_USER_IN_USE', 'User ID already taken');
      return { available: true };
    },
  }),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/register', auth: 'none', spec: `${CS}/#post_matrixclientv3register`,
    query: v.object({ kind: v.optional(v.picklist(['user', 'guest'])) }), body: RegisterBody,
    handler: async ({ hs, body, query }) => {
      if (query.kind === 'guest') throw new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', 'Guest access is disabled');
      if (!hs.openRegistration) throw forbidden('Registration is disabled');
      const localpart = (body.username ?? randomId(8).toLowerCase().replace(/[^a-z0-9]/g, 'x')).toLowerCase();
      if (!LOCALPART.test(localpart) || hs.userId(localpart).length > 255) throw new MatrixError(400, 'M_INVALID_USERNAME', 'Invalid username');
      if (await hs.store.accounts.get(hs.userId(localpart))) throw new MatrixError(400, 'M_USER_IN_USE', 'User ID already taken');
      // Registration is open: a single dummy stage (clients.md: 401 with flows, params and a session).
      await hs.auth.requireUia(body.auth, 'register', [['m.login.dummy']], async (stage) => stage === 'm.login.dummy');
      return hs.auth.register(localpart, body.password, {
        deviceId: body.device_id, initialDeviceDisplayName: body.initial_device_display_name, inhibitLogin: body.inhibit_login,
      });
    },
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/login', auth: 'none', spec: `${CS}/#get_matrixclientv3login`,
    handler: () => ({ flows: [{ type: 'm.login.password' }] }),
  }),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/login', auth: 'none', spec: `${CS}/#post_matrixclientv3login`, body: LoginBody,
    handler: async ({ hs, body }) => {
      if (body.type !== 'm.login.password') throw new MatrixError(400, 'M_UNKNOWN', `Login type ${body.type} is not supported`);
      const user = body.identifier?.type === 'm.id.user' ? body.identifier.user : body.user;
      if (typeof user !== 'string' || typeof body.password !== 'string') throw new MatrixError(400, 'M_BAD_JSON', 'identifier.user and password are required');
      const r = await hs.auth.login(userIdFrom(hs, user), body.password, body.device_id, body.initial_device_display_name);
      return { ...r, well_known: undefined };
    },
  }),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/logout', auth: 'user', spec: `${CS}/#post_matrixclientv3logout`,
    handler: async ({ hs, user }) => (await hs.auth.logout(user), {}),
  }),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/logout/all', auth: 'user', spec: `${CS}/#post_matrixclientv3logoutall`,
    handler: async ({ hs, user }) => (await hs.auth.logoutAll(user.userId), {}),
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/account/whoami', auth: 'user', spec: `${CS}/#get_matrixclientv3accountwhoami`,
    handler: ({ user }) => ({ user_id: user.userId, device_id: user.deviceId, is_guest: false }),
  }),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/account/password', auth: 'user', spec: `${CS}/#post_matrixclientv3accountpassword`,
    body: v.looseObject({ auth: AuthDict, new_password: v.pipe(v.string(), v.minLength(1), v.maxLength(512)), logout_devices: v.optional(v.boolean()) }),
    handler: async ({ hs, user, body }) => {
      await passwordUia(hs, user.userId, body.auth, 'password');
      await hs.auth.setPassword(user.userId, body.new_password, body.logout_devices ?? true, user.deviceId);
      return {};
    },
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/devices', auth: 'user', spec: `${CS}/#get_matrixclientv3devices`,
    handler: async ({ hs, user }) => ({
      devices: (await hs.store.accounts.devices(user.userId)).map((d) => ({ device_id: d.deviceId, display_name: d.displayName, last_seen_ts: d.lastSeenTs })),
    }),
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/devices/:deviceId', auth: 'user', spec: `${CS}/#get_matrixclientv3devicesdeviceid`,
    handler: async ({ hs, user, params }) => {
      const d = await hs.store.accounts.device(user.userId, params.deviceId);
      if (!d) throw notFound('Unknown device');
      return { device_id: d.deviceId, display_name: d.displayName, last_seen_ts: d.lastSeenTs };
    },
  }),
  endpoint({
    method: 'PUT', path: '/_matrix/client/v3/devices/:deviceId', auth: 'user', spec: `${CS}/#put_matrixclientv3devicesdeviceid`,
    body: v.looseObject({ display_name: v.optional(v.string()) }),
    handler: async ({ hs, user, params, body }) => {
      await hs.writeLock.run(async () => {
        const d = await hs.store.accounts.device(user.userId, params.deviceId);
        if (!d) throw notFound('Unknown device');
        const b = hs.store.batch();
        b.put('devices', { ...d, displayName: body.display_name });
        b.put('device_list_changes', { stream: b.nextStream(), userId: user.userId });
        hs.notifier.notify(await b.commit());
      });
      return {};
    },
  }),
  endpoint({
    method: 'DELETE', path: '/_matrix/client/v3/devices/:deviceId', auth: 'user', spec: `${CS}/#delete_matrixclientv3devicesdeviceid`,
    body: v.looseObject({ auth: AuthDict }),
    handler: async ({ hs, user, params, body }) => {
      if (!(await hs.store.accounts.device(user.userId, params.deviceId))) throw notFound('Unknown device');
      await passwordUia(hs, user.userId, body.auth, `delete-devices:${params.deviceId}`);
      await hs.auth.deleteDevices(user.userId, [params.deviceId]);
      return {};
    },
  }),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/delete_devices', auth: 'user', spec: `${CS}/#post_matrixclientv3delete_devices`,
    body: v.looseObject({ auth: AuthDict, devices: v.array(v.string()) }),
    handler: async ({ hs, user, body }) => {
      await passwordUia(hs, user.userId, body.auth, `delete-devices:${[...body.devices].sort().join(',')}`);
      await hs.auth.deleteDevices(user.userId, body.devices);
      return {};
    },
  }),
];
