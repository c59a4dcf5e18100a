/**
 * The `m.room.member` section of the authorization rules (rooms/v1 rule 5, v3 rule 5,
 * v8 rule 4, v10/v11 rule 4, v12 rule 5). Version differences are asked of `rules.auth`.
 */
import type { AuthResult, JsonObject, PDU } from '../types.ts';
import { ALLOW, deny, safeRefId, show, type AuthContext } from './context.ts';
import { domainOf, getOwn, hasOwn, isObject, isValidUserId } from './ids.ts';
import { namedLevel } from './power-levels.ts';
import type { CheckAuthOptions } from './types.ts';

/** Default for `hasServerSignature`: the event carries some signature by `serverName`. */
function structuralServerSignature(event: PDU, serverName: string): boolean {
  const sigs: unknown = event.signatures;
  if (!isObject(sigs)) return false;
  const byServer = getOwn(sigs, serverName);
  return isObject(byServer) && Object.values(byServer).some((s) => typeof s === 'string' && s !== '');
}

/** The public keys of an `m.room.third_party_invite` event: `public_key` and `public_keys[].public_key`. */
export function thirdPartyInviteKeys(tpInvite: PDU): string[] {
  const keys: string[] = [];
  const one = getOwn(tpInvite.content, 'public_key');
  if (typeof one === 'string') keys.push(one);
  const many = getOwn(tpInvite.content, 'public_keys');
  if (Array.isArray(many)) {
    for (const entry of many) {
      const k = getOwn(entry, 'public_key');
      if (typeof k === 'string') keys.push(k);
    }
  }
  return keys;
}

/**
 * Rule "If any signature in `signed` matches any public key in the m.room.third_party_invite
 * event, allow." With a verifier hook: some key verifies. Without: structural — `signed.signatures`
 * is `{server: {key_id: signature}}` with at least one signature string, and there is at least one
 * public key (a revoked invite, whose content is emptied, has none).
 */
function thirdPartySignatureMatches(signed: JsonObject, tpInvite: PDU, options: CheckAuthOptions): boolean {
  const keys = thirdPartyInviteKeys(tpInvite);
  if (keys.length === 0) return false;
  const sigs = getOwn(signed, 'signatures');
  if (!isObject(sigs)) return false;
  const hasSignature = Object.values(sigs).some((byKey) => isObject(byKey) && Object.values(byKey).some((s) => typeof s === 'string'));
  if (!hasSignature) return false;
  const verify = options.verifyThirdPartyInvite;
  if (!verify) return true;
  return keys.some((k) => verify(signed, k));
}

export function checkMember(ctx: AuthContext): AuthResult {
  const { event, content, rules } = ctx;
  const A = rules.auth;
  const sender = event.sender;

  // "If there is no state_key property, or no membership property in content, reject."
  const target = event.state_key;
  if (typeof target !== 'string') return deny('member: no state_key');
  if (!hasOwn(content, 'membership')) return deny('member: no membership in content');
  const membership = content.membership;

  // v8+: "If content has a join_authorised_via_users_server key: if the event is not validly
  // signed by the homeserver of the user ID denoted by the key, reject." (any membership)
  if (A.restrictedJoinRule && hasOwn(content, 'join_authorised_via_users_server')) {
    const via = content.join_authorised_via_users_server;
    if (!isValidUserId(via)) return deny('member: join_authorised_via_users_server is not a user id');
    const server = domainOf(via)!;
    const signed = (ctx.options.hasServerSignature ?? structuralServerSignature)(event, server);
    if (!signed) return deny(`member: not signed by ${server} (join_authorised_via_users_server)`);
  }

  switch (membership) {
    case 'join':
      return checkJoin(ctx, target);
    case 'invite':
      return checkInvite(ctx, target);
    case 'leave':
      return checkLeave(ctx, target);
    case 'ban': {
      if (ctx.membershipOf(sender) !== 'join') return deny('ban: sender is not joined');
      const senderLevel = ctx.powerOf(sender);
      if (senderLevel >= namedLevel(ctx.powerLevels(), 'ban') && ctx.powerOf(target) < senderLevel) return ALLOW;
      return deny('ban: sender power level too low (ban level or target level)');
    }
    case 'knock':
      // v7+ (rooms/v7): knocking. Before v7 `knock` is an unknown membership.
      if (A.knocking) return checkKnock(ctx, target);
      break;
  }
  return deny(`member: unknown membership ${show(membership)}`);
}

