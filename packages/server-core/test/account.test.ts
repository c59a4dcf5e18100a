import { describe, expect, it } from 'vitest';
import { newHomeserver, TestClient } from './helpers/hs.ts';

describe('discovery and accounts', () => {
  it('advertises versions and answers auth_metadata with 404 M_UNRECOGNIZED', async () => {
    const c = new TestClient(await newHomeserver());
    const v = await c.get('/_matrix/client/versions');
    expect(v.status).toBe(200);
    expect(v.body.versions).toContain('v1.11');
    const m = await c.get('/_matrix/client/v1/auth_metadata');
    expect(m).toMatchObject({ status: 404, body: { errcode: 'M_UNRECOGNIZED' } });
  });
  it('registers through the dummy UIA stage, logs in, whoami, logs out', async () => {
    const hs = await newHomeserver();
    const c = new TestClient(hs);
    const first = await c.post('/_matrix/client/v3/register', { username: 'alice', password: 'pw' });
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.dummy'] }]);
    expect(typeof first.body.session).toBe('string');
    expect(first.body.params).toEqual({});
    const done = await c.post('/_matrix/client/v3/register', { username: 'alice', password: 'pw', auth: { type: 'm.login.dummy', session: first.body.session } });
    expect(done.status).toBe(200);
    expect(done.body.user_id).toBe(`@alice:${hs.serverName}`);
    expect((await c.get('/_matrix/client/v3/register/available?username=alice')).body.errcode).toBe('M_USER_IN_USE');
    expect((await c.get('/_matrix/client/v3/login')).body.flows).toContainEqual({ type: 'm.login.password' });
    const bad = await c.post('/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'nope' });
    expect(bad).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    const login = await c.post('/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'pw' });
    expect(login.status).toBe(200);
    c.token = login.body.access_token;
    expect((await c.get('/_matrix/client/v3/account/whoami')).body).toMatchObject({ user_id: done.body.user_id, device_id: login.body.device_id });
    expect((await c.post('/_matrix/client/v3/logout')).status).toBe(200);
    expect((await c.get('/_matrix/client/v3/account/whoami')).body.errcode).toBe('M_UNKNOWN_TOKEN');
    expect((await c.get('/_matrix/client/v3/account/whoami', { token: null })).body.errcode).toBe('M_MISSING_TOKEN');
  });
  it('maps bad input to M_NOT_JSON / M_BAD_JSON, unknown paths to 404 and wrong methods to 405', async () => {
    const c = new TestClient(await newHomeserver());
    expect((await c.post('/_matrix/client/v3/login', '{oops')).body.errcode).toBe('M_NOT_JSON');
    expect((await c.post('/_matrix/client/v3/login', { type: 5 })).body.errcode).toBe('M_BAD_JSON');
    expect((await c.post('/_matrix/client/v3/login', '[1,2]')).body.errcode).toBe('M_BAD_JSON');
    expect(await c.get('/_matrix/client/v3/nothing/here')).toMatchObject({ status: 404, body: { errcode: 'M_UNRECOGNIZED' } });
    expect(await c.request('DELETE', '/_matrix/client/versions')).toMatchObject({ status: 405, body: { errcode: 'M_UNRECOGNIZED' } });
    expect((await c.get('/_matrix/client/r0/login')).status).toBe(200);
  });
});
