/**
 * Room versions are data (architecture practice 4): one rules record per version, each built by
 * spreading the previous one. Code asks the record; it never compares version strings.
 * Source: spec.matrix.org, "Room Versions" (content/rooms/v1.md … v12.md).
 */

export type EventIdFormat =
  /** v1–v2: `$localpart:server`, chosen by the origin server (rooms/v1 "Event IDs"). */
  | 'server'
  /** v3: `$` + standard unpadded base64 of the reference hash (rooms/v3 "Event IDs"). */
  | 'hash-base64'
  /** v4+: `$` + URL-safe unpadded base64 of the reference hash (rooms/v4 "Event IDs"). */
  | 'hash-base64url';

export type RedactionAlgorithm =
  /** v1–v5 (rooms/v1 "Redactions"). */
  | 'v1'
  /** v6–v7: `m.room.aliases` loses its special case (rooms/v6 "Redactions"). */
  | 'v6'
  /** v8: join rules keep `allow` (rooms/v8). */
  | 'v8'
  /** v9–v10: member keeps `join_authorised_via_users_server` (rooms/v9 "Redactions"). */
  | 'v9'
  /** v11+: rooms/v11 "Redactions". */
  | 'v11';

export interface AuthRules {
  /** v1–v2: special rule for `m.room.redaction` (domain of sender vs redacts) in the auth rules. */
  specialCaseRedaction: boolean;
  /** v1–v5: `m.room.aliases` events are authorised by state_key domain only. */
  specialCaseAliases: boolean;
  /** v6+: `notifications` levels in `m.room.power_levels` are checked like the others. */
  limitNotificationsPowerLevels: boolean;
  /** v7+: the `knock` membership and join rule. */
  knocking: boolean;
  /** v8+: the `restricted` join rule with `join_authorised_via_users_server`. */
  restrictedJoinRule: boolean;
  /** v10+: the `knock_restricted` join rule. */
  knockRestrictedJoinRule: boolean;
  /** v10+: power level values must be integers (no strings). */
  integerPowerLevels: boolean;
  /** v11+: the room creator is the create event's sender (not `content.creator`). */
  useRoomCreateSender: boolean;
  /** v12+: creators (sender + `additional_creators`) have infinite power and may not appear in power levels. */
  privilegedCreators: boolean;
  /** v12+: the room id is `!` + the create event's reference hash; create has no `room_id`
   *  and is not listed in `auth_events` (MSC4291). */
  roomIdFromCreateEvent: boolean;
}

export interface RoomVersionRules {
  id: string;
  stability: 'stable' | 'unstable';
  eventIdFormat: EventIdFormat;
  /** `prev_events` / `auth_events` as `[id, hashes]` pairs (v1–v2) rather than ids. */
  eventRefsArePairs: boolean;
  redaction: RedactionAlgorithm;
  stateRes: 'v1' | 'v2' | 'v2.1';
  /** v5+: signing keys must be valid at the event's `origin_server_ts` (rooms/v5). */
  enforceKeyValidity: boolean;
  /** v6+: events must be canonical JSON: integers within ±(2^53−1), no floats (rooms/v6). */
  strictCanonicalJson: boolean;
  auth: AuthRules;
}

const v1: RoomVersionRules = {
  id: '1',
  stability: 'stable',
  eventIdFormat: 'server',
  eventRefsArePairs: true,
  redaction: 'v1',
  stateRes: 'v1',
  enforceKeyValidity: false,
  strictCanonicalJson: false,
  auth: {
    specialCaseRedaction: true,
    specialCaseAliases: true,
    limitNotificationsPowerLevels: false,
    knocking: false,
    restrictedJoinRule: false,
    knockRestrictedJoinRule: false,
    integerPowerLevels: false,
    useRoomCreateSender: false,
    privilegedCreators: false,
    roomIdFromCreateEvent: false,
  },
};
const v2: RoomVersionRules = { ...v1, id: '2', stateRes: 'v2' };
const v3: RoomVersionRules = {
  ...v2,
  id: '3',
  eventIdFormat: 'hash-base64',
  eventRefsArePairs: false,
  auth: { ...v2.auth, specialCaseRedaction: false },
};
const v4: RoomVersionRules = { ...v3, id: '4', eventIdFormat: 'hash-base64url' };
const v5: RoomVersionRules = { ...v4, id: '5', enforceKeyValidity: true };
const v6: RoomVersionRules = {
  ...v5,
  id: '6',
  redaction: 'v6',
  strictCanonicalJson: true,
  auth: { ...v5.auth, specialCaseAliases: false, limitNotificationsPowerLevels: true },
};
const v7: RoomVersionRules = { ...v6, id: '7', auth: { ...v6.auth, knocking: true } };
const v8: RoomVersionRules = { ...v7, id: '8', redaction: 'v8', auth: { ...v7.auth, restrictedJoinRule: true } };
const v9: RoomVersionRules = { ...v8, id: '9', redaction: 'v9' };
const v10: RoomVersionRules = {
  ...v9,
  id: '10',
  auth: { ...v9.auth, knockRestrictedJoinRule: true, integerPowerLevels: true },
};
const v11: RoomVersionRules = {
  ...v10,
  id: '11',
  redaction: 'v11',
  auth: { ...v10.auth, useRoomCreateSender: true },
};
const v12: RoomVersionRules = {
  ...v11,
  id: '12',
  stateRes: 'v2.1',
  auth: { ...v11.auth, privilegedCreators: true, roomIdFromCreateEvent: true },
};

export const ROOM_VERSIONS: Readonly<Record<string, RoomVersionRules>> = Object.freeze(
  Object.fromEntries([v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12].map((r) => [r.id, Object.freeze(r)])),
);

/** The version new rooms get unless the client asks for another (spec: default room version). */
export const DEFAULT_ROOM_VERSION = '11';

/** The rules of a room version, or undefined for one we do not know. */
export function roomVersion(id: string): RoomVersionRules | undefined {
  return Object.prototype.hasOwnProperty.call(ROOM_VERSIONS, id) ? ROOM_VERSIONS[id] : undefined;
}