function checkJoin(ctx: AuthContext, target: string): AuthResult {
  const { event, content, rules, create } = ctx;
  const A = rules.auth;
  const sender = event.sender;

  // "If the only previous event is an m.room.create and the state_key is the creator, allow."
  // The creator is `content.creator` before v11, the create event's sender from v11 (rooms/v11
  // rule 4.3.1; in v12 too — additional creators still join like anyone else).
  const prev: unknown = event.prev_events;
  if (Array.isArray(prev) && prev.length === 1) {
    const prevId = safeRefId(prev[0]);
    const creator = A.useRoomCreateSender ? create.sender : getOwn(create.content, 'creator');
    if (prevId !== undefined && typeof creator === 'string' && creator === target && prevId === ctx.createId()) return ALLOW;
  }

  if (sender !== target) return deny('join: sender does not match state_key');
  const current = ctx.membershipOf(sender);
  if (current === 'ban') return deny('join: sender is banned');

  const joinRule = ctx.joinRule();
  // v7+: `knock` rooms admit invited members like `invite` rooms.
  if (joinRule === 'invite' || (A.knocking && joinRule === 'knock')) {
    if (current === 'invite' || current === 'join') return ALLOW;
    return deny(`join: join rule is ${joinRule} and sender is not invited`);
  }
  // v8+: `restricted`; v10+: `knock_restricted` (rooms/v8 rule 4.3.5, rooms/v10 rule 4.3.5).
  if ((A.restrictedJoinRule && joinRule === 'restricted') || (A.knockRestrictedJoinRule && joinRule === 'knock_restricted')) {
    if (current === 'join' || current === 'invite') return ALLOW;
    // "If the join_authorised_via_users_server key in content is not a user with sufficient
    // permission to invite other users or is not a joined member of the room, reject."
    const via = getOwn(content, 'join_authorised_via_users_server');
    if (typeof via !== 'string') return deny(`join: ${joinRule} room and no join_authorised_via_users_server`);
    if (ctx.membershipOf(via) !== 'join') return deny('join: authorising user is not joined');
    if (ctx.powerOf(via) < namedLevel(ctx.powerLevels(), 'invite')) return deny('join: authorising user cannot invite');
    return ALLOW;
  }
  if (joinRule === 'public') return ALLOW;
  return deny(`join: join rule ${show(joinRule)} does not admit the sender`);
}

function checkInvite(ctx: AuthContext, target: string): AuthResult {
  const { event, content, lookup } = ctx;
  const sender = event.sender;

  if (hasOwn(content, 'third_party_invite')) {
    if (ctx.membershipOf(target) === 'ban') return deny('3pid invite: target is banned');
    const tpi = content.third_party_invite;
    if (!isObject(tpi) || !hasOwn(tpi, 'signed')) return deny('3pid invite: no signed property');
    const signed = tpi.signed;
    if (!isObject(signed) || !hasOwn(signed, 'mxid') || !hasOwn(signed, 'token')) return deny('3pid invite: signed lacks mxid or token');
    if (signed.mxid !== target) return deny('3pid invite: mxid does not match state_key');
    const token = signed.token;
    const tpInvite = typeof token === 'string' ? lookup('m.room.third_party_invite', token) : undefined;
    if (!tpInvite) return deny('3pid invite: no m.room.third_party_invite for the token');
    if (tpInvite.sender !== sender) return deny('3pid invite: sender does not match the third party invite sender');
    if (thirdPartySignatureMatches(signed, tpInvite, ctx.options)) return ALLOW;
    return deny('3pid invite: no signature in signed matches a public key');
  }

  if (ctx.membershipOf(sender) !== 'join') return deny('invite: sender is not joined');
  const targetMembership = ctx.membershipOf(target);
  if (targetMembership === 'join' || targetMembership === 'ban') return deny(`invite: target is ${targetMembership}`);
  if (ctx.powerOf(sender) >= namedLevel(ctx.powerLevels(), 'invite')) return ALLOW;
  return deny('invite: sender power level below invite level');
}

function checkLeave(ctx: AuthContext, target: string): AuthResult {
  const { event, rules } = ctx;
  const sender = event.sender;

  if (sender === target) {
    // "allow if and only if that user's current membership state is invite, join, or knock"
    // (`knock` from v7).
    const m = ctx.membershipOf(sender);
    if (m === 'invite' || m === 'join' || (rules.auth.knocking && m === 'knock')) return ALLOW;
    return deny('leave: sender is not invited or joined');
  }
  if (ctx.membershipOf(sender) !== 'join') return deny('kick: sender is not joined');
  const senderLevel = ctx.powerOf(sender);
  const levels = ctx.powerLevels();
  if (ctx.membershipOf(target) === 'ban' && senderLevel < namedLevel(levels, 'ban')) return deny('unban: sender below ban level');
  if (senderLevel >= namedLevel(levels, 'kick') && ctx.powerOf(target) < senderLevel) return ALLOW;
  return deny('kick: sender power level too low (kick level or target level)');
}

function checkKnock(ctx: AuthContext, target: string): AuthResult {
  const { event, rules } = ctx;
  const joinRule = ctx.joinRule();
  // v10+: `knock_restricted` rooms accept knocks too.
  if (joinRule !== 'knock' && !(rules.auth.knockRestrictedJoinRule && joinRule === 'knock_restricted')) {
    return deny(`knock: join rule ${show(joinRule)} does not allow knocking`);
  }
  if (event.sender !== target) return deny('knock: sender does not match state_key');
  const m = ctx.membershipOf(event.sender);
  if (m !== 'ban' && m !== 'invite' && m !== 'join') return ALLOW;
  return deny(`knock: sender is already ${m}`);
}
