/**
 * End-to-end encryption endpoints (spec: client-server API, "End-to-End Encryption" key management API,
 * cross-signing, "Send-to-Device messaging", "Server-side key backups"). The work is in services/keys.ts.
 */
import * as v from 'valibot';
import { endpoint } from '../api/endpoint.ts';
import { notFound } from '../api/errors.ts';
import { checkPassword } from '../services/auth.ts';
import {
  claimKeys, createBackup, deleteBackup, deleteRoomKeys, getBackup, getRoomKeys, keyChanges, putRoomKeys, queryKeys,
  sendToDevice, updateBackup, uploadCrossSigningKeys, uploadKeys, uploadSignatures, type KeyBackupData,
} from '../services/keys.ts';
import type { Homeserver } from '../homeserver.ts';
import type { JsonObject } from '../kernel/types.ts';
import type { RoomKeyRecord } from '../store/keys.ts';
import { isUserId } from '../util/ids.ts';
import { JsonObjectSchema } from './schemas.ts';

const CS = 'https://spec.matrix.org/latest/client-server-api';

/** UIA by password for the logged-in user (as in account.ts). */
async function passwordUia(hs: Homeserver, userId: string, auth: unknown, purpose: string): Promise<void> {
  await hs.auth.requireUia(auth, purpose, [['m.login.password']], async (stage, a) => {
    if (stage !== 'm.login.password') return false;
    const ident = a.identifier as { user?: string } | undefined;
    const who = ident?.user ?? (a.user as string | undefined) ?? userId;
    const id = who.startsWith('@') ? who : hs.userId(who.toLowerCase());
    if (id !== userId) return false;
    const acct = await hs.store.accounts.get(userId);
    return typeof a.password === 'string' && checkPassword(a.password, acct?.passwordHash);
  });
}

// --- schemas -----------------------------------------------------------------------------------------

const UserIdKey = v.pipe(v.string(), v.check((s: string) => isUserId(s), 'must be a user id'));
const Signatures = v.record(v.string(), v.record(v.string(), v.string()));
const KeyName = v.pipe(v.string(), v.regex(/^[^:]+:.+$/, 'key names are <algorithm>:<key_id>'));
const KeyMap = v.record(KeyName, v.union([v.string(), JsonObjectSchema]));
const DeviceKeys = v.looseObject({
  user_id: v.string(),
  device_id: v.string(),
  algorithms: v.array(v.string()),
  keys: v.record(v.string(), v.string()),
  signatures: v.optional(Signatures),
});
const UploadBody = v.looseObject({ device_keys: v.nullish(DeviceKeys), one_time_keys: v.nullish(KeyMap), fallback_keys: v.nullish(KeyMap) });
const Timeout = v.optional(v.number());
const QueryBody = v.looseObject({ device_keys: v.record(UserIdKey, v.array(v.string())), timeout: Timeout });
const ClaimBody = v.looseObject({ one_time_keys: v.record(UserIdKey, v.record(v.string(), v.string())), timeout: Timeout });
const CrossSigningKey = v.looseObject({ user_id: v.string(), usage: v.array(v.string()), keys: v.record(v.string(), v.string()), signatures: v.optional(Signatures) });
/** `auth` is taken as it comes (clients.md: Element sends `auth: {}` with no session). */
const DeviceSigningBody = v.looseObject({
  master_key: v.optional(CrossSigningKey),
  self_signing_key: v.optional(CrossSigningKey),
  user_signing_key: v.optional(CrossSigningKey),
  auth: v.optional(v.unknown()),
});
const SignaturesBody = v.record(UserIdKey, v.record(v.string(), JsonObjectSchema));
const ToDeviceBody = v.looseObject({ messages: v.record(UserIdKey, v.record(v.string(), JsonObjectSchema)) });
const ChangesQuery = v.object({ from: v.string(), to: v.optional(v.string()) });

const NonNegInt = v.pipe(v.number(), v.integer(), v.minValue(0));
const KeyBackupDataSchema = v.looseObject({ first_message_index: NonNegInt, forwarded_count: NonNegInt, is_verified: v.boolean(), session_data: JsonObjectSchema });
const RoomKeyBackup = v.looseObject({ sessions: v.record(v.string(), KeyBackupDataSchema) });
const AllRoomKeys = v.looseObject({ rooms: v.record(v.string(), RoomKeyBackup) });
const BackupCreate = v.looseObject({ algorithm: v.string(), auth_data: JsonObjectSchema });
const BackupUpdate = v.looseObject({ algorithm: v.string(), auth_data: JsonObjectSchema, version: v.optional(v.string()) });
const VersionQuery = v.object({ version: v.optional(v.string()) });

