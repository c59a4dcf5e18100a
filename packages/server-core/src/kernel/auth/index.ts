/**
 * The authorization rules of the protocol kernel, room versions 1–12, as pure functions.
 *
 * - `checkAuth(event, lookup, rules)`: the spec's numbered rules against the state `lookup` gives
 *   (the event's auth events, the state before it, or the current state — the three checks of
 *   server-server API "Checks performed on receipt of a PDU" differ only in that state).
 * - `authEventTypes(event, rules)`: server-server API "Auth events selection".
 * - `checkAuthEventsList(event, authEvents, rules)`: the structural rules on the auth_events list.
 * - `userPowerLevel`, `creatorsOf` and the power level parsing, for the client API and state res.
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
export { isValidUserId, isValidServerName, domainOf } from './ids.ts';
