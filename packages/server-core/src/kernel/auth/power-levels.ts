/**
 * Power levels as the authorization rules read them.
 *
 * Sources: rooms/v1 "m.room.power_levels events accept values as strings" (v1–v9) and
 * "... accept values as floats" (v1–v5); rooms/v10 "Values in m.room.power_levels events must be
 * integers"; server-server API "Checks performed on receipt of a PDU" → Definitions (required
 * power level, invite/kick/ban/redact levels and their defaults); client-server API
 * m.room.power_levels (defaults; creator 100 when there is no power levels event in v1–v11);
 * rooms/v12 (creators have infinite power level).
 */
import type { RoomVersionRules } from '../room-versions.ts';
import type { JsonValue, PDU } from '../types.ts';
import { getOwn, hasOwn, isObject, isValidUserId } from './ids.ts';
import type { StateLookup } from './types.ts';

/** The integer-valued top-level properties of `m.room.power_levels` content. */
export const TOP_LEVEL_KEYS = ['users_default', 'events_default', 'state_default', 'ban', 'redact', 'kick', 'invite'] as const;
export type TopLevelKey = (typeof TOP_LEVEL_KEYS)[number];

/** Defaults when a property (or the whole event) is absent. */
export const DEFAULT_LEVELS: Readonly<Record<TopLevelKey, number>> = Object.freeze({
  users_default: 0,
  events_default: 0,
  state_default: 50,
  ban: 50,
  redact: 50,
  kick: 50,
  invite: 0,
});

/** The power level of a room creator when the room has no `m.room.power_levels` event (v1–v11). */
export const CREATOR_DEFAULT_LEVEL = 100;

const STRINGY_INTEGER = /^\s*([+-]?)([0-9]+)\s*$/;

/**
 * One power level value as this room version reads it, or undefined if it is not a valid level.
 * - integers: always;
 * - v1–v9 (`!integerPowerLevels`): strings of a base-10 integer with optional sign, leading
 *   zeroes and surrounding whitespace (rooms/v1 "accept values as strings");
 * - v1–v5 (`!strictCanonicalJson`): finite floats, truncated at the decimal point (rooms/v1
 *   "accept values as floats"; from v6 canonical JSON forbids floats altogether).
 * Values that are not finite doubles (e.g. a string of 400 digits) are invalid.
 */
export function parseLevel(v: unknown, rules: RoomVersionRules): number | undefined {
  let n: number | undefined;
  if (typeof v === 'number') {
    if (Number.isInteger(v)) n = v;
    else if (!rules.strictCanonicalJson && Number.isFinite(v)) n = Math.trunc(v);
  } else if (typeof v === 'string' && !rules.auth.integerPowerLevels) {
    const m = STRINGY_INTEGER.exec(v);
    if (m) {
      const abs = Number(m[2]);
      if (Number.isFinite(abs)) n = m[1] === '-' ? -abs : abs;
    }
  }
  if (n === undefined) return undefined;
  return n === 0 ? 0 : n; // no -0
}

/** Power levels content with every value parsed; maps hold only the entries present. */
export interface ParsedPowerLevels {
  top: Map<TopLevelKey, number>;
  events: Map<string, number>;
  notifications: Map<string, number>;
  users: Map<string, number>;
}

export type StrictParse = { ok: true; levels: ParsedPowerLevels } | { ok: false; reason: string };

function emptyLevels(): ParsedPowerLevels {
  return { top: new Map(), events: new Map(), notifications: new Map(), users: new Map() };
}

/**
 * Validates the content of an `m.room.power_levels` event being authorised (rules/v10 10.1–10.3,
 * i.e. "power_levels 1–3" in every version) and parses it.
 *
 * In v10+ this is exactly the spec: present top-level properties must be integers, `events` and
 * `notifications` objects of integers, `users` an object of valid user ids to integers.
 * In v1–v9 the spec only states the `users` check (values "integers (or a string that is an
 * integer)"); we apply the same "must be a valid level in this room version" check to every
 * integer-valued property, because a value that is no level at all (`"ban": "abc"`, `null`, an
 * object) gives the later rules nothing to compare — Synapse fails on such values as soon as they
 * are read, Ruma refuses to deserialise them. Decision: reject them.
 */
export function parsePowerLevelsStrict(content: unknown, rules: RoomVersionRules): StrictParse {
  if (!isObject(content)) return { ok: false, reason: 'power_levels: content is not an object' };
  const levels = emptyLevels();
  const kind = rules.auth.integerPowerLevels ? 'an integer' : 'an integer or integer string';
  for (const key of TOP_LEVEL_KEYS) {
    if (!hasOwn(content, key)) continue;
    const n = parseLevel(content[key], rules);
    if (n === undefined) return { ok: false, reason: `power_levels: ${key} is not ${kind}` };
    levels.top.set(key, n);
  }
  for (const prop of ['events', 'notifications'] as const) {
    if (!hasOwn(content, prop)) continue;
    const obj = content[prop];
    if (!isObject(obj)) return { ok: false, reason: `power_levels: ${prop} is not an object` };
    for (const k of Object.keys(obj)) {
      const n = parseLevel(obj[k], rules);
      if (n === undefined) return { ok: false, reason: `power_levels: ${prop}[${JSON.stringify(k)}] is not ${kind}` };
      levels[prop].set(k, n);
    }
  }
  if (hasOwn(content, 'users')) {
    const users = content.users;
    if (!isObject(users)) return { ok: false, reason: 'power_levels: users is not an object' };
    for (const k of Object.keys(users)) {
      if (!isValidUserId(k)) return { ok: false, reason: `power_levels: users key ${JSON.stringify(k)} is not a valid user id` };
      const n = parseLevel(users[k], rules);
      if (n === undefined) return { ok: false, reason: `power_levels: users[${JSON.stringify(k)}] is not ${kind}` };
      levels.users.set(k, n);
    }
  }
  return { ok: true, levels };
}

