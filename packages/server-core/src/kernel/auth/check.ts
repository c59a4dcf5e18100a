/**
 * The authorization rules (rooms/v1 … v12 "Authorisation rules"), as one function that asks the
 * room version's `auth` flags. Rule numbers in comments follow rooms/v1 unless stated; the same
 * rules are renumbered in later versions (aliases gone in v6, redaction gone in v3, a new rule 2
 * in v12).
 *
 * What this function does NOT do (callers' duty, see index.ts):
 * - the structural rules on the `auth_events` list (rule 2.1, 2.2, 2.4, 2.5) — `checkAuthEventsList`;
 * - rule 2.3 (auth events that were themselves rejected) — needs the caller's rejection records;
 * - signature checks, except through the `CheckAuthOptions` hooks (see there for the defaults).
 */
import type { RoomVersionRules } from '../room-versions.ts';
import { roomVersion } from '../room-versions.ts';
import type { AuthResult, PDU } from '../types.ts';
import { ALLOW, AuthContext, deny } from './context.ts';
import { domainOf, getOwn, hasOwn, isObject, isValidUserId } from './ids.ts';
import { checkMember } from './membership.ts';
import {
  creatorsOf,
  namedLevel,
  parsePowerLevelsStrict,
  requiredPowerLevel,
  TOP_LEVEL_KEYS,
  type ParsedPowerLevels,
} from './power-levels.ts';
import type { CheckAuthOptions, StateLookup } from './types.ts';

/**
 * The spec's authorization rules: is `event` allowed given the state the rules consult (`lookup`)?
 * A rejection is a returned value naming the rule; malformed input never throws.
 */
export function checkAuth(event: PDU, lookup: StateLookup, rules: RoomVersionRules, options: CheckAuthOptions = {}): AuthResult {
  try {
    return checkAuthUnsafe(event, lookup, rules, options);
  } catch (e) {
    // Safety net only: the rules are written not to throw on any JSON input. A throwing `lookup`
    // or hook lands here too.
    return deny(`internal error while authorising: ${(e as Error)?.message ?? String(e)}`);
  }
}

