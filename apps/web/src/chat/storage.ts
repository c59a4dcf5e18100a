/**
 * What the chat client keeps, per homeserver base URL (`<p>` = `matrix-p2p.chat:<baseUrl>:`):
 * - localStorage `<p>accounts`: accounts created or used in this browser,
 *   `[{userId, username, password?, displayName?, deviceId?, accessToken?}]` — the generated password
 *   lets a session be re-established after a logout or an expired token; `deviceId`/`accessToken`
 *   are the account's current session (absent after logout);
 * - localStorage `<p>active`: the user id signed in most recently (what a new tab opens as);
 * - sessionStorage `<p>active`: the user id this tab is signed in as (so two tabs of one browser can
 *   be two different users, and each keeps its user across reloads);
 * - localStorage `<p>last-room:<userId>`: the room that user had open.
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
  deviceId?: string;
  accessToken?: string;
}

function get(kind: 'localStorage' | 'sessionStorage'): Storage | null {
  try {
    return globalThis[kind] ?? null;
  } catch {
    return null; // storage disabled (e.g. some privacy modes)
  }
}

export class ChatStorage {
  readonly prefix: string;
  constructor(baseUrl: string) {
    this.prefix = `matrix-p2p.chat:${baseUrl.replace(/\/+$/, '')}:`;
  }

  private read<T>(key: string, kind: 'localStorage' | 'sessionStorage' = 'localStorage'): T | null {
    const raw = get(kind)?.getItem(this.prefix + key);
    if (!raw) return null;
    try {
      return JSON.parse(raw) as T;
    } catch {
      return null;
    }
  }
  private write(key: string, value: unknown, kind: 'localStorage' | 'sessionStorage' = 'localStorage'): void {
    const s = get(kind);
    if (!s) return;
    try {
      if (value === null || value === undefined) s.removeItem(this.prefix + key);
      else s.setItem(this.prefix + key, JSON.stringify(value));
    } catch (e) {
      console.warn('chat: could not save to storage', e);
    }
  }

  get accounts(): KnownAccount[] {
    const a = this.read<KnownAccount[]>('accounts');
    return Array.isArray(a) ? a.filter((x) => x && typeof x.userId === 'string' && typeof x.username === 'string') : [];
  }
  account(userId: string): KnownAccount | undefined {
    return this.accounts.find((a) => a.userId === userId);
  }
  /** Add or update an account: fields given (not undefined) replace the stored ones. */
  rememberAccount(acct: KnownAccount): void {
    const list = this.accounts;
    const i = list.findIndex((a) => a.userId === acct.userId);
    const defined = Object.fromEntries(Object.entries(acct).filter(([, v]) => v !== undefined)) as Partial<KnownAccount>;
    if (i >= 0) list[i] = { ...list[i]!, ...defined };
    else list.push(acct);
    this.write('accounts', list);
  }
  forgetAccount(userId: string): void {
    this.write('accounts', this.accounts.filter((a) => a.userId !== userId));
    this.write(`last-room:${userId}`, null);
    if (this.read<string>('active') === userId) this.write('active', null);
  }

  /** The session of an account, if it has one. */
  sessionOf(userId: string): StoredSession | null {
    const a = this.account(userId);
    return a?.accessToken && a.deviceId ? { userId: a.userId, deviceId: a.deviceId, accessToken: a.accessToken } : null;
  }

  /** The session this tab should use: this tab's user, else the browser's most recent one. */
  get activeSession(): StoredSession | null {
    const userId = this.read<string>('active', 'sessionStorage') ?? this.read<string>('active');
    return userId ? this.sessionOf(userId) : null;
  }

  /** Store a new session for its account and make it this tab's (and new tabs') active one. */
  saveSession(s: StoredSession, extra: Omit<KnownAccount, 'userId' | 'deviceId' | 'accessToken' | 'username'> & { username?: string } = {}): void {
    const known = this.account(s.userId);
    this.rememberAccount({
      ...extra,
      username: extra.username ?? known?.username ?? s.userId.replace(/^@/, '').replace(/:.*$/, ''),
      userId: s.userId,
      deviceId: s.deviceId,
      accessToken: s.accessToken,
    });
    this.activate(s.userId);
  }

  activate(userId: string): void {
    this.write('active', userId, 'sessionStorage');
    this.write('active', userId);
  }

  /** This tab signs out of its account view (the account's session stays stored). */
  deactivate(): void {
    this.write('active', null, 'sessionStorage');
  }

  /** Forget an account's session (after logout, or when the server refused its token). */
  dropSession(userId: string): void {
    const list = this.accounts;
    const a = list.find((x) => x.userId === userId);
    if (a) {
      delete a.accessToken;
      delete a.deviceId;
      this.write('accounts', list);
    }
    if (this.read<string>('active', 'sessionStorage') === userId) this.write('active', null, 'sessionStorage');
    if (this.read<string>('active') === userId) this.write('active', null);
  }

  lastRoom(userId: string): string | null {
    return this.read<string>(`last-room:${userId}`);
  }
  setLastRoom(userId: string, roomId: string | null): void {
    this.write(`last-room:${userId}`, roomId);
  }
}
