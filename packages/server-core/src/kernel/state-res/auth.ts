/**
 * The one place state resolution reaches into the authorization rules (`src/kernel/auth/`).
 */
export { authEventTypes, checkAuth, checkAuthEventsList, userPowerLevel, type StateLookup } from '../auth/index.ts';