function checkAuthUnsafe(event: PDU, lookup: StateLookup, rules: RoomVersionRules, options: CheckAuthOptions): AuthResult {
  if (!isObject(event)) return deny('malformed event: not an object');
  if (typeof event.type !== 'string') return deny('malformed event: type is not a string');
  if (typeof event.sender !== 'string') return deny('malformed event: sender is not a string');
  if (!isObject(event.content)) return deny('malformed event: content is not an object');
  if (event.state_key !== undefined && typeof event.state_key !== 'string') return deny('malformed event: state_key is not a string');
  const A = rules.auth;

  // Rule 1: m.room.create.
  if (event.type === 'm.room.create') return checkCreate(event, rules);

  const create = lookup('m.room.create', '');
  // Rule 2.4 (v1–v11: "If there is no m.room.create event among the entries, reject"); in v12 the
  // create event is still needed to know the room (rule 2) and its creators.
  if (!create || !isObject(create) || create.type !== 'm.room.create') return deny('no m.room.create event in the room state');

  const ctx = new AuthContext(event, event.content, lookup, rules, create, options);

  if (A.roomIdFromCreateEvent) {
    // v12 rule 2: "If the event's room_id is not an event ID for an accepted (not rejected)
    // m.room.create event, with the sigil ! instead of $, reject." Whether the create event was
    // rejected is the caller's knowledge; a create event it hands us is taken as accepted.
    const createId = ctx.createId();
    if (typeof createId !== 'string' || !createId.startsWith('$')) return deny('room_id: the create event id is unknown');
    if (event.room_id !== '!' + createId.slice(1)) return deny('room_id is not the create event id (v12 rule 2)');
  } else if (create.room_id !== event.room_id) {
    // Rule 2.5 seen from the state side: the create event must be of this room.
    return deny('the m.room.create event belongs to another room');
  }

  // Rule 3: "If the content of the m.room.create event in the room state has the property
  // m.federate set to false, and the sender domain of the event does not match the sender domain
  // of the create event, reject."
  if (getOwn(create.content, 'm.federate') === false && domainOf(event.sender) !== domainOf(create.sender)) {
    return deny('m.federate is false and the sender is from another server');
  }

  // Rule 4 (v1–v5): m.room.aliases is authorised by the state_key's domain only.
  if (A.specialCaseAliases && event.type === 'm.room.aliases') {
    if (event.state_key === undefined) return deny('aliases: no state_key');
    if (domainOf(event.sender) !== event.state_key) return deny("aliases: sender's domain does not match state_key");
    return ALLOW;
  }

  // Rule 5: m.room.member.
  if (event.type === 'm.room.member') return checkMember(ctx);

  // Rule 6: "If the sender's current membership state is not join, reject."
  if (ctx.membershipOf(event.sender) !== 'join') return deny('sender is not joined to the room');

  const senderLevel = ctx.powerOf(event.sender);
  const levels = ctx.powerLevels();

  // Rule 7: "If type is m.room.third_party_invite: allow if and only if sender's current power
  // level is greater than or equal to the invite level." (decided before the required level)
  if (event.type === 'm.room.third_party_invite') {
    return senderLevel >= namedLevel(levels, 'invite') ? ALLOW : deny('third_party_invite: sender below invite level');
  }

  // Rule 8: "If the event type's required power level is greater than the sender's power level, reject."
  if (requiredPowerLevel(event, levels) > senderLevel) return deny(`sender power level too low to send ${event.type}`);

  // Rule 9: "If the event has a state_key that starts with an @ and does not match the sender, reject."
  if (event.state_key !== undefined && event.state_key.startsWith('@') && event.state_key !== event.sender) {
    return deny('state_key starts with @ and is not the sender');
  }

  // Rule 10: m.room.power_levels.
  if (event.type === 'm.room.power_levels') return checkPowerLevels(ctx, senderLevel, levels);

  // Rule 11 (v1–v2): m.room.redaction needs the redact level or the same domain as the redacted
  // event's id. From v3 the redact level is not an auth rule (rooms/v3 "Handling redactions").
  if (A.specialCaseRedaction && event.type === 'm.room.redaction') {
    if (senderLevel >= namedLevel(levels, 'redact')) return ALLOW;
    const redactsDomain = domainOf(event.redacts);
    if (redactsDomain !== undefined && redactsDomain === domainOf(event.event_id)) return ALLOW;
    return deny('redaction: sender below redact level and redacted event is from another domain');
  }

  // Rule 12: otherwise, allow.
  return ALLOW;
}

/** Rule 1: m.room.create. */
function checkCreate(event: PDU, rules: RoomVersionRules): AuthResult {
  const A = rules.auth;
  const content = event.content;
  // 1.1 "If it has any prev_events, reject."
  const prev: unknown = event.prev_events;
  if (prev !== undefined && !(Array.isArray(prev) && prev.length === 0)) return deny('create: has prev_events');
  if (A.roomIdFromCreateEvent) {
    // v12 1.2: "If the event has a room_id, reject." (the room id is derived from the event id)
    if (event.room_id !== undefined) return deny('create: has a room_id (v12)');
  } else {
    // 1.2: "If the domain of the room_id does not match the domain of the sender, reject."
    const roomDomain = domainOf(event.room_id);
    if (roomDomain === undefined || roomDomain !== domainOf(event.sender)) return deny("create: room_id's domain does not match the sender's");
  }
  // 1.3: "If content.room_version is present and is not a recognised version, reject."
  if (hasOwn(content, 'room_version')) {
    const v = content.room_version;
    if (typeof v !== 'string' || roomVersion(v) === undefined) return deny('create: unrecognised room_version');
  }
  // v12 1.4: additional_creators must be an array of valid user ids.
  if (A.privilegedCreators && hasOwn(content, 'additional_creators')) {
    const extra = content.additional_creators;
    if (!Array.isArray(extra) || !extra.every((u) => isValidUserId(u))) return deny('create: additional_creators is not an array of user ids');
  }
  // v1–v10 1.4: "If content has no creator property, reject." (dropped in v11)
  if (!A.useRoomCreateSender && !hasOwn(content, 'creator')) return deny('create: no creator property');
  return ALLOW;
}

