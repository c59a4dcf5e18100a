/**
 * End-to-end encryption across in-process nodes (spec: server-server API, "End-to-End Encryption",
 * "Device Management"): a client's keys/query and keys/claim for remote users are proxied to their
 * servers; unreachable servers are reported in `failures` (or answered from the cached device list);
 * the federation endpoints refuse unauthenticated requests and bad input.
 */
import { describe, expect, it } from 'vitest';
import { remoteDeviceCache } from '../../src/services/keys.ts';
import { signJson, signingKeyFromSeed } from '../../src/kernel/signing.ts';
import { encodeBase64 } from '../../src/kernel/base64.ts';
import type { JsonObject, JsonValue } from '../../src/kernel/types.ts';
import { enc, TestClient } from '../helpers/hs.ts';
import { federationStatus, nodes, waitFor } from './helpers.ts';

const V3 = '/_matrix/client/v3';
const F = '/_matrix/federation/v1';
async function signedDeviceKeys(c: TestClient, seed: number): Promise<JsonObject> {
  const k = await signingKeyFromSeed(new Uint8Array(32).fill(seed), `ed25519:${c.deviceId}`);
  return signJson({
    user_id: c.userId!, device_id: c.deviceId!, algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
    keys: { [`curve25519:${c.deviceId}`]: `curve-${seed}`, [`ed25519:${c.deviceId}`]: encodeBase64(k.publicKey) },
  }, c.userId!, k);
}

async function masterKey(userId: string, seed: number): Promise<JsonObject> {
  const k = await signingKeyFromSeed(new Uint8Array(32).fill(seed), 'ed25519:m');
  const pub = encodeBase64(k.publicKey);
  return { user_id: userId, usage: ['master'], keys: { [`ed25519:${pub}`]: pub } };
}

/** alice on A with device keys, OTKs, a fallback key and a master key; bob on B. */
async function setup(n = 2) {
  const { net, hss, errors } = await nodes(n);
  const [a, b] = hss;
  const alice = await new TestClient(a).register('alice');
  const bob = await new TestClient(b).register('bob');
  const up = await alice.post(`${V3}/keys/upload`, {
    device_keys: await signedDeviceKeys(alice, 1),
    one_time_keys: { 'signed_curve25519:K1': { key: 'otk-1' }, 'signed_curve25519:K2': { key: 'otk-2' } },
    fallback_keys: { 'signed_curve25519:FB': { key: 'fallback', fallback: true } },
  });
  expect(up.status, JSON.stringify(up.body)).toBe(200);
  const mk = await masterKey(alice.userId!, 7);
  expect((await alice.post(`${V3}/keys/device_signing/upload`, { master_key: mk, auth: {} })).status).toBe(200);
  return { net, hss, a, b, alice, bob, mk, errors };
}

