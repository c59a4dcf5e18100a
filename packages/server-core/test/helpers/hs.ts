/** Test helpers: a homeserver over the memory store, and a small HTTP client over its fetch handler. */
import { createMemoryHomeserver, type Homeserver } from '../../src/index.ts';

export interface Reply<T = any> {
  status: number;
  body: T;
}

export class TestClient {
  token?: string;
  userId?: string;
  deviceId?: string;
  constructor(readonly hs: Homeserver, readonly base = 'http://localhost') {}

  async request<T = any>(method: string, path: string, body?: unknown, opts: { token?: string | null; raw?: BodyInit; headers?: Record<string, string> } = {}): Promise<Reply<T>> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    const token = opts.token === null ? undefined : opts.token ?? this.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: BodyInit | undefined = opts.raw;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await this.hs.handle(new Request(this.base + path, { method, headers, body: payload }));
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed as T };
  }
  get<T = any>(path: string, opts?: { token?: string | null }) {
    return this.request<T>('GET', path, undefined, opts);
  }
  post<T = any>(path: string, body: unknown = {}, opts?: { token?: string | null }) {
    return this.request<T>('POST', path, body, opts);
  }
  put<T = any>(path: string, body: unknown = {}, opts?: { token?: string | null }) {
    return this.request<T>('PUT', path, body, opts);
  }
  delete<T = any>(path: string, body?: unknown) {
    return this.request<T>('DELETE', path, body);
  }

  /** Register (through the dummy UIA stage) and keep the token. */
  async register(username: string, password = 'correct horse'): Promise<this> {
    const r = await this.post('/_matrix/client/v3/register', { username, password, auth: { type: 'm.login.dummy' } });
    if (r.status !== 200) throw new Error(`register failed: ${JSON.stringify(r.body)}`);
    this.token = r.body.access_token;
    this.userId = r.body.user_id;
    this.deviceId = r.body.device_id;
    return this;
  }
}

export async function newHomeserver(): Promise<Homeserver> {
  return createMemoryHomeserver({ log: (e) => console.error('homeserver internal error:', e) });
}

export const enc = encodeURIComponent;