/** Rule 10: m.room.power_levels (rooms/v10 rule 9, rooms/v12 rule 10). */
function checkPowerLevels(ctx: AuthContext, senderLevel: number, current: ParsedPowerLevels | undefined): AuthResult {
  const { event, rules, create } = ctx;
  const A = rules.auth;
  // v10 9.1–9.3 (v1 10.1 for `users`, extended to all values before v10 — see parsePowerLevelsStrict).
  const parsed = parsePowerLevelsStrict(event.content, rules);
  if (!parsed.ok) return deny(parsed.reason);
  const next = parsed.levels;

  // v12 10.4: "If the users property in content contains the sender of the m.room.create event or
  // any of the additional_creators array (if present) ..., reject."
  if (A.privilegedCreators) {
    for (const creator of creatorsOf(create, rules)) {
      if (next.users.has(creator)) return deny(`power_levels: creator ${creator} may not appear in users (v12)`);
    }
  }

  // "If there is no previous m.room.power_levels event in the room, allow."
  if (!ctx.lookup('m.room.power_levels', '')) return ALLOW;
  const prev = current ?? { top: new Map(), events: new Map(), notifications: new Map(), users: new Map() };

  // "For the properties users_default, events_default, state_default, ban, redact, kick, invite
  // check if they were added, changed or removed. For each found alteration: if the current value
  // is higher than the sender's current power level, reject; if the new value is higher ...,
  // reject." Values are compared as parsed levels ("50" and 50 are the same level).
  for (const key of TOP_LEVEL_KEYS) {
    const before = prev.top.get(key);
    const after = next.top.get(key);
    if (before === after) continue;
    if (before !== undefined && before > senderLevel) return deny(`power_levels: current ${key} is above the sender's level`);
    if (after !== undefined && after > senderLevel) return deny(`power_levels: new ${key} is above the sender's level`);
  }

  // "For each entry being changed in, or removed from, the events (v6+: or notifications)
  // properties: if the current value is greater than the sender's current power level, reject."
  // "For each entry being added to, or changed in, ...: if the new value is greater ..., reject."
  const maps: Array<'events' | 'notifications'> = A.limitNotificationsPowerLevels ? ['events', 'notifications'] : ['events'];
  for (const prop of maps) {
    const r = checkMapChanges(prop, prev[prop], next[prop], senderLevel);
    if (r) return r;
  }

  // "For each entry being changed in, or removed from, the users property, other than the
  // sender's own entry: if the current value is greater than or equal to the sender's current
  // power level, reject." "For each entry being added to, or changed in, the users property: if
  // the new value is greater than the sender's current power level, reject."
  for (const user of union(prev.users.keys(), next.users.keys())) {
    const before = prev.users.get(user);
    const after = next.users.get(user);
    if (before === after) continue;
    if (before !== undefined && user !== event.sender && before >= senderLevel) {
      return deny(`power_levels: cannot change the level of ${user}, at or above the sender's`);
    }
    if (after !== undefined && after > senderLevel) return deny(`power_levels: cannot raise ${user} above the sender's level`);
  }
  return ALLOW;
}

function checkMapChanges(prop: string, before: Map<string, number>, after: Map<string, number>, senderLevel: number): AuthResult | undefined {
  for (const key of union(before.keys(), after.keys())) {
    const b = before.get(key);
    const a = after.get(key);
    if (b === a) continue;
    if (b !== undefined && b > senderLevel) return deny(`power_levels: current ${prop}[${JSON.stringify(key)}] is above the sender's level`);
    if (a !== undefined && a > senderLevel) return deny(`power_levels: new ${prop}[${JSON.stringify(key)}] is above the sender's level`);
  }
  return undefined;
}

function union<T>(a: Iterable<T>, b: Iterable<T>): Set<T> {
  const s = new Set(a);
  for (const x of b) s.add(x);
  return s;
}
