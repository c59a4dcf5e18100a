/**
 * The command line, as a user runs it: `npm run serve -- --port 0` from the repository root, over
 * real HTTP. The ready line, discovery, CORS preflight, an unknown endpoint, a request with a body and
 * a query, and a clean stop on SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupGone, READY, ready, serve, waitFor, type Served } from './serve-process.ts';

describe('npm run serve', { timeout: 60_000 }, () => {
  let served: Served;
  let base: string;
  let serverName: string;

  beforeAll(async () => {
    served = serve(['--port', '0']);
    const m = await ready(served);
    serverName = m[1];
    base = m[2];
    expect(Number(m[3])).toBeGreaterThan(0);
  }, 60_000);

  afterAll(() => {
    const pid = served?.child.pid;
    if (pid && !groupGone(pid)) process.kill(-pid, 'SIGKILL');
  });

  it('prints one ready line with the server name (hex of the ed25519 key) and the URL', () => {
    expect(serverName).toMatch(/^[0-9a-f]{64}$/);
    expect(served.stdout().match(new RegExp(READY.source, 'gm'))).toHaveLength(1);
  });

  it('answers /_matrix/client/versions with CORS headers', async () => {
    const r = await fetch(`${base}/_matrix/client/versions`, { headers: { origin: 'http://example.test' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('application/json');
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    const body = (await r.json()) as { versions: string[] };
    expect(body.versions).toContain('v1.11');
  });

  it('answers a CORS preflight', async () => {
    const r = await fetch(`${base}/_matrix/client/v3/login`, {
      method: 'OPTIONS',
      headers: { origin: 'http://example.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(r.status).toBeGreaterThanOrEqual(200);
    expect(r.status).toBeLessThan(300);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    const methods = (r.headers.get('access-control-allow-methods') ?? '').split(/\s*,\s*/);
    for (const m of ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS']) expect(methods).toContain(m);
    const allowed = (r.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    for (const h of ['authorization', 'content-type', 'x-requested-with']) expect(allowed).toContain(h);
  });

  it('answers an unknown endpoint with 404 M_UNRECOGNIZED (and CORS)', async () => {
    const r = await fetch(`${base}/_matrix/client/v3/no/such/endpoint?x=1`);
    expect(r.status).toBe(404);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(((await r.json()) as { errcode: string }).errcode).toBe('M_UNRECOGNIZED');
  });

  it('passes request bodies, queries and the Authorization header through', async () => {
    const reg = await fetch(`${base}/_matrix/client/v3/register?kind=user`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'serve-test', password: 'pw', auth: { type: 'm.login.dummy' } }),
    });
    expect(reg.status).toBe(200);
    const { access_token, user_id } = (await reg.json()) as { access_token: string; user_id: string };
    expect(user_id).toBe(`@serve-test:${serverName}`);
    const who = await fetch(`${base}/_matrix/client/v3/account/whoami`, { headers: { authorization: `Bearer ${access_token}` } });
    expect(who.status).toBe(200);
    expect(((await who.json()) as { user_id: string }).user_id).toBe(user_id);
    // The query reaches the core: ?kind=guest is refused.
    const guest = await fetch(`${base}/_matrix/client/v3/register?kind=guest`, { method: 'POST', body: '{}' });
    expect(guest.status).toBe(403);
  });

  it('stops cleanly on SIGTERM', async () => {
    const pid = served.child.pid!;
    process.kill(-pid, 'SIGTERM');
    await served.exited;
    await waitFor('every process of the group to exit', () => (groupGone(pid) ? true : undefined), 10_000);
    expect(served.stderr()).toContain('SIGTERM, stopping');
    expect(served.stdout()).toContain('matrix-p2p node host stopped');
    expect(served.stderr()).not.toMatch(/internal error|error while stopping|Unhandled|ERR_/);
    await expect(fetch(`${base}/_matrix/client/versions`)).rejects.toThrow();
  });
});

describe('npm run serve: arguments', { timeout: 60_000 }, () => {
  it('--help prints usage and exits 0', async () => {
    const s = serve(['--help']);
    expect((await s.exited).code).toBe(0);
    expect(s.stdout()).toContain('--peer <url>');
  });

  it('a bad port exits 2 with a message', async () => {
    const s = serve(['--port', 'eighty']);
    expect((await s.exited).code).toBe(2);
    expect(s.stderr()).toContain('not a port number');
  });

  it('--peer names a federation peer; one that is down is retried', async () => {
    const s = serve(['--port', '0', '--peer', 'http://127.0.0.1:1']);
    try {
      await ready(s);
      // The first attempt runs in the background: its report may come after the ready line.
      await waitFor('the peer to be reported down', () => (s.stderr().includes('peer http://127.0.0.1:1 not reachable yet') ? true : undefined), 10_000);
      process.kill(-s.child.pid!, 'SIGINT');
      await s.exited;
      await waitFor('the group to exit', () => (groupGone(s.child.pid!) ? true : undefined), 10_000);
      expect(s.stdout()).toContain('matrix-p2p node host stopped');
    } finally {
      if (!groupGone(s.child.pid!)) process.kill(-s.child.pid!, 'SIGKILL');
    }
  });
});
