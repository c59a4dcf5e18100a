/**
 * Account data, tags, receipts, read markers and push rules (spec: client-server API, "Client Config",
 * "Room Tagging", "Receipts", "Fully read markers", "Push Rules").
 */
import * as v from 'valibot';
import { endpoint } from '../api/endpoint.ts';
import { MatrixError, forbidden, notFound } from '../api/errors.ts';
import type { JsonObject } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import { JsonObjectSchema } from './schemas.ts';
import {
  deleteRule, effectivePushRules, emptyStoredPushRules, getRule, getRuleActions, getRuleEnabled, putRule, setRuleActions, setRuleEnabled,
  type StoredPushRules,
} from './push-rules.ts';
import { isRoomId } from '../util/ids.ts';
import { kickAll, stageReceipt } from '../federation/edus-out.ts';

const CS = 'https://spec.matrix.org/latest/client-server-api';

/** Account data types the server manages itself (spec: "Server behaviour" of Client Config). */
const SERVER_MANAGED = new Set(['m.fully_read', 'm.push_rules']);

async function putAccountData(hs: Homeserver, userId: string, roomId: string, type: string, content: JsonObject): Promise<void> {
  await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    b.put('account_data', { userId, roomId, type, content, stream: b.nextStream() });
    hs.notifier.notify(await b.commit());
  });
}

function ownUser(params: Record<string, string>, userId: string) {
  if (params.userId !== userId) throw forbidden('Cannot access account data of other users');
}
function roomParam(id: string) {
  if (!isRoomId(id)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Not a room id');
  return id;
}

async function loadPushRules(hs: Homeserver, userId: string): Promise<StoredPushRules> {
  return (await hs.store.userData.pushRules<StoredPushRules>(userId)) ?? emptyStoredPushRules();
}
async function savePushRules(hs: Homeserver, userId: string, rules: StoredPushRules): Promise<void> {
  await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    b.put('push_rules', { userId, rules });
    // Clients learn of push rule changes through the m.push_rules account data (spec: "Push Rules").
    b.put('account_data', { userId, roomId: '', type: 'm.push_rules', content: { global: effectivePushRules(rules, userId) }, stream: b.nextStream() });
    hs.notifier.notify(await b.commit());
  });
}

const PR = '/_matrix/client/v3/pushrules';

