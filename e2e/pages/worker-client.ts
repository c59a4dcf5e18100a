/** Matrix calls from a bench page with `fetch`, answered by the homeserver worker that controls the page. */

export async function mx(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
}

/** Register `user` through the dummy UIA stage; resolves with the access token. */
export async function registerUser(user: string, password = 'bench-password'): Promise<string> {
  const first = await mx('POST', '/_matrix/client/v3/register', undefined, { username: user, password });
  const done = await mx('POST', '/_matrix/client/v3/register', undefined, { username: user, password, auth: { type: 'm.login.dummy', session: first.json.session } });
  if (!done.json.access_token) throw new Error(`could not register ${user}: ${JSON.stringify(done.json)}`);
  return done.json.access_token as string;
}
