/**
 * Accounts and sessions on the homeserver at `baseUrl`: register with a generated username and
 * password, log in, resume a stored session, log out. No crypto; the SDK's in-memory store.
 */
import { createClient, MatrixError, MemoryStore, type MatrixClient } from 'matrix-js-sdk';
import type { Logger } from 'matrix-js-sdk/lib/logger.js';
import { logger as sdkGlobalLogger } from 'matrix-js-sdk/lib/logger.js';
import { generatePassword, usernameFromDisplayName } from './format.ts';
import type { ChatStorage, StoredSession } from './storage.ts';

const DEVICE_NAME = 'matrix-p2p web chat';


/**
 * Lines the SDK logs with any homeserver that say nothing useful here: its MatrixRTC manager sees a
 * new room's state before the room is stored; it adds its own unstable push rules.
 */
const HARMLESS = [/Got room state event for unknown room/, /(Adding|Missing) default global (override|underride) push rule/];

type LoglevelLogger = {
  methodFactory?: (method: string, level: number, name: string | symbol) => (...args: unknown[]) => void;
  rebuild?: () => void;
};

/**
 * The SDK's root logger is a loglevel logger whose children copy its `methodFactory`: replace it with
 * one that keeps warnings and errors (less the harmless ones) and drops the per-sync debug chatter.
 */
function quietRootLogger(): void {
  const root = sdkGlobalLogger as unknown as LoglevelLogger;
  const original = root.methodFactory;
  if (!original || !root.rebuild) return;
  root.methodFactory = (method, level, name) => {
    if (method !== 'warn' && method !== 'error') return () => {};
    const raw = original(method, level, name);
    return function (this: unknown, ...args: unknown[]) {
      if (!args.some((a) => typeof a === 'string' && HARMLESS.some((r) => r.test(a)))) raw.apply(this, args);
    };
  };
  root.rebuild();
}
quietRootLogger();

function quietLogger(prefix = '[matrix-js-sdk]'): Logger {
  const pass = (args: unknown[]) => !args.some((a) => typeof a === 'string' && HARMLESS.some((r) => r.test(a)));
  return {
    trace() {},
    debug() {},
    info() {},
    warn: (...args: unknown[]) => void (pass(args) && console.warn(prefix, ...args)),
    error: (...args: unknown[]) => void (pass(args) && console.error(prefix, ...args)),
    getChild: (ns: string) => quietLogger(`${prefix} ${ns}`),
  };
}

/** A client for requests before sign-in (register, login). */
function anonymousClient(baseUrl: string): MatrixClient {
  return createClient({ baseUrl, logger: quietLogger() });
}

/** The signed-in client for a session. */
export function sessionClient(baseUrl: string, s: StoredSession): MatrixClient {
  return createClient({
    baseUrl,
    userId: s.userId,
    deviceId: s.deviceId,
    accessToken: s.accessToken,
    store: new MemoryStore(),
    timelineSupport: true,
    logger: quietLogger(),
  });
}

/** A human message for an error from the SDK or the network. */
export function errorMessage(e: unknown): string {
  if (e instanceof MatrixError) {
    switch (e.errcode) {
      case 'M_FORBIDDEN':
        return e.data?.error && !/^Invalid (password|username)/i.test(e.data.error) ? e.data.error : 'Wrong username or password.';
      case 'M_USER_IN_USE':
        return 'That username is taken.';
      case 'M_INVALID_USERNAME':
        return 'Usernames may only contain a–z, 0–9 and . _ = - / +';
      case 'M_NOT_FOUND':
        return e.data?.error || 'Not found.';
      case 'M_LIMIT_EXCEEDED':
        return 'Too many requests: try again in a moment.';
      default:
        return e.data?.error || e.message || String(e.errcode);
    }
  }
  if (e instanceof Error) {
    if (e.name === 'ConnectionError' || /fetch|network/i.test(e.message)) return 'Cannot reach the homeserver.';
    return e.message;
  }
  return String(e);
}

export function isUnknownToken(e: unknown): boolean {
  return e instanceof MatrixError && (e.errcode === 'M_UNKNOWN_TOKEN' || e.httpStatus === 401);
}

/** Create an account named after `displayName`; retries with another suffix if the name is taken. */
export async function registerAccount(baseUrl: string, store: ChatStorage, displayName: string): Promise<StoredSession> {
  const client = anonymousClient(baseUrl);
  const password = generatePassword();
  let lastError: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    const username = usernameFromDisplayName(displayName);
    try {
      const res = await client.registerRequest({
        username,
        password,
        initial_device_display_name: DEVICE_NAME,
        auth: { type: 'm.login.dummy' },
      } as Parameters<MatrixClient['registerRequest']>[0]);
      if (!res.access_token || !res.device_id) throw new Error('The homeserver did not sign the new account in.');
      const session: StoredSession = { userId: res.user_id, deviceId: res.device_id, accessToken: res.access_token };
      store.saveSession(session, { username, password, displayName });
      // Set the display name (best effort: the account works without it).
      try {
        await sessionClient(baseUrl, session).setDisplayName(displayName);
      } catch (e) {
        console.warn('could not set the display name', e);
      }
      return session;
    } catch (e) {
      lastError = e;
      if (e instanceof MatrixError && e.errcode === 'M_USER_IN_USE') continue;
      throw e;
    }
  }
  throw lastError;
}

/** Log in with a username (or full user id) and password. */
export async function login(baseUrl: string, store: ChatStorage, username: string, password: string): Promise<StoredSession> {
  const client = anonymousClient(baseUrl);
  const user = username.trim();
  const res = await client.loginRequest({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user },
    password,
    initial_device_display_name: DEVICE_NAME,
  });
  const session: StoredSession = { userId: res.user_id, deviceId: res.device_id, accessToken: res.access_token };
  store.saveSession(session, { password });
  return session;
}

/** Whether a session's token still works (network errors are thrown). */
async function tokenWorks(baseUrl: string, s: StoredSession): Promise<boolean> {
  try {
    const who = await sessionClient(baseUrl, s).whoami();
    return who.user_id === s.userId;
  } catch (e) {
    if (isUnknownToken(e)) return false;
    throw e;
  }
}

/**
 * Sign in as a remembered account: its stored session if the token still works, else its stored
 * password. Returns null if neither works (the account then needs its password typed).
 */
export async function continueAs(baseUrl: string, store: ChatStorage, userId: string): Promise<StoredSession | null> {
  const s = store.sessionOf(userId);
  if (s) {
    if (await tokenWorks(baseUrl, s)) {
      store.activate(userId);
      return s;
    }
    store.dropSession(userId);
  }
  const acct = store.account(userId);
  if (acct?.password) {
    try {
      return await login(baseUrl, store, acct.username, acct.password);
    } catch (e) {
      if (!(e instanceof MatrixError)) throw e;
    }
  }
  return null;
}

/** The session this tab should resume (see ChatStorage.activeSession), checked; null → sign-in screen. */
export async function resumeSession(baseUrl: string, store: ChatStorage): Promise<StoredSession | null> {
  const s = store.activeSession;
  return s ? continueAs(baseUrl, store, s.userId) : null;
}

/** Log out (best effort on the server) and forget the session; the account stays in the known list. */
export async function logout(client: MatrixClient, store: ChatStorage): Promise<void> {
  const userId = client.getUserId();
  client.stopClient();
  try {
    await client.logout(true);
  } catch (e) {
    console.warn('logout request failed', e);
  }
  if (userId) store.dropSession(userId);
}