describe('keys/query and keys/claim for remote users', () => {
  it("bob on B gets alice's device keys and master key from A", async () => {
    const { alice, bob, mk, errors } = await setup();
    await alice.put(`${V3}/devices/${alice.deviceId}`, { display_name: 'Laptop' });
    const q = await bob.post(`${V3}/keys/query`, { device_keys: { [alice.userId!]: [] } });
    expect(q.status, JSON.stringify(q.body)).toBe(200);
    const dev = q.body.device_keys[alice.userId!][alice.deviceId!];
    expect(dev.keys[`curve25519:${alice.deviceId}`]).toBe('curve-1');
    expect(dev.unsigned).toEqual({ device_display_name: 'Laptop' });
    expect(q.body.master_keys[alice.userId!]).toEqual(mk);
    expect(q.body.failures).toEqual({});
    // Asking for one device id that does not exist: no devices, no failure.
    const q2 = await bob.post(`${V3}/keys/query`, { device_keys: { [alice.userId!]: ['NOPE'] } });
    expect(q2.body.device_keys[alice.userId!]).toEqual({});
    expect(errors).toEqual([]);
  });

  it('claims one-time keys once each, then the fallback key', async () => {
    const { a, alice, bob } = await setup();
    const claim = () => bob.post(`${V3}/keys/claim`, { one_time_keys: { [alice.userId!]: { [alice.deviceId!]: 'signed_curve25519' } } });
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await claim();
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.failures).toEqual({});
      const keys = r.body.one_time_keys[alice.userId!][alice.deviceId!];
      seen.push(...Object.keys(keys));
    }
    expect(seen).toEqual(['signed_curve25519:K1', 'signed_curve25519:K2', 'signed_curve25519:FB']);
    expect(await a.store.keys.oneTimeKeyCounts(alice.userId!, alice.deviceId!)).toEqual({});
    // A's own sync sees the fallback key used.
    expect((await alice.get(`${V3}/sync?timeout=0`)).body.device_unused_fallback_key_types).toEqual([]);
  });

  it('groups users per server: several servers in one query, unreachable ones in failures', async () => {
    const { net, hss: [a, b, c], alice, bob } = await setup(3);
    const carol = await new TestClient(c).register('carol');
    await carol.post(`${V3}/keys/upload`, { device_keys: await signedDeviceKeys(carol, 5), one_time_keys: { 'signed_curve25519:C1': { key: 'c1' } } });
    const q = await bob.post(`${V3}/keys/query`, { device_keys: { [alice.userId!]: [], [carol.userId!]: [], [bob.userId!]: [] } });
    expect(Object.keys(q.body.device_keys).sort()).toEqual([alice.userId, bob.userId, carol.userId].sort());
    expect(Object.keys(q.body.device_keys[carol.userId!])).toEqual([carol.deviceId]);

    net.setOnline(c.serverName, false);
    const q2 = await bob.post(`${V3}/keys/query`, { device_keys: { [alice.userId!]: [], [carol.userId!]: [] }, timeout: 1000 });
    expect(q2.status).toBe(200);
    expect(Object.keys(q2.body.failures)).toEqual([c.serverName]);
    expect(q2.body.device_keys[alice.userId!][alice.deviceId!]).toBeDefined();
    const cl = await bob.post(`${V3}/keys/claim`, { one_time_keys: { [alice.userId!]: { [alice.deviceId!]: 'signed_curve25519' }, [carol.userId!]: { [carol.deviceId!]: 'signed_curve25519' } } });
    expect(cl.status).toBe(200);
    expect(Object.keys(cl.body.failures)).toEqual([c.serverName]);
    expect(Object.keys(cl.body.one_time_keys)).toEqual([alice.userId]);
    expect(a.serverName).not.toBe(b.serverName);
  });

  it('answers from the cached device list of a user sharing a room when their server is offline', async () => {
    const { net, a, b, alice, bob } = await setup();
    const roomId = (await alice.post(`${V3}/createRoom`, { preset: 'public_chat' })).body.room_id as string;
    expect((await bob.post(`${V3}/join/${enc(roomId)}?via=${a.serverName}`)).status).toBe(200);
    await waitFor('A sees bob', async () => (await a.store.rooms.membership(roomId, bob.userId!))?.membership === 'join');
    // A change of alice's devices reaches B, which then fetches her whole list.
    await alice.put(`${V3}/devices/${alice.deviceId}`, { display_name: 'Laptop' });
    await alice.post(`${V3}/keys/upload`, { one_time_keys: { 'signed_curve25519:K3': { key: 'otk-3' } } });
    await waitFor('B caches alice', async () => (await remoteDeviceCache(b, alice.userId!))?.devices[alice.deviceId!]);
    net.setOnline(a.serverName, false);
    const q = await bob.post(`${V3}/keys/query`, { device_keys: { [alice.userId!]: [] }, timeout: 1000 });
    expect(q.status).toBe(200);
    expect(q.body.failures).toEqual({});
    expect(q.body.device_keys[alice.userId!][alice.deviceId!].keys[`curve25519:${alice.deviceId}`]).toBe('curve-1');
    expect(q.body.device_keys[alice.userId!][alice.deviceId!].unsigned).toEqual({ device_display_name: 'Laptop' });
    expect(q.body.master_keys[alice.userId!]).toBeDefined();
  });
});