const asJson = (x: unknown) => x as JsonObject;
const sessionsOf = (rows: RoomKeyRecord[]) => Object.fromEntries(rows.map((r) => [r.sessionId, r.data]));
function roomsOf(rows: RoomKeyRecord[]) {
  const rooms: Record<string, { sessions: Record<string, KeyBackupData> }> = {};
  for (const r of rows) (rooms[r.roomId] ??= { sessions: {} }).sessions[r.sessionId] = r.data;
  return rooms;
}

const BACKUP_KEYS = `${CS}/#put_matrixclientv3room_keyskeys`;

export const keysEndpoints = [
  // --- device keys ---------------------------------------------------------------------------------
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/keys/upload', auth: 'user', spec: `${CS}/#post_matrixclientv3keysupload`, body: UploadBody,
    handler: ({ hs, user, body }) =>
      uploadKeys(hs, user, {
        device_keys: body.device_keys ? asJson(body.device_keys) : undefined,
        one_time_keys: body.one_time_keys as Record<string, JsonObject | string> | null | undefined,
        fallback_keys: body.fallback_keys as Record<string, JsonObject | string> | null | undefined,
      }),
  }),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/keys/query', auth: 'user', spec: `${CS}/#post_matrixclientv3keysquery`, body: QueryBody,
    handler: ({ hs, user, body }) => queryKeys(hs, user.userId, body.device_keys, body.timeout),
  }),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/keys/claim', auth: 'user', spec: `${CS}/#post_matrixclientv3keysclaim`, body: ClaimBody,
    handler: ({ hs, body }) => claimKeys(hs, body.one_time_keys, body.timeout),
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/keys/changes', auth: 'user', spec: `${CS}/#get_matrixclientv3keyschanges`, query: ChangesQuery,
    handler: ({ hs, user, query }) => keyChanges(hs, user.userId, query.from, query.to),
  }),
  // --- cross-signing -------------------------------------------------------------------------------
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/keys/device_signing/upload', auth: 'user', spec: `${CS}/#post_matrixclientv3keysdevice_signingupload`,
    body: DeviceSigningBody,
    handler: async ({ hs, user, body }) => {
      await uploadCrossSigningKeys(
        hs, user.userId,
        { master_key: body.master_key && asJson(body.master_key), self_signing_key: body.self_signing_key && asJson(body.self_signing_key), user_signing_key: body.user_signing_key && asJson(body.user_signing_key) },
        () => passwordUia(hs, user.userId, body.auth, 'device-signing-upload'),
      );
      return {};
    },
  }),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/keys/signatures/upload', auth: 'user', spec: `${CS}/#post_matrixclientv3keyssignaturesupload`, body: SignaturesBody,
    handler: ({ hs, user, body }) => uploadSignatures(hs, user.userId, body as Record<string, Record<string, JsonObject>>),
  }),
  // --- to-device -----------------------------------------------------------------------------------
  endpoint({
    method: 'PUT', path: '/_matrix/client/v3/sendToDevice/:eventType/:txnId', auth: 'user', spec: `${CS}/#put_matrixclientv3sendtodeviceeventtypetxnid`, body: ToDeviceBody,
    handler: async ({ hs, user, params, body }) => {
      await sendToDevice(hs, user, params.eventType, params.txnId, body.messages as Record<string, Record<string, JsonObject>>);
      return {};
    },
  }),
  // --- key backup: versions ------------------------------------------------------------------------
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/room_keys/version', auth: 'user', spec: `${CS}/#post_matrixclientv3room_keysversion`, body: BackupCreate,
    handler: ({ hs, user, body }) => createBackup(hs, user.userId, body.algorithm, asJson(body.auth_data)),
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/room_keys/version', auth: 'user', spec: `${CS}/#get_matrixclientv3room_keysversion`,
    handler: ({ hs, user }) => getBackup(hs, user.userId),
  }),
  endpoint({
    method: 'DELETE', path: '/_matrix/client/v3/room_keys/version', auth: 'user', spec: `${CS}/#delete_matrixclientv3room_keysversionversion`,
    handler: async ({ hs, user }) => (await deleteBackup(hs, user.userId, undefined), {}),
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/room_keys/version/:version', auth: 'user', spec: `${CS}/#get_matrixclientv3room_keysversionversion`,
    handler: ({ hs, user, params }) => getBackup(hs, user.userId, params.version),
  }),
  endpoint({
    method: 'PUT', path: '/_matrix/client/v3/room_keys/version/:version', auth: 'user', spec: `${CS}/#put_matrixclientv3room_keysversionversion`, body: BackupUpdate,
    handler: async ({ hs, user, params, body }) => (await updateBackup(hs, user.userId, params.version, { algorithm: body.algorithm, auth_data: asJson(body.auth_data), version: body.version }), {}),
  }),
  endpoint({
    method: 'DELETE', path: '/_matrix/client/v3/room_keys/version/:version', auth: 'user', spec: `${CS}/#delete_matrixclientv3room_keysversionversion`,
    handler: async ({ hs, user, params }) => (await deleteBackup(hs, user.userId, params.version), {}),
  }),
  // --- key backup: keys ----------------------------------------------------------------------------
  endpoint({
    method: 'PUT', path: '/_matrix/client/v3/room_keys/keys', auth: 'user', spec: BACKUP_KEYS, query: VersionQuery, body: AllRoomKeys,
    handler: ({ hs, user, query, body }) =>
      putRoomKeys(hs, user.userId, query.version, Object.fromEntries(Object.entries(body.rooms).map(([r, x]) => [r, x.sessions as Record<string, KeyBackupData>]))),
  }),
  endpoint({
    method: 'PUT', path: '/_matrix/client/v3/room_keys/keys/:roomId', auth: 'user', spec: `${CS}/#put_matrixclientv3room_keyskeysroomid`, query: VersionQuery, body: RoomKeyBackup,
    handler: ({ hs, user, query, params, body }) => putRoomKeys(hs, user.userId, query.version, { [params.roomId]: body.sessions as Record<string, KeyBackupData> }),
  }),
  endpoint({
    method: 'PUT', path: '/_matrix/client/v3/room_keys/keys/:roomId/:sessionId', auth: 'user', spec: `${CS}/#put_matrixclientv3room_keyskeysroomidsessionid`, query: VersionQuery,
    body: KeyBackupDataSchema,
    handler: ({ hs, user, query, params, body }) => putRoomKeys(hs, user.userId, query.version, { [params.roomId]: { [params.sessionId]: body as KeyBackupData } }),
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/room_keys/keys', auth: 'user', spec: `${CS}/#get_matrixclientv3room_keyskeys`, query: VersionQuery,
    handler: async ({ hs, user, query }) => ({ rooms: roomsOf(await getRoomKeys(hs, user.userId, query.version)) }),
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/room_keys/keys/:roomId', auth: 'user', spec: `${CS}/#get_matrixclientv3room_keyskeysroomid`, query: VersionQuery,
    handler: async ({ hs, user, query, params }) => ({ sessions: sessionsOf(await getRoomKeys(hs, user.userId, query.version, params.roomId)) }),
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/room_keys/keys/:roomId/:sessionId', auth: 'user', spec: `${CS}/#get_matrixclientv3room_keyskeysroomidsessionid`, query: VersionQuery,
    handler: async ({ hs, user, query, params }) => {
      const [key] = await getRoomKeys(hs, user.userId, query.version, params.roomId, params.sessionId);
      if (!key) throw notFoundKey();
      return key.data;
    },
  }),
  endpoint({
    method: 'DELETE', path: '/_matrix/client/v3/room_keys/keys', auth: 'user', spec: `${CS}/#delete_matrixclientv3room_keyskeys`, query: VersionQuery,
    handler: ({ hs, user, query }) => deleteRoomKeys(hs, user.userId, query.version),
  }),
  endpoint({
    method: 'DELETE', path: '/_matrix/client/v3/room_keys/keys/:roomId', auth: 'user', spec: `${CS}/#delete_matrixclientv3room_keyskeysroomid`, query: VersionQuery,
    handler: ({ hs, user, query, params }) => deleteRoomKeys(hs, user.userId, query.version, params.roomId),
  }),
  endpoint({
    method: 'DELETE', path: '/_matrix/client/v3/room_keys/keys/:roomId/:sessionId', auth: 'user', spec: `${CS}/#delete_matrixclientv3room_keyskeysroomidsessionid`, query: VersionQuery,
    handler: ({ hs, user, query, params }) => deleteRoomKeys(hs, user.userId, query.version, params.roomId, params.sessionId),
  }),
];

function notFoundKey() {
  return notFound('Key not found');
}
