/**
 * What the chat client keeps in localStorage, per homeserver base URL:
 * - `matrix-p2p.chat:<baseUrl>:session`  the signed-in session `{userId, deviceId, accessToken}`;
 * - `matrix-p2p.chat:<baseUrl>:accounts` accounts created or used on this device
 *   `[{userId, username, password?, displayName?}]` (the generated password lets the session be
 *   re-established after a logout or an expired token);
 * - `matrix-p2p.chat:<baseUrl>:last-room` the room that was open.
 */

export interface StoredSession {
  userId: string;
  deviceId: string;
  accessToken: string;
}

export interface KnownAccount {
  userId: string;
  username: string;
  password?: string;
  displayName?: string;
}

function storage(): Storage | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage disabled (e.g. some privacy modes)
  }
}

export class ChatStorage {
  readonly prefix: string;
  constructor(baseUrl: string) {
    this.prefix = `matrix-p2p.chat:${baseUrl.replace(/\/+$/, '')}:`;
  }

  private read<T>(key: string): T | null {
    const raw = storage()?.getItem(this.prefix + key);
    if (!raw) return null;
    try {
      return JSON.parse(raw) as T;
    } catch {
      return null;
    }
  }
  private write(key: string, value: unknown): void {
    const s = storage();
    if (!s) return;
    if (value === null || value === undefined) s.removeItem(this.prefix + key);
    else s.setItem(this.prefix + key, JSON.stringify(value));
  }

  get session(): StoredSession | null {
    const s = this.read<StoredSession>('session');
    return s && typeof s.accessToken === 'string' && typeof s.userId === 'string' && typeof s.deviceId === 'string' ? s : null;
  }
  set session(value: StoredSession | null) {
    this.write('session', value);
  }

  get accounts(): KnownAccount[] {
    const a = this.read<KnownAccount[]>('accounts');
    return Array.isArray(a) ? a.filter((x) => x && typeof x.userId === 'string' && typeof x.username === 'string') : [];
  }
  /** Add or update an account (fields given replace the stored ones). */
  rememberAccount(acct: KnownAccount): void {
    const list = this.accounts;
    const i = list.findIndex((a) => a.userId === acct.userId);
    if (i >= 0) list[i] = { ...list[i], ...Object.fromEntries(Object.entries(acct).filter(([, v]) => v !== undefined)) } as KnownAccount;
    else list.push(acct);
    this.write('accounts', list);
  }
  forgetAccount(userId: string): void {
    this.write('accounts', this.accounts.filter((a) => a.userId !== userId));
  }
  account(userId: string): KnownAccount | undefined {
    return this.accounts.find((a) => a.userId === userId);
  }

  get lastRoom(): string | null {
    return this.read<string>('last-room');
  }
  set lastRoom(roomId: string | null) {
    this.write('last-room', roomId);
  }
}
