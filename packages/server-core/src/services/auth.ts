/**
 * Accounts, devices, access tokens, passwords and User-Interactive Authentication (spec: client-server
 * API, "Client Authentication", "User-Interactive Authentication API", "Account registration and management").
 */
import { MatrixError, forbidden } from '../api/errors.ts';
import type { Requester } from '../api/endpoint.ts';
import { decodeBase64, encodeBase64 } from '../kernel/base64.ts';
import type { Homeserver } from '../homeserver.ts';
import type { AccountRecord } from '../store/records.ts';
import { randomDeviceId, randomId } from '../util/ids.ts';

const PBKDF2_ITERATIONS = 100_000;

async function pbkdf2(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveBits']);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: salt as Uint8Array<ArrayBuffer>, iterations }, key, 256));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return `pbkdf2$${PBKDF2_ITERATIONS}$${encodeBase64(salt)}$${encodeBase64(await pbkdf2(password, salt, PBKDF2_ITERATIONS))}`;
}

export async function checkPassword(password: string, stored: string | undefined): Promise<boolean> {
  if (!stored) return false;
  const [alg, iter, salt, hash] = stored.split('$');
  if (alg !== 'pbkdf2') return false;
  const got = encodeBase64(await pbkdf2(password, decodeBase64(salt), Number(iter)));
  return got === hash;
}

interface UiaSession {
  completed: Set<string>;
  expires: number;
  /** What the session was started for (a session may not be reused for another operation). */
  purpose: string;
}

export interface LoginResult {
  user_id: string;
  access_token: string;
  device_id: string;
  home_server: string;
}

export class AuthService {
  /** UIA sessions are short-lived: kept in memory (a restart makes the client start the flow again). */
  private uia = new Map<string, UiaSession>();
  private tokenCache = new Map<string, Requester>();

  constructor(private readonly hs: Homeserver) {}

  async resolveToken(token: string): Promise<Requester | undefined> {
    const cached = this.tokenCache.get(token);
    if (cached) return cached;
    const rec = await this.hs.store.accounts.token(token);
    if (!rec) return undefined;
    const who = { userId: rec.userId, deviceId: rec.deviceId, token };
    if (this.tokenCache.size > 1000) this.tokenCache.clear();
    this.tokenCache.set(token, who);
    return who;
  }

  /**
   * User-Interactive Authentication: returns when the flow is complete, else throws the 401 that tells
   * the client what to do. `flows` are the stage lists accepted.
   */
  async requireUia(auth: unknown, purpose: string, flows: string[][], check: (stage: string, auth: Record<string, unknown>) => Promise<boolean>): Promise<void> {
    const now = this.hs.clock();
    for (const [id, s] of this.uia) if (s.expires < now) this.uia.delete(id);
    const a = (auth && typeof auth === 'object' ? auth : undefined) as Record<string, unknown> | undefined;
    let sessionId = typeof a?.session === 'string' ? a.session : undefined;
    let session = sessionId ? this.uia.get(sessionId) : undefined;
    if (sessionId && session && session.purpose !== purpose) throw forbidden('UIA session belongs to another request');
    if (!session) {
      sessionId = randomId(12);
      session = { completed: new Set(), expires: now + 10 * 60_000, purpose };
      this.uia.set(sessionId, session);
    }
    let error: MatrixError | undefined;
    if (a && typeof a.type === 'string') {
      const stage = a.type;
      if (!flows.some((f) => f.includes(stage))) error = new MatrixError(401, 'M_UNRECOGNIZED', `Unknown auth stage ${stage}`);
      else if (await check(stage, a)) session.completed.add(stage);
      else error = new MatrixError(401, 'M_FORBIDDEN', 'Invalid authentication');
    }
    if (flows.some((f) => f.every((s) => session!.completed.has(s)))) {
      this.uia.delete(sessionId!);
      return;
    }
    throw new MatrixError(401, error?.errcode ?? 'M_FORBIDDEN', error?.message ?? 'Additional authentication required', {
      ...(error ? {} : {}),
      flows: flows.map((stages) => ({ stages })),
      params: {},
      session: sessionId,
      completed: [...session.completed],
    });
  }

