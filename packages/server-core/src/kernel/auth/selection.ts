/**
 * Auth events selection (server-server API "Auth events selection") and the structural rules on
 * an event's `auth_events` list (rooms/v1 rule 2 "Considering the event's auth_events", rooms/v12
 * rule 3).
 */
import type { RoomVersionRules } from '../room-versions.ts';
import { stateKey, type AuthResult, type PDU } from '../types.ts';
import { ALLOW, deny } from './context.ts';
import { getOwn, hasOwn, isObject } from './ids.ts';
import type { CheckAuthEventsOptions } from './types.ts';

/**
 * The `(type, state_key)` pairs an event's `auth_events` should be drawn from (each at most once):
 * - none for `m.room.create`;
 * - `m.room.create` (not in v12, where the room id stands for it), the current power levels, the
 *   sender's member event;
 * - for `m.room.member`: the target's member event; the join rules if `membership` is `join`,
 *   `invite` or `knock`; for an invite with `third_party_invite`, the `m.room.third_party_invite`
 *   of `content.third_party_invite.signed.token`; for a join with
 *   `join_authorised_via_users_server` in a room version with restricted rooms, that user's
 *   member event.
 * Malformed content contributes no pair (it is rejected later by the rules themselves).
 */
export function authEventTypes(event: PDU, rules: RoomVersionRules): Array<[string, string]> {
  if (!isObject(event) || event.type === 'm.room.create') return [];
  const out: Array<[string, string]> = [];
  const seen = new Set<string>();
  const add = (type: string, key: unknown) => {
    if (typeof key !== 'string') return;
    const k = stateKey(type, key);
    if (seen.has(k)) return;
    seen.add(k);
    out.push([type, key]);
  };
  if (!rules.auth.roomIdFromCreateEvent) add('m.room.create', '');
  add('m.room.power_levels', '');
  add('m.room.member', event.sender);
  if (event.type === 'm.room.member') {
    const content = event.content;
    const membership = getOwn(content, 'membership');
    add('m.room.member', event.state_key);
    if (membership === 'join' || membership === 'invite' || membership === 'knock') add('m.room.join_rules', '');
    if (membership === 'invite' && isObject(content) && hasOwn(content, 'third_party_invite')) {
      add('m.room.third_party_invite', getOwn(getOwn(content.third_party_invite, 'signed'), 'token'));
    }
    if (membership === 'join' && rules.auth.restrictedJoinRule) {
      add('m.room.member', getOwn(content, 'join_authorised_via_users_server'));
    }
  }
  return out;
}

/**
 * The structural rules on an event's `auth_events` (given as the events they name):
 * 2.1 duplicates of a `(type, state_key)` pair; 2.2 entries the selection does not name (in v12
 * this includes any `m.room.create`); 2.3 entries that were rejected (only with the `isRejected`
 * hook); 2.4 no `m.room.create` (v1–v11); 2.5 an entry from another room.
 * For `m.room.create` itself rule 1 decides before rule 2 is reached, so this allows it.
 */
export function checkAuthEventsList(event: PDU, authEvents: PDU[], rules: RoomVersionRules, options: CheckAuthEventsOptions = {}): AuthResult {
  try {
    if (!isObject(event)) return deny('malformed event: not an object');
    if (event.type === 'm.room.create') return ALLOW;
    if (!Array.isArray(authEvents)) return deny('auth_events: not a list');
    const v12 = rules.auth.roomIdFromCreateEvent;

    // 2.1 duplicates.
    const seen = new Set<string>();
    for (const e of authEvents) {
      if (!isObject(e) || typeof e.type !== 'string' || typeof e.state_key !== 'string') {
        return deny('auth_events: an entry is not a state event');
      }
      const k = stateKey(e.type, e.state_key);
      if (seen.has(k)) return deny(`auth_events: duplicate entries for (${e.type}, ${JSON.stringify(e.state_key)})`);
      seen.add(k);
    }

    // 2.2 entries the auth events selection does not name.
    const selected = new Set(authEventTypes(event, rules).map(([t, s]) => stateKey(t, s)));
    for (const e of authEvents) {
      if (selected.has(stateKey(e.type, e.state_key!))) continue;
      if (v12 && e.type === 'm.room.create') return deny('auth_events: m.room.create must not be listed (v12)');
      return deny(`auth_events: (${e.type}, ${JSON.stringify(e.state_key)}) is not selected for this event`);
    }

    // 2.3 entries that were themselves rejected.
    if (options.isRejected) {
      for (const e of authEvents) if (options.isRejected(e)) return deny(`auth_events: (${e.type}, ${JSON.stringify(e.state_key)}) was rejected`);
    }

    // 2.4 (v1–v11) "If there is no m.room.create event among the entries, reject."
    if (!v12 && !seen.has(stateKey('m.room.create', ''))) return deny('auth_events: no m.room.create event');

    // 2.5 "If any event in auth_events has a room_id which does not match that of the event being
    // authorised, reject."
    for (const e of authEvents) {
      if (e.room_id !== event.room_id) return deny(`auth_events: (${e.type}, ${JSON.stringify(e.state_key)}) is from another room`);
    }
    return ALLOW;
  } catch (e) {
    return deny(`internal error while checking auth_events: ${(e as Error)?.message ?? String(e)}`);
  }
}
