/** Small helpers on events that state resolution needs. */
import { createEventIdFromRoomId } from '../events.ts';
import type { RoomVersionRules } from '../room-versions.ts';
import { refId, stateKey, type PDU, type StateKey } from '../types.ts';
import type { StateLookup } from './auth.ts';

/** Look an event up by id (state events and the events of their auth chains). */
export type EventLookup = (eventId: string) => PDU | undefined;

const NO_IDS: readonly string[] = Object.freeze([]);

/** The ids an event lists in `auth_events` (both the v1–v2 pair form and the v3+ id form). */
export function authEventIds(ev: PDU): readonly string[] {
  const refs = ev.auth_events;
  if (!refs || refs.length === 0) return NO_IDS;
  return refs.map(refId);
}

/** The ids an event lists in `prev_events`. */
export function prevEventIds(ev: PDU): readonly string[] {
  const refs = ev.prev_events;
  if (!refs || refs.length === 0) return NO_IDS;
  return refs.map(refId);
}

/** The state key `(type, state_key)` of a state event, or undefined for a message event. */
export function keyOf(ev: PDU): StateKey | undefined {
  return typeof ev.state_key === 'string' ? stateKey(ev.type, ev.state_key) : undefined;
}

/**
 * The room's `m.room.create` event as room version 12 finds it: the room id is `!` + the create event's
 * reference hash, i.e. its event id with the sigil `!` instead of `$` (rooms/v12 "Authorization rules",
 * rule 2; MSC4291). Undefined when the room id names no known create event.
 */
export function createEventOfRoom(roomId: unknown, lookup: EventLookup): { id: string; event: PDU } | undefined {
  if (typeof roomId !== 'string' || !roomId.startsWith('!')) return undefined;
  const id = createEventIdFromRoomId(roomId);
  const event = lookup(id);
  return event && event.type === 'm.room.create' && event.state_key === '' ? { id, event } : undefined;
}

/**
 * "Power events" (rooms/v2 "State resolution", Definitions): a state event with type
 * `m.room.power_levels` or `m.room.join_rules`, or an `m.room.member` state event whose membership is
 * `leave` or `ban` and whose sender is not its state_key.
 *
 * The spec's list is taken as written; Synapse and ruma also count `m.room.create` (see the report).
 */
export function isPowerEvent(ev: PDU): boolean {
  if (typeof ev.state_key !== 'string') return false;
  if (ev.type === 'm.room.power_levels' || ev.type === 'm.room.join_rules') return ev.state_key === '';
  if (ev.type === 'm.room.member') {
    const m = ev.content?.membership;
    return (m === 'leave' || m === 'ban') && ev.sender !== ev.state_key;
  }
  return false;
}

/**
 * The state an event's `auth_events` describe, as a map `(type, state_key)` → event: every listed auth
 * event that is known and not rejected, and, in room versions whose room id names the create event (v12),
 * the create event found through the room id, since it is never listed (rooms/v12 "Authorization rules").
 */
export function authEventsState(
  ev: PDU,
  lookup: EventLookup,
  rules: RoomVersionRules,
  isRejected: ((eventId: string) => boolean) | undefined,
): Map<StateKey, PDU> {
  const out = new Map<StateKey, PDU>();
  if (rules.auth.roomIdFromCreateEvent && ev.type !== 'm.room.create') {
    const create = createEventOfRoom(ev.room_id, lookup);
    if (create && !isRejected?.(create.id)) out.set(stateKey('m.room.create', ''), create.event);
  }
  for (const id of authEventIds(ev)) {
    const a = lookup(id);
    if (!a || isRejected?.(id)) continue;
    const k = keyOf(a);
    if (k !== undefined) out.set(k, a);
  }
  return out;
}

/** A lookup over a map of `(type, state_key)` → event, in the form the auth rules take. */
export function lookupIn(state: Map<StateKey, PDU>): StateLookup {
  return (type, key) => state.get(stateKey(type, key));
}

/** `origin_server_ts` as a number for ordering (0 when absent or not a number). */
export function tsOf(ev: PDU | undefined): number {
  const ts = ev?.origin_server_ts;
  return typeof ts === 'number' ? ts : 0;
}