  /** Create an account (and optionally a device + token). */
  async register(localpart: string, password: string | undefined, opts: { deviceId?: string; displayName?: string; initialDeviceDisplayName?: string; inhibitLogin?: boolean }): Promise<{ user_id: string; access_token?: string; device_id?: string; home_server: string }> {
    const userId = this.hs.userId(localpart);
    const passwordHash = password !== undefined ? await hashPassword(password) : undefined;
    return this.hs.writeLock.run(async () => {
      if (await this.hs.store.accounts.get(userId)) throw new MatrixError(400, 'M_USER_IN_USE', 'User ID already taken');
      const acct: AccountRecord = { userId, passwordHash, createdTs: this.hs.clock(), displayname: opts.displayName ?? localpart };
      const b = this.hs.store.batch();
      b.put('accounts', acct);
      b.put('push_rules', { userId, rules: undefined });
      let login: LoginResult | undefined;
      if (!opts.inhibitLogin) login = this.stageLogin(b, userId, opts.deviceId, opts.initialDeviceDisplayName);
      await b.commit();
      return login ?? { user_id: userId, home_server: this.hs.serverName };
    });
  }

  /** Stage a device + access token in a batch. */
  stageLogin(b: ReturnType<Homeserver['store']['batch']>, userId: string, deviceId: string | undefined, displayName?: string): LoginResult {
    const device = deviceId ?? randomDeviceId();
    const token = `mp2p_${randomId(24)}`;
    b.put('devices', { userId, deviceId: device, displayName, lastSeenTs: this.hs.clock() });
    b.put('access_tokens', { token, userId, deviceId: device });
    b.put('device_list_changes', { stream: b.nextStream(), userId });
    return { user_id: userId, access_token: token, device_id: device, home_server: this.hs.serverName };
  }

  async login(userId: string, password: string, deviceId?: string, displayName?: string): Promise<LoginResult> {
    const acct = await this.hs.store.accounts.get(userId);
    if (!acct || acct.deactivated || !(await checkPassword(password, acct.passwordHash))) throw forbidden('Invalid username or password');
    return this.hs.writeLock.run(async () => {
      const b = this.hs.store.batch();
      // Logging in with an existing device id replaces its tokens (spec: "POST /login", device_id).
      if (deviceId) for (const t of await this.hs.store.accounts.tokensOfDevice(userId, deviceId)) b.delete('access_tokens', t.token);
      const existing = deviceId ? await this.hs.store.accounts.device(userId, deviceId) : undefined;
      const r = this.stageLogin(b, userId, deviceId, displayName ?? existing?.displayName);
      await b.commit();
      this.hs.notifier.notify(this.hs.store.stream);
      return r;
    });
  }

  /** Remove devices: their tokens, keys and to-device inboxes (spec: "Device management"). */
  async deleteDevices(userId: string, deviceIds: string[]): Promise<void> {
    await this.hs.writeLock.run(async () => {
      const b = this.hs.store.batch();
      for (const d of deviceIds) {
        for (const t of await this.hs.store.accounts.tokensOfDevice(userId, d)) {
          b.delete('access_tokens', t.token);
          this.tokenCache.delete(t.token);
        }
        b.delete('devices', [userId, d]);
        b.delete('device_keys', [userId, d]);
        b.add({ op: 'deleteRange', store: 'one_time_keys', range: { lower: [userId, d], upper: [userId, d, []] } });
        b.add({ op: 'deleteRange', store: 'fallback_keys', range: { lower: [userId, d], upper: [userId, d, []] } });
        b.add({ op: 'deleteRange', store: 'to_device', range: { lower: [userId, d], upper: [userId, d, []] } });
      }
      b.put('device_list_changes', { stream: b.nextStream(), userId });
      this.hs.notifier.notify(await b.commit());
    });
  }

  /** Log out one token (its device goes too, as the spec says for /logout). */
  async logout(who: Requester): Promise<void> {
    this.tokenCache.delete(who.token);
    await this.deleteDevices(who.userId, [who.deviceId]);
  }

  async logoutAll(userId: string): Promise<void> {
    const devices = await this.hs.store.accounts.devices(userId);
    this.tokenCache.clear();
    await this.deleteDevices(userId, devices.map((d) => d.deviceId));
  }

  async setPassword(userId: string, newPassword: string, logoutDevices: boolean, keepDevice?: string): Promise<void> {
    const hash = await hashPassword(newPassword);
    await this.hs.writeLock.run(async () => {
      const acct = await this.hs.store.accounts.get(userId);
      if (!acct) throw forbidden('No such account');
      await this.hs.store.batch().put('accounts', { ...acct, passwordHash: hash }).commit();
    });
    if (logoutDevices) {
      const others = (await this.hs.store.accounts.devices(userId)).map((d) => d.deviceId).filter((d) => d !== keepDevice);
      this.tokenCache.clear();
      if (others.length) await this.deleteDevices(userId, others);
    }
  }
}