describe('cross-signing other servers\' users', () => {
  it("bob signs alice's master key with his user-signing key; the signature is his, kept on B", async () => {
    const { a, alice, bob, mk } = await setup();
    const key = async (seed: number) => {
      const k = await signingKeyFromSeed(new Uint8Array(32).fill(seed), 'ed25519:x');
      return { ...k, keyId: `ed25519:${encodeBase64(k.publicKey)}` };
    };
    const [bm, bs, bu] = [await key(20), await key(21), await key(22)];
    const csk = (k: typeof bm, usage: string): JsonObject => ({ user_id: bob.userId!, usage: [usage], keys: { [k.keyId]: encodeBase64(k.publicKey) } });
    const up = await bob.post(`${V3}/keys/device_signing/upload`, {
      master_key: csk(bm, 'master'),
      self_signing_key: await signJson(csk(bs, 'self_signing'), bob.userId!, bm),
      user_signing_key: await signJson(csk(bu, 'user_signing'), bob.userId!, bm),
      auth: {},
    });
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    const alicePub = Object.values(mk.keys as Record<string, string>)[0];
    const signed = await signJson({ ...mk }, bob.userId!, bu);
    const r = await bob.post(`${V3}/keys/signatures/upload`, { [alice.userId!]: { [alicePub]: signed } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.failures).toEqual({});
    const q = await bob.post(`${V3}/keys/query`, { device_keys: { [alice.userId!]: [] } });
    expect(Object.keys(q.body.master_keys[alice.userId!].signatures[bob.userId!])).toEqual([bu.keyId]);
    // A bad signature, or a key alice does not have, is refused per key.
    const bad = await bob.post(`${V3}/keys/signatures/upload`, { [alice.userId!]: { [alicePub]: { ...mk, signatures: { [bob.userId!]: { [bu.keyId]: 'AAAA' } } }, NOKEY: signed } });
    expect(Object.keys(bad.body.failures[alice.userId!]).sort()).toEqual(['NOKEY', alicePub].sort());
    // A knows nothing of it.
    expect((await alice.post(`${V3}/keys/query`, { device_keys: { [alice.userId!]: [] } })).body.master_keys[alice.userId!].signatures?.[bob.userId!]).toBeUndefined();
    expect(a.serverName).toBeDefined();
  });
});

describe('federation key and device endpoints', () => {
  it('GET /user/devices lists a local user\'s devices with keys, stream_id and signing keys', async () => {
    const { a, b, alice, mk } = await setup();
    const r = await b.federation.request(a.serverName, 'GET', `${F}/user/devices/${enc(alice.userId!)}`);
    expect(r.user_id).toBe(alice.userId);
    expect(typeof r.stream_id).toBe('number');
    expect((r.devices as JsonObject[]).map((d) => d.device_id)).toEqual([alice.deviceId]);
    expect(((r.devices as JsonObject[])[0].keys as JsonObject).user_id).toBe(alice.userId);
    expect(r.master_key).toEqual(mk);
  });

  it('refuse unauthenticated requests (401) and bad input (4xx), never 500', async () => {
    const { a, b, alice, errors } = await setup();
    const unauth = async (method: string, path: string, body?: unknown) => {
      const res = await a.handle(new Request(`http://x${path}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined }));
      return { status: res.status, body: await res.json() };
    };
    for (const [m, p, body] of [
      ['GET', `${F}/user/devices/${enc(alice.userId!)}`],
      ['POST', `${F}/user/keys/query`, { device_keys: { [alice.userId!]: [] } }],
      ['POST', `${F}/user/keys/claim`, { one_time_keys: { [alice.userId!]: { [alice.deviceId!]: 'signed_curve25519' } } }],
    ] as [string, string, unknown?][]) {
      expect(await unauth(m, p, body), `${m} ${p}`).toMatchObject({ status: 401, body: { errcode: 'M_UNAUTHORIZED' } });
    }
    // Nothing was claimed by the refused request.
    expect(await a.store.keys.oneTimeKeyCounts(alice.userId!, alice.deviceId!)).toEqual({ signed_curve25519: 2 });

    const status = async (method: string, path: string, body?: JsonValue) => (await federationStatus(b.federation.request(a.serverName, method, path, body))).status;
    const bad: [string, string, JsonValue?][] = [
      ['GET', `${F}/user/devices/${enc('@x:elsewhere.example')}`],
      ['GET', `${F}/user/devices/not-a-user`],
      ['POST', `${F}/user/keys/query`, {}],
      ['POST', `${F}/user/keys/query`, { device_keys: [] }],
      ['POST', `${F}/user/keys/query`, { device_keys: { [alice.userId!]: 'all' } }],
      ['POST', `${F}/user/keys/claim`, { one_time_keys: { [alice.userId!]: { D: 5 } } }],
      ['POST', `${F}/user/keys/claim`, { one_time_keys: 'x' }],
    ];
    for (const [m, p, body] of bad) {
      const s = await status(m, p, body);
      expect(s >= 400 && s < 500, `${m} ${p} ${JSON.stringify(body)} → ${s}`).toBe(true);
    }
    // Users of other servers in a query are left out, not an error.
    const r = await b.federation.request(a.serverName, 'POST', `${F}/user/keys/query`, { device_keys: { '@x:elsewhere.example': [], [alice.userId!]: [] } });
    expect(Object.keys(r.device_keys as JsonObject)).toEqual([alice.userId]);
    expect(errors).toEqual([]);
  });
});