const lenientCache: Record<string, WeakMap<object, ParsedPowerLevels>> = {};

/**
 * Parses the power levels already in the room state, skipping (treating as absent) any value
 * that is not a valid level. An accepted power levels event never has such values (the strict
 * parse rejected them); this only keeps garbage state from crashing the rules.
 */
export function parsePowerLevelsLenient(content: unknown, rules: RoomVersionRules): ParsedPowerLevels {
  if (!isObject(content)) return emptyLevels();
  // The result depends only on the number format flags; cache per content object.
  const fmt = `${rules.auth.integerPowerLevels}/${rules.strictCanonicalJson}`;
  const cache = (lenientCache[fmt] ??= new WeakMap());
  const hit = cache.get(content);
  if (hit) return hit;
  const levels = emptyLevels();
  for (const key of TOP_LEVEL_KEYS) {
    const n = parseLevel(getOwn(content, key), rules);
    if (n !== undefined) levels.top.set(key, n);
  }
  for (const prop of ['events', 'notifications', 'users'] as const) {
    const obj = getOwn(content, prop);
    if (!isObject(obj)) continue;
    for (const k of Object.keys(obj)) {
      const n = parseLevel(obj[k], rules);
      if (n !== undefined) levels[prop].set(k, n);
    }
  }
  cache.set(content, levels);
  return levels;
}

/** The current power levels of the state `lookup` describes, or undefined if there is no event. */
export function currentPowerLevels(lookup: StateLookup, rules: RoomVersionRules): ParsedPowerLevels | undefined {
  const ev = lookup('m.room.power_levels', '');
  return ev ? parsePowerLevelsLenient(ev.content, rules) : undefined;
}

/** A named level (`ban`, `kick`, `invite`, `redact`, `state_default`, ...) with its default. */
export function namedLevel(levels: ParsedPowerLevels | undefined, key: TopLevelKey): number {
  return levels?.top.get(key) ?? DEFAULT_LEVELS[key];
}

/**
 * The *required power level* of an event (server-server API, Definitions): `events[type]`, else
 * `state_default` for state events or `events_default` for the others.
 */
export function requiredPowerLevel(event: PDU, levels: ParsedPowerLevels | undefined): number {
  const explicit = levels?.events.get(event.type);
  if (explicit !== undefined) return explicit;
  return event.state_key !== undefined ? namedLevel(levels, 'state_default') : namedLevel(levels, 'events_default');
}

/**
 * The room creators (rooms/v12 "room creators"):
 * - v1–v10: `content.creator` of the create event (rooms/v1 rule 1.4 requires it);
 * - v11: the create event's `sender` (rooms/v11: "the state_key is the sender of the m.room.create");
 * - v12: the `sender` plus every user id in `content.additional_creators`.
 */
export function creatorsOf(createEvent: PDU, rules: RoomVersionRules): Set<string> {
  const out = new Set<string>();
  if (!isObject(createEvent)) return out;
  if (!rules.auth.useRoomCreateSender) {
    const creator = getOwn(createEvent.content, 'creator');
    if (typeof creator === 'string') out.add(creator);
    return out;
  }
  if (typeof createEvent.sender === 'string') out.add(createEvent.sender);
  if (rules.auth.privilegedCreators) {
    const extra: JsonValue | undefined = getOwn(createEvent.content, 'additional_creators');
    if (Array.isArray(extra)) for (const u of extra) if (typeof u === 'string') out.add(u);
  }
  return out;
}

/**
 * A user's power level in the state `lookup` describes.
 * - v12 (`privilegedCreators`): creators have an infinite level, whatever the power levels say.
 * - With an `m.room.power_levels` event: `users[userId]`, else `users_default`, else 0.
 * - Without one: 100 for the creator in v1–v11, 0 for everyone else (client-server API,
 *   m.room.power_levels `users_default`).
 */
export function userPowerLevel(userId: string, lookup: StateLookup, rules: RoomVersionRules): number {
  const create = lookup('m.room.create', '');
  const isCreator = create !== undefined && creatorsOf(create, rules).has(userId);
  if (rules.auth.privilegedCreators && isCreator) return Infinity;
  const levels = currentPowerLevels(lookup, rules);
  if (levels) return levels.users.get(userId) ?? namedLevel(levels, 'users_default');
  return isCreator ? CREATOR_DEFAULT_LEVEL : 0;
}
