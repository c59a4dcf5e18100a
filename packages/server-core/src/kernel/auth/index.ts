/**
 * The authorization rules of the protocol kernel, room versions 1–12, as pure functions.
 *
 * - `checkAuth(event, lookup, rules)`: the spec's numbered rules against the state `lookup` gives
 *   (the event's auth events, the state before it, or the current state — the three checks of
 *   server-server API "Checks performed on receipt of a PDU" differ only in that state).
 * - `authEventTypes(event, rules)`: server-server API "Auth events selection".
 * - `checkAuthEventsList(event, authEvents, rules)`: the structural rules on the auth_events list.
 * - `userPowerLevel`, `creatorsOf` and the power level parsing, for the client API and state res.
 *
 * Version differences are asked of `rules.auth` (and `rules.strictCanonicalJson` for floats), never
 * of the version string. Rejections are values naming the rule; malformed input never throws.
 *
 * Interpretations where the spec is silent or loose (each is commented where it is applied):
 * - Rule 2 (the auth_events list) is `checkAuthEventsList`, not part of `checkAuth`, because
 *   `checkAuth` also runs against the state before the event and in state resolution. Rule 2.3
 *   (rejected auth events) needs the caller's records: `isRejected` hook, else not applied.
 * - `checkAuth` needs the create event from `lookup` in every version (pre-v12 that is rule 2.4;
 *   in v12 the room id must be the create event's id, rule 2) and rejects without it. Pre-v12 it
 *   also rejects if that create event carries another `room_id` (rule 2.5 seen from the state).
 * - Signatures are not verified here (ed25519 is async in this kernel). The `join_authorised_via_
 *   users_server` rule checks that the event carries a signature of that server, and the
 *   third-party-invite rule that `signed` carries a signature and the invite event a public key;
 *   `CheckAuthOptions` hooks let a caller plug in real verification.
 * - No `m.room.join_rules` event (or one without `join_rule`) means `invite` (as Synapse, Ruma).
 * - Power levels: in v1–v9 every integer-valued property of a new power levels event must be a
 *   valid level (integer, integer string, or — v1–v5 — finite float), not only `users` as the spec
 *   states; such values would be unusable later (Synapse errors on them, Ruma rejects).
 *   Changes are compared between parsed levels ("50" equals 50) and only where an entry is present
 *   in the old or new content (no defaults filled in), as Synapse and Ruma do.
 * - The `join_authorised_via_users_server` signature rule applies to any membership, as the spec
 *   words it (Synapse checks it for joins only).
 */
export type { StateLookup, CheckAuthOptions, CheckAuthEventsOptions } from './types.ts';
export { checkAuth } from './check.ts';
export { authEventTypes, checkAuthEventsList } from './selection.ts';
export {
  userPowerLevel,
  creatorsOf,
  parseLevel,
  parsePowerLevelsStrict,
  parsePowerLevelsLenient,
  currentPowerLevels,
  namedLevel,
  requiredPowerLevel,
  DEFAULT_LEVELS,
  CREATOR_DEFAULT_LEVEL,
  TOP_LEVEL_KEYS,
  type ParsedPowerLevels,
  type TopLevelKey,
} from './power-levels.ts';
export { isValidUserId } from './ids.ts';