export const userDataEndpoints = [
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/user/:userId/account_data/:type', auth: 'user', spec: `${CS}/#get_matrixclientv3useruseridaccount_datatype`,
    handler: async ({ hs, user, params }) => {
      ownUser(params, user.userId);
      const r = await hs.store.userData.accountData(user.userId, '', params.type);
      if (!r || Object.keys(r.content).length === 0) throw notFound('Account data not found');
      return r.content;
    },
  }),
  endpoint({
    method: 'PUT', path: '/_matrix/client/v3/user/:userId/account_data/:type', auth: 'user', spec: `${CS}/#put_matrixclientv3useruseridaccount_datatype`, body: JsonObjectSchema,
    handler: async ({ hs, user, params, body }) => {
      ownUser(params, user.userId);
      if (SERVER_MANAGED.has(params.type)) throw new MatrixError(405, 'M_BAD_JSON', `${params.type} is managed by the server`);
      await putAccountData(hs, user.userId, '', params.type, body as JsonObject);
      return {};
    },
  }),
  endpoint({
    method: 'DELETE', path: '/_matrix/client/v3/user/:userId/account_data/:type', auth: 'user', spec: `${CS}/#delete_matrixclientv3useruseridaccount_datatype`,
    handler: async ({ hs, user, params }) => (ownUser(params, user.userId), await putAccountData(hs, user.userId, '', params.type, {}), {}),
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/user/:userId/rooms/:roomId/account_data/:type', auth: 'user', spec: `${CS}/#get_matrixclientv3useruseridroomsroomidaccount_datatype`,
    handler: async ({ hs, user, params }) => {
      ownUser(params, user.userId);
      const r = await hs.store.userData.accountData(user.userId, roomParam(params.roomId), params.type);
      if (!r || Object.keys(r.content).length === 0) throw notFound('Account data not found');
      return r.content;
    },
  }),
  endpoint({
    method: 'PUT', path: '/_matrix/client/v3/user/:userId/rooms/:roomId/account_data/:type', auth: 'user', spec: `${CS}/#put_matrixclientv3useruseridroomsroomidaccount_datatype`, body: JsonObjectSchema,
    handler: async ({ hs, user, params, body }) => {
      ownUser(params, user.userId);
      if (SERVER_MANAGED.has(params.type)) throw new MatrixError(405, 'M_BAD_JSON', `${params.type} is managed by the server`);
      await putAccountData(hs, user.userId, roomParam(params.roomId), params.type, body as JsonObject);
      return {};
    },
  }),
  // Tags live in the room's m.tag account data (spec: "Room Tagging").
  endpoint({
    method: 'GET', path: '/_matrix/client/v3/user/:userId/rooms/:roomId/tags', auth: 'user', spec: `${CS}/#get_matrixclientv3useruseridroomsroomidtags`,
    handler: async ({ hs, user, params }) => {
      ownUser(params, user.userId);
      const r = await hs.store.userData.accountData(user.userId, roomParam(params.roomId), 'm.tag');
      return { tags: (r?.content.tags as JsonObject | undefined) ?? {} };
    },
  }),
  endpoint({
    method: 'PUT', path: '/_matrix/client/v3/user/:userId/rooms/:roomId/tags/:tag', auth: 'user', spec: `${CS}/#put_matrixclientv3useruseridroomsroomidtagstag`,
    body: v.looseObject({ order: v.optional(v.number()) }),
    handler: async ({ hs, user, params, body }) => {
      ownUser(params, user.userId);
      const roomId = roomParam(params.roomId);
      const r = await hs.store.userData.accountData(user.userId, roomId, 'm.tag');
      const tags = { ...((r?.content.tags as JsonObject | undefined) ?? {}), [params.tag]: body as JsonObject };
      await putAccountData(hs, user.userId, roomId, 'm.tag', { tags });
      return {};
    },
  }),
  endpoint({
    method: 'DELETE', path: '/_matrix/client/v3/user/:userId/rooms/:roomId/tags/:tag', auth: 'user', spec: `${CS}/#delete_matrixclientv3useruseridroomsroomidtagstag`,
    handler: async ({ hs, user, params }) => {
      ownUser(params, user.userId);
      const roomId = roomParam(params.roomId);
      const r = await hs.store.userData.accountData(user.userId, roomId, 'm.tag');
      const tags = { ...((r?.content.tags as JsonObject | undefined) ?? {}) };
      delete tags[params.tag];
      await putAccountData(hs, user.userId, roomId, 'm.tag', { tags });
      return {};
    },
  }),
  // Receipts and read markers.
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/rooms/:roomId/receipt/:receiptType/:eventId', auth: 'user', spec: `${CS}/#post_matrixclientv3roomsroomidreceiptreceipttypeeventid`,
    body: v.looseObject({ thread_id: v.optional(v.pipe(v.string(), v.minLength(1))) }),
    handler: async ({ hs, user, params, body }) => {
      const roomId = roomParam(params.roomId);
      if (!['m.read', 'm.read.private', 'm.fully_read'].includes(params.receiptType)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Unknown receipt type');
      await hs.rooms.requireJoined(roomId, user.userId);
      const ev = await hs.store.rooms.event(params.eventId);
      if (!ev || ev.roomId !== roomId) throw notFound('Unknown event');
      if (params.receiptType === 'm.fully_read') await setFullyRead(hs, user.userId, roomId, params.eventId);
      else await setReceipt(hs, roomId, params.receiptType, user.userId, params.eventId, body.thread_id ?? '');
      return {};
    },
  }),
  endpoint({
    method: 'POST', path: '/_matrix/client/v3/rooms/:roomId/read_markers', auth: 'user', spec: `${CS}/#post_matrixclientv3roomsroomidread_markers`,
    body: v.looseObject({ 'm.fully_read': v.optional(v.string()), 'm.read': v.optional(v.string()), 'm.read.private': v.optional(v.string()) }),
    handler: async ({ hs, user, params, body }) => {
      const roomId = roomParam(params.roomId);
      await hs.rooms.requireJoined(roomId, user.userId);
      for (const id of [body['m.fully_read'], body['m.read'], body['m.read.private']]) {
        if (id === undefined) continue;
        const ev = await hs.store.rooms.event(id);
        if (!ev || ev.roomId !== roomId) throw notFound(`Unknown event ${id}`);
      }
      if (body['m.fully_read']) await setFullyRead(hs, user.userId, roomId, body['m.fully_read']);
      if (body['m.read']) await setReceipt(hs, roomId, 'm.read', user.userId, body['m.read'], '');
      if (body['m.read.private']) await setReceipt(hs, roomId, 'm.read.private', user.userId, body['m.read.private'], '');
      return {};
    },
  }),
  // Push rules: the full default set plus the user's changes (client/push-rules.ts).
  endpoint({
    method: 'GET', path: `${PR}/`, auth: 'user', spec: `${CS}/#get_matrixclientv3pushrules`,
    handler: async ({ hs, user }) => ({ global: effectivePushRules(await loadPushRules(hs, user.userId), user.userId) }),
  }),
  endpoint({
    method: 'GET', path: PR, auth: 'user', spec: `${CS}/#get_matrixclientv3pushrules`,
    handler: async ({ hs, user }) => ({ global: effectivePushRules(await loadPushRules(hs, user.userId), user.userId) }),
  }),
  endpoint({
    method: 'GET', path: `${PR}/:scope/`, auth: 'user', spec: `${CS}/#get_matrixclientv3pushrulesglobal`,
    handler: async ({ hs, user, params }) => {
      if (params.scope !== 'global') throw new MatrixError(404, 'M_UNRECOGNIZED', 'Unknown scope');
      return effectivePushRules(await loadPushRules(hs, user.userId), user.userId);
    },
  }),
  endpoint({
    method: 'GET', path: `${PR}/:scope/:kind/:ruleId`, auth: 'user', spec: `${CS}/#get_matrixclientv3pushrulesglobalkindruleid`,
    handler: async ({ hs, user, params }) => getRule(await loadPushRules(hs, user.userId), user.userId, params.scope, params.kind, params.ruleId),
  }),
  endpoint({
    method: 'PUT', path: `${PR}/:scope/:kind/:ruleId`, auth: 'user', spec: `${CS}/#put_matrixclientv3pushrulesglobalkindruleid`,
    body: v.unknown(), query: v.object({ before: v.optional(v.string()), after: v.optional(v.string()) }),
    handler: async ({ hs, user, params, body, query }) => {
      const next = putRule(await loadPushRules(hs, user.userId), user.userId, params.scope, params.kind, params.ruleId, body, query);
      await savePushRules(hs, user.userId, next);
      return {};
    },
  }),
  endpoint({
    method: 'DELETE', path: `${PR}/:scope/:kind/:ruleId`, auth: 'user', spec: `${CS}/#delete_matrixclientv3pushrulesglobalkindruleid`,
    handler: async ({ hs, user, params }) => {
      await savePushRules(hs, user.userId, deleteRule(await loadPushRules(hs, user.userId), user.userId, params.scope, params.kind, params.ruleId));
      return {};
    },
  }),
  endpoint({
    method: 'GET', path: `${PR}/:scope/:kind/:ruleId/enabled`, auth: 'user', spec: `${CS}/#get_matrixclientv3pushrulesglobalkindruleidenabled`,
    handler: async ({ hs, user, params }) => getRuleEnabled(await loadPushRules(hs, user.userId), user.userId, params.scope, params.kind, params.ruleId),
  }),
  endpoint({
    method: 'PUT', path: `${PR}/:scope/:kind/:ruleId/enabled`, auth: 'user', spec: `${CS}/#put_matrixclientv3pushrulesglobalkindruleidenabled`, body: v.unknown(),
    handler: async ({ hs, user, params, body }) => {
      await savePushRules(hs, user.userId, setRuleEnabled(await loadPushRules(hs, user.userId), user.userId, params.scope, params.kind, params.ruleId, body));
      return {};
    },
  }),
  endpoint({
    method: 'GET', path: `${PR}/:scope/:kind/:ruleId/actions`, auth: 'user', spec: `${CS}/#get_matrixclientv3pushrulesglobalkindruleidactions`,
    handler: async ({ hs, user, params }) => getRuleActions(await loadPushRules(hs, user.userId), user.userId, params.scope, params.kind, params.ruleId),
  }),
  endpoint({
    method: 'PUT', path: `${PR}/:scope/:kind/:ruleId/actions`, auth: 'user', spec: `${CS}/#put_matrixclientv3pushrulesglobalkindruleidactions`, body: v.unknown(),
    handler: async ({ hs, user, params, body }) => {
      await savePushRules(hs, user.userId, setRuleActions(await loadPushRules(hs, user.userId), user.userId, params.scope, params.kind, params.ruleId, body));
      return {};
    },
  }),
];

/** Store a receipt; a public one (`m.read`) also goes to the room's other servers as an `m.receipt` EDU, in the same commit. */
async function setReceipt(hs: Homeserver, roomId: string, receiptType: string, userId: string, eventId: string, threadId: string): Promise<void> {
  const dests = await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    const ts = hs.clock();
    b.put('receipts', { roomId, receiptType, userId, threadId, eventId, ts, stream: b.nextStream() });
    const out = await stageReceipt(hs, b, { roomId, receiptType, userId, eventId, threadId, ts });
    hs.notifier.notify(await b.commit());
    return out;
  });
  kickAll(hs, dests);
}

async function setFullyRead(hs: Homeserver, userId: string, roomId: string, eventId: string): Promise<void> {
  await putAccountData(hs, userId, roomId, 'm.fully_read', { event_id: eventId });
}
