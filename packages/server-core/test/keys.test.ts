import { describe, expect, it } from 'vitest';
import { encodeBase64 } from '../src/kernel/base64.ts';
import { signJson, signingKeyFromSeed, type SigningKey } from '../src/kernel/signing.ts';
import type { JsonObject } from '../src/kernel/types.ts';
import { syncE2ee, isBetterRoomKey, syncTokenStream } from '../src/services/keys.ts';
import type { Homeserver } from '../src/homeserver.ts';
import { enc, newHomeserver, TestClient } from './helpers/hs.ts';

const V3 = '/_matrix/client/v3';

async function key(seedByte: number, keyId?: string): Promise<SigningKey> {
  const k = await signingKeyFromSeed(new Uint8Array(32).fill(seedByte), 'ed25519:x');
  return { ...k, keyId: keyId ?? `ed25519:${encodeBase64(k.publicKey)}` };
}
const pub = (k: SigningKey) => encodeBase64(k.publicKey);

/** Signed device keys for a client's device. */
async function deviceKeys(c: TestClient, seedByte: number): Promise<{ keys: JsonObject; signer: SigningKey }> {
  const signer = await key(seedByte, `ed25519:${c.deviceId}`);
  const keys: JsonObject = {
    user_id: c.userId!,
    device_id: c.deviceId!,
    algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
    keys: { [`curve25519:${c.deviceId}`]: `curve-${c.deviceId}`, [`ed25519:${c.deviceId}`]: pub(signer) },
  };
  return { keys: await signJson(keys, c.userId!, signer), signer };
}

async function crossSigning(userId: string, seed: number): Promise<{ master: SigningKey; ssk: SigningKey; usk: SigningKey; body: Record<string, JsonObject> }> {
  const master = await key(seed);
  const ssk = await key(seed + 1);
  const usk = await key(seed + 2);
  const csk = (k: SigningKey, usage: string): JsonObject => ({ user_id: userId, usage: [usage], keys: { [k.keyId]: pub(k) } });
  return {
    master, ssk, usk,
    body: {
      master_key: csk(master, 'master'),
      self_signing_key: await signJson(csk(ssk, 'self_signing'), userId, master),
      user_signing_key: await signJson(csk(usk, 'user_signing'), userId, master),
    },
  };
}

async function login(hs: Homeserver, userId: string, deviceId: string): Promise<TestClient> {
  const c = new TestClient(hs);
  const r = await c.post(`${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: userId }, password: 'correct horse', device_id: deviceId });
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  c.token = r.body.access_token;
  c.userId = r.body.user_id;
  c.deviceId = r.body.device_id;
  return c;
}

/** alice with two devices (A1, A2), bob with one. */
async function setup() {
  const hs = await newHomeserver();
  const a1 = await new TestClient(hs).register('alice');
  const a2 = await login(hs, a1.userId!, 'ALICE2');
  const bob = await new TestClient(hs).register('bob');
  return { hs, a1, a2, bob };
}

const otk = (id: string, extra: JsonObject = {}) => ({ [`signed_curve25519:${id}`]: { key: `k-${id}`, ...extra } });

describe('keys/upload, keys/query', () => {
  it('stores device keys and one-time keys and serves them, with display names', async () => {
    const { hs, a1, a2, bob } = await setup();
    const { keys } = await deviceKeys(a1, 1);
    const up = await a1.post(`${V3}/keys/upload`, { device_keys: keys, one_time_keys: { ...otk('AAA'), ...otk('AAB'), 'curve25519:X': 'plain' } });
    expect(up).toMatchObject({ status: 200, body: { one_time_key_counts: { signed_curve25519: 2, curve25519: 1 } } });
    // signed_curve25519 is always counted, even at zero
    expect((await a2.post(`${V3}/keys/upload`, {})).body).toEqual({ one_time_key_counts: { signed_curve25519: 0 } });
    // re-uploading the same keys is fine; a different key under the same id is not
    expect((await a1.post(`${V3}/keys/upload`, { one_time_keys: otk('AAA') })).status).toBe(200);
    expect(await a1.post(`${V3}/keys/upload`, { one_time_keys: otk('AAA', { other: 1 }) })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    // device keys of another device or user are refused
    const wrong = { ...keys, device_id: 'ALICE2' };
    expect(await a1.post(`${V3}/keys/upload`, { device_keys: wrong })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    expect(await bob.post(`${V3}/keys/upload`, { device_keys: keys })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    await a2.post(`${V3}/keys/upload`, { device_keys: (await deviceKeys(a2, 2)).keys });

    const q = await bob.post(`${V3}/keys/query`, { device_keys: { [a1.userId!]: [], '@nobody:elsewhere.example': [], [hs.userId('ghost')]: [] } });
    expect(q.status).toBe(200);
    expect(Object.keys(q.body.device_keys[a1.userId!]).sort()).toEqual([a1.deviceId, 'ALICE2'].sort());
    expect(q.body.device_keys[a1.userId!][a1.deviceId!]).toMatchObject({ ...keys, unsigned: {} });
    expect(q.body.device_keys[hs.userId('ghost')]).toEqual({});
    expect(q.body.failures).toEqual({});
    const one = await bob.post(`${V3}/keys/query`, { device_keys: { [a1.userId!]: ['ALICE2'] } });
    expect(Object.keys(one.body.device_keys[a1.userId!])).toEqual(['ALICE2']);
    // display names are in unsigned
    await a2.put(`${V3}/devices/ALICE2`, { display_name: 'Phone' });
    const named = await bob.post(`${V3}/keys/query`, { device_keys: { [a1.userId!]: ['ALICE2'] } });
    expect(named.body.device_keys[a1.userId!].ALICE2.unsigned).toEqual({ device_display_name: 'Phone' });
  });

  it('refuses bad input with M_BAD_JSON / M_INVALID_PARAM, never 500', async () => {
    const { a1 } = await setup();
    expect((await a1.post(`${V3}/keys/upload`, { device_keys: { user_id: 5 } })).body.errcode).toBe('M_BAD_JSON');
    expect((await a1.post(`${V3}/keys/upload`, { one_time_keys: { nocolon: 'x' } })).body.errcode).toBe('M_BAD_JSON');
    expect((await a1.post(`${V3}/keys/upload`, { one_time_keys: { 'a:b': 5 } })).body.errcode).toBe('M_BAD_JSON');
    expect((await a1.post(`${V3}/keys/query`, {})).body.errcode).toBe('M_BAD_JSON');
    expect((await a1.post(`${V3}/keys/query`, { device_keys: { notauser: [] } })).body.errcode).toBe('M_BAD_JSON');
    expect((await a1.post(`${V3}/keys/claim`, { one_time_keys: { [a1.userId!]: { D: 5 } } })).body.errcode).toBe('M_BAD_JSON');
    expect((await a1.put(`${V3}/sendToDevice/m.test/t1`, { messages: { [a1.userId!]: { '*': 'text' } } })).body.errcode).toBe('M_BAD_JSON');
    expect((await a1.put(`${V3}/sendToDevice/m.test/t1`, {})).body.errcode).toBe('M_BAD_JSON');
    expect((await a1.post(`${V3}/keys/device_signing/upload`, { master_key: { user_id: a1.userId, usage: 'master', keys: {} } })).body.errcode).toBe('M_BAD_JSON');
    expect((await a1.post(`${V3}/keys/device_signing/upload`, { master_key: { user_id: a1.userId, usage: ['master'], keys: { 'ed25519:x': 'not base64!' } } })).body.errcode).toBe('M_INVALID_PARAM');
    expect((await a1.post(`${V3}/keys/signatures/upload`, { [a1.userId!]: { X: 'str' } })).body.errcode).toBe('M_BAD_JSON');
    expect((await a1.get(`${V3}/keys/changes?from=garbage&to=s1`)).body.errcode).toBe('M_INVALID_PARAM');
    expect((await a1.get(`${V3}/keys/changes`)).body.errcode).toBe('M_INVALID_PARAM');
    expect((await a1.post(`${V3}/room_keys/version`, { algorithm: 1, auth_data: {} })).body.errcode).toBe('M_BAD_JSON');
    await a1.post(`${V3}/room_keys/version`, { algorithm: 'm.megolm_backup.v1.curve25519-aes-sha2', auth_data: {} });
    const bad = { first_message_index: -1, forwarded_count: 0, is_verified: false, session_data: {} };
    expect((await a1.put(`${V3}/room_keys/keys/${enc('!r:x')}/s?version=1`, bad)).body.errcode).toBe('M_BAD_JSON');
    expect((await a1.put(`${V3}/room_keys/keys/${enc('!r:x')}/s`, { ...bad, first_message_index: 0 })).body.errcode).toBe('M_MISSING_PARAM');
    expect((await a1.put(`${V3}/room_keys/keys?version=1`, { rooms: { r: { sessions: { s: 'x' } } } })).body.errcode).toBe('M_BAD_JSON');
    expect((await a1.post(`${V3}/keys/upload`, '{"one_time_keys": 1.5}')).body.errcode).toBe('M_BAD_JSON');
  });
});

describe('keys/claim', () => {
  it('claims each one-time key once, then the fallback key (marked used)', async () => {
    const { hs, a1, bob } = await setup();
    await a1.post(`${V3}/keys/upload`, { one_time_keys: otk('K1') });
    await a1.post(`${V3}/keys/upload`, { one_time_keys: otk('K2'), fallback_keys: { 'signed_curve25519:FB': { key: 'fb', fallback: true } } });
    const me = { userId: a1.userId!, deviceId: a1.deviceId! };
    let s = await syncE2ee(hs, me, undefined, hs.store.stream, []);
    expect(s.device_one_time_keys_count).toEqual({ signed_curve25519: 2 });
    expect(s.device_unused_fallback_key_types).toEqual(['signed_curve25519']);

    const claim = () => bob.post(`${V3}/keys/claim`, { one_time_keys: { [a1.userId!]: { [a1.deviceId!]: 'signed_curve25519', NODEVICE: 'signed_curve25519' }, '@x:remote.example': { D: 'signed_curve25519' } } });
    const c1 = await claim();
    expect(c1.status).toBe(200);
    expect(c1.body).toEqual({ one_time_keys: { [a1.userId!]: { [a1.deviceId!]: { 'signed_curve25519:K1': { key: 'k-K1' } } } }, failures: {} }); // oldest first
    const c2 = await claim();
    expect(c2.body.one_time_keys[a1.userId!][a1.deviceId!]).toEqual({ 'signed_curve25519:K2': { key: 'k-K2' } });
    s = await syncE2ee(hs, me, undefined, hs.store.stream, []);
    expect(s.device_one_time_keys_count).toEqual({ signed_curve25519: 0 });
    expect(s.device_unused_fallback_key_types).toEqual(['signed_curve25519']);
    const c3 = await claim();
    expect(c3.body.one_time_keys[a1.userId!][a1.deviceId!]).toEqual({ 'signed_curve25519:FB': { key: 'fb', fallback: true } });
    // the fallback key is reused, but now reported as used
    expect((await claim()).body.one_time_keys[a1.userId!][a1.deviceId!]).toEqual({ 'signed_curve25519:FB': { key: 'fb', fallback: true } });
    expect((await syncE2ee(hs, me, undefined, hs.store.stream, [])).device_unused_fallback_key_types).toEqual([]);
    // re-uploading the same fallback key keeps it used; a new one is unused
    await a1.post(`${V3}/keys/upload`, { fallback_keys: { 'signed_curve25519:FB': { key: 'fb', fallback: true } } });
    expect((await syncE2ee(hs, me, undefined, hs.store.stream, [])).device_unused_fallback_key_types).toEqual([]);
    await a1.post(`${V3}/keys/upload`, { fallback_keys: { 'signed_curve25519:FB2': { key: 'fb2', fallback: true } } });
    expect((await syncE2ee(hs, me, undefined, hs.store.stream, [])).device_unused_fallback_key_types).toEqual(['signed_curve25519']);
    // nothing to claim for an unknown algorithm
    expect((await bob.post(`${V3}/keys/claim`, { one_time_keys: { [a1.userId!]: { [a1.deviceId!]: 'other_alg' } } })).body.one_time_keys).toEqual({});
  });
});

describe('sendToDevice and the to-device part of sync', () => {
  it('delivers to one device or all (*), idempotently per txn id, and deletes acknowledged messages', async () => {
    const { hs, a1, a2, bob } = await setup();
    const A1 = { userId: a1.userId!, deviceId: a1.deviceId! };
    const A2 = { userId: a2.userId!, deviceId: 'ALICE2' };
    const start = hs.store.stream;
    const put = (txn: string, messages: unknown) => bob.put(`${V3}/sendToDevice/m.room_key_request/${txn}`, { messages });
    expect((await put('t1', { [a1.userId!]: { ALICE2: { n: 1 }, UNKNOWN: { n: 0 } } })).status).toBe(200);
    expect((await put('t1', { [a1.userId!]: { ALICE2: { n: 1 } } })).status).toBe(200); // retry: no duplicate
    expect((await put('t2', { [a1.userId!]: { '*': { n: 2 } }, '@far:remote.example': { D: { n: 9 } } })).status).toBe(200);
    // the same txn id from another device is another transaction
    const bob2 = await login(hs, bob.userId!, 'BOB2');
    await bob2.put(`${V3}/sendToDevice/m.room_key_request/t1`, { messages: { [a1.userId!]: { [a1.deviceId!]: { n: 3 } } } });

    const upTo = hs.store.stream;
    const s1 = await syncE2ee(hs, A1, start, upTo, []);
    expect(s1.to_device.events).toEqual([
      { type: 'm.room_key_request', sender: bob.userId, content: { n: 2 } },
      { type: 'm.room_key_request', sender: bob.userId, content: { n: 3 } },
    ]);
    const s2 = await syncE2ee(hs, A2, undefined, upTo, []);
    expect(s2.to_device.events.map((e) => e.content)).toEqual([{ n: 1 }, { n: 2 }]);
    // A retried sync (same since) gets them again; the next since acknowledges and deletes them.
    expect((await syncE2ee(hs, A2, undefined, upTo, [])).to_device.events).toHaveLength(2);
    expect((await syncE2ee(hs, A2, upTo, hs.store.stream, [])).to_device.events).toEqual([]);
    expect(await hs.store.keys.toDeviceUpTo(A2.userId, A2.deviceId, upTo)).toEqual([]);
    expect(await hs.store.keys.toDeviceUpTo(A1.userId, A1.deviceId, upTo)).toHaveLength(2); // A1 has not acknowledged
    expect((await syncE2ee(hs, A1, upTo, hs.store.stream, [])).to_device.events).toEqual([]);
    expect(await hs.store.keys.toDeviceUpTo(A1.userId, A1.deviceId, upTo)).toEqual([]);
  });

  it('returns at most 100 messages and does not lose the rest when the client acknowledges', async () => {
    const { hs, a1, bob } = await setup();
    const A1 = { userId: a1.userId!, deviceId: a1.deviceId! };
    const messages = { [a1.userId!]: { [a1.deviceId!]: { n: 0 } } };
    for (let i = 0; i < 130; i++) {
      messages[a1.userId!][a1.deviceId!] = { n: i };
      await bob.put(`${V3}/sendToDevice/m.test/t${i}`, { messages });
    }
    const upTo = hs.store.stream;
    const first = await syncE2ee(hs, A1, undefined, upTo, []);
    expect(first.to_device.events).toHaveLength(100);
    const second = await syncE2ee(hs, A1, upTo, hs.store.stream, []);
    expect(second.to_device.events.map((e) => (e.content as { n: number }).n)).toEqual(Array.from({ length: 30 }, (_, i) => 100 + i));
    const third = await syncE2ee(hs, A1, hs.store.stream, hs.store.stream, []);
    expect(third.to_device.events).toEqual([]);
    expect(await hs.store.keys.toDeviceUpTo(A1.userId, A1.deviceId, hs.store.stream)).toEqual([]);
  });
});

describe('cross-signing', () => {
  it('uploads without UIA the first time and for identical keys, requires password UIA for a change', async () => {
    const { hs, a1, bob } = await setup();
    const cs = await crossSigning(a1.userId!, 10);
    // clients.md: Element sends auth: {} without a session the first time
    expect(await a1.post(`${V3}/keys/device_signing/upload`, { ...cs.body, auth: {} })).toMatchObject({ status: 200, body: {} });
    expect((await a1.post(`${V3}/keys/device_signing/upload`, cs.body)).status).toBe(200); // idempotent retry
    expect((await a1.post(`${V3}/keys/device_signing/upload`, { self_signing_key: cs.body.self_signing_key })).status).toBe(200);

    const q = await bob.post(`${V3}/keys/query`, { device_keys: { [a1.userId!]: [] } });
    expect(q.body.master_keys[a1.userId!]).toEqual(cs.body.master_key);
    expect(q.body.self_signing_keys[a1.userId!]).toEqual(cs.body.self_signing_key);
    expect(q.body.user_signing_keys).toEqual({}); // only the owner sees the user-signing key
    const own = await a1.post(`${V3}/keys/query`, { device_keys: { [a1.userId!]: [] } });
    expect(own.body.user_signing_keys[a1.userId!]).toEqual(cs.body.user_signing_key);

    // A reset needs the password.
    const reset = await crossSigning(a1.userId!, 20);
    const r1 = await a1.post(`${V3}/keys/device_signing/upload`, { ...reset.body, auth: {} });
    expect(r1.status).toBe(401);
    expect(r1.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    const session = r1.body.session;
    const wrong = await a1.post(`${V3}/keys/device_signing/upload`, { ...reset.body, auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'nope', session } });
    expect(wrong).toMatchObject({ status: 401, body: { errcode: 'M_FORBIDDEN' } });
    const ok = await a1.post(`${V3}/keys/device_signing/upload`, { ...reset.body, auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'correct horse', session } });
    expect(ok.status).toBe(200);
    expect((await bob.post(`${V3}/keys/query`, { device_keys: { [a1.userId!]: [] } })).body.master_keys[a1.userId!]).toEqual(reset.body.master_key);
    // changing only the self-signing key also needs UIA
    const other = await crossSigning(a1.userId!, 30);
    const ssk = await signJson({ user_id: a1.userId!, usage: ['self_signing'], keys: { [other.ssk.keyId]: pub(other.ssk) } }, a1.userId!, reset.master);
    expect((await a1.post(`${V3}/keys/device_signing/upload`, { self_signing_key: ssk })).status).toBe(401);
  });

  it('refuses badly signed or foreign keys', async () => {
    const { hs, a1 } = await setup();
    const cs = await crossSigning(a1.userId!, 40);
    const stranger = await key(99);
    const badSsk = await signJson({ user_id: a1.userId!, usage: ['self_signing'], keys: { [cs.ssk.keyId]: pub(cs.ssk) } }, a1.userId!, stranger);
    expect(await a1.post(`${V3}/keys/device_signing/upload`, { master_key: cs.body.master_key, self_signing_key: badSsk })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_SIGNATURE' } });
    expect(await a1.post(`${V3}/keys/device_signing/upload`, { self_signing_key: cs.body.self_signing_key })).toMatchObject({ status: 400, body: { errcode: 'M_MISSING_PARAM' } });
    expect(await a1.post(`${V3}/keys/device_signing/upload`, { master_key: { ...cs.body.master_key, user_id: hs.userId('bob') } })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    expect(await a1.post(`${V3}/keys/device_signing/upload`, { master_key: { ...cs.body.master_key, usage: ['self_signing'] } })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    // a public key equal to one of the user's device ids is refused (spec: 403 "Key ID in use")
    const clash = await key(81);
    await login(hs, a1.userId!, pub(clash));
    const clashing = { user_id: a1.userId!, usage: ['master'], keys: { [clash.keyId]: pub(clash) } };
    expect(await a1.post(`${V3}/keys/device_signing/upload`, { master_key: clashing })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    // nothing was stored
    expect(await hs.store.keys.crossSigningKeys(a1.userId!)).toEqual([]);
  });

  it('stores uploaded signatures and merges them into keys/query', async () => {
    const { hs, a1, a2, bob } = await setup();
    const dk = await deviceKeys(a1, 1);
    await a1.post(`${V3}/keys/upload`, { device_keys: dk.keys });
    const alice = await crossSigning(a1.userId!, 50);
    const bobCs = await crossSigning(bob.userId!, 60);
    await a1.post(`${V3}/keys/device_signing/upload`, alice.body);
    await bob.post(`${V3}/keys/device_signing/upload`, bobCs.body);

    // alice's SSK signs her device; her device signs her master key; her USK signs bob's master key
    const signedDevice = await signJson(dk.keys, a1.userId!, alice.ssk);
    const signedMaster = await signJson(alice.body.master_key, a1.userId!, dk.signer);
    const signedBob = await signJson(bobCs.body.master_key, a1.userId!, alice.usk);
    const forged = { ...(await signJson(bobCs.body.master_key, a1.userId!, alice.ssk)) };
    const r = await a1.post(`${V3}/keys/signatures/upload`, {
      [a1.userId!]: { [a1.deviceId!]: signedDevice, [pub(alice.master)]: signedMaster, NOSUCHKEY: signedDevice },
      [bob.userId!]: { [pub(bobCs.master)]: signedBob },
    });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body.failures)).toEqual([a1.userId]);
    expect(r.body.failures[a1.userId!].NOSUCHKEY.errcode).toBe('M_NOT_FOUND');
    // a key signed with the wrong key of the signer, a tampered object, a bad signature
    const tampered = { ...signedDevice, algorithms: ['evil'] };
    const badSig = await signJson(dk.keys, a1.userId!, await key(77, alice.ssk.keyId));
    const r2 = await a1.post(`${V3}/keys/signatures/upload`, { [bob.userId!]: { [pub(bobCs.master)]: forged } });
    expect(r2.body.failures[bob.userId!][pub(bobCs.master)].errcode).toBe('M_INVALID_SIGNATURE');
    const r3 = await a2.post(`${V3}/keys/signatures/upload`, { [a1.userId!]: { [a1.deviceId!]: tampered } });
    expect(r3.body.failures[a1.userId!][a1.deviceId!].errcode).toBe('M_INVALID_SIGNATURE');
    const r4 = await a2.post(`${V3}/keys/signatures/upload`, { [a1.userId!]: { [a1.deviceId!]: badSig } });
    expect(r4.body.failures[a1.userId!][a1.deviceId!].errcode).toBe('M_INVALID_SIGNATURE');

    // bob sees alice's self-signatures...
    const qb = await bob.post(`${V3}/keys/query`, { device_keys: { [a1.userId!]: [], [bob.userId!]: [] } });
    expect(qb.body.device_keys[a1.userId!][a1.deviceId!].signatures[a1.userId!]).toEqual({
      [`ed25519:${a1.deviceId}`]: (dk.keys.signatures as Record<string, Record<string, string>>)[a1.userId!][`ed25519:${a1.deviceId}`],
      [alice.ssk.keyId]: (signedDevice.signatures as Record<string, Record<string, string>>)[a1.userId!][alice.ssk.keyId],
    });
    expect(qb.body.master_keys[a1.userId!].signatures[a1.userId!][`ed25519:${a1.deviceId}`]).toBeTypeOf('string');
    // ...but not alice's signature of his own master key, which only alice sees
    expect(qb.body.master_keys[bob.userId!].signatures).toBeUndefined();
    const qa = await a1.post(`${V3}/keys/query`, { device_keys: { [bob.userId!]: [] } });
    expect(qa.body.master_keys[bob.userId!].signatures[a1.userId!][alice.usk.keyId]).toBeTypeOf('string');
    expect(qa.body.user_signing_keys).toEqual({});
    // signatures show in the device list changes
    expect(await hs.store.keys.signatures(a1.userId!)).toHaveLength(2);
  });
});

describe('device list changes', () => {
  it('keys/changes and sync report users sharing a room whose keys changed, and newly shared users', async () => {
    const { hs, a1, a2, bob } = await setup();
    const carol = await new TestClient(hs).register('carol');
    const roomId = await hs.rooms.createRoom(a1.userId!, { preset: 'public_chat' });
    await hs.rooms.join(bob.userId!, roomId);
    const t0 = hs.store.stream;
    await a2.post(`${V3}/keys/upload`, { device_keys: (await deviceKeys(a2, 3)).keys });
    await carol.post(`${V3}/keys/upload`, { device_keys: (await deviceKeys(carol, 4)).keys }); // carol shares no room with bob
    const t1 = hs.store.stream;
    const ch = await bob.get(`${V3}/keys/changes?from=s${t0}&to=s${t1}_7`);
    expect(ch).toMatchObject({ status: 200, body: { changed: [a1.userId], left: [] } });
    expect((await bob.get(`${V3}/keys/changes?from=s${t1}&to=s${t1}`)).body.changed).toEqual([]);
    expect((await carol.get(`${V3}/keys/changes?from=s${t0}&to=s${t1}`)).body.changed).toEqual([carol.userId]); // own changes

    const B = { userId: bob.userId!, deviceId: bob.deviceId! };
    expect((await syncE2ee(hs, B, undefined, t1, [roomId])).device_lists).toEqual({ changed: [], left: [] }); // initial sync: none
    expect((await syncE2ee(hs, B, t0, t1, [roomId])).device_lists.changed).toEqual([a1.userId]);
    expect((await syncE2ee(hs, B, t1, t1, [roomId])).device_lists.changed).toEqual([]);
    // cross-signing changes count; carol joining makes her a newly shared user for bob, and the room's members for her
    await bob.post(`${V3}/keys/device_signing/upload`, (await crossSigning(bob.userId!, 70)).body);
    await hs.rooms.join(carol.userId!, roomId);
    const t2 = hs.store.stream;
    expect((await syncE2ee(hs, B, t1, t2, [roomId])).device_lists.changed).toEqual([bob.userId, carol.userId].sort());
    const C = { userId: carol.userId!, deviceId: carol.deviceId! };
    expect((await syncE2ee(hs, C, t1, t2, [roomId])).device_lists.changed).toEqual([a1.userId, bob.userId].sort());
    // a device deletion (logout) is a change too
    await a2.post(`${V3}/logout`);
    expect((await syncE2ee(hs, B, t2, hs.store.stream, [roomId])).device_lists.changed).toEqual([a1.userId]);
    expect(syncTokenStream('s12_3_4')).toBe(12);
    expect(syncTokenStream('s5')).toBe(5);
  });
});

describe('key backup', () => {
  const ALG = 'm.megolm_backup.v1.curve25519-aes-sha2';
  const data = (fmi: number, fc: number, verified: boolean, tag: string) => ({ first_message_index: fmi, forwarded_count: fc, is_verified: verified, session_data: { ciphertext: tag } });
  const R = '!room:example.org';

  it('runs the whole lifecycle', async () => {
    const { a1, bob } = await setup();
    // No backup: 404 M_NOT_FOUND (clients.md)
    expect(await a1.get(`${V3}/room_keys/version`)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await a1.put(`${V3}/room_keys/keys/${enc(R)}/s1?version=1`, data(0, 0, false, 'a'))).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await a1.get(`${V3}/room_keys/keys?version=1`)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });

    const v1 = await a1.post(`${V3}/room_keys/version`, { algorithm: ALG, auth_data: { public_key: 'pk1' } });
    expect(v1).toMatchObject({ status: 200, body: { version: '1' } });
    expect((await a1.get(`${V3}/room_keys/version`)).body).toEqual({ algorithm: ALG, auth_data: { public_key: 'pk1' }, count: 0, etag: expect.any(String), version: '1' });
    expect((await bob.get(`${V3}/room_keys/version`)).status).toBe(404); // per user

    // store keys; the better key wins
    const p1 = await a1.put(`${V3}/room_keys/keys/${enc(R)}/s1?version=1`, data(5, 1, false, 'first'));
    expect(p1.body).toEqual({ etag: expect.any(String), count: 1 });
    const p2 = await a1.put(`${V3}/room_keys/keys/${enc(R)}?version=1`, { sessions: { s1: data(6, 0, false, 'worse fmi'), s2: data(0, 0, false, 's2') } });
    expect(p2.body.count).toBe(2);
    expect(p2.body.etag).not.toBe(p1.body.etag);
    expect((await a1.get(`${V3}/room_keys/keys/${enc(R)}/s1?version=1`)).body).toEqual(data(5, 1, false, 'first'));
    const same = await a1.put(`${V3}/room_keys/keys?version=1`, { rooms: { [R]: { sessions: { s1: data(5, 2, false, 'more forwarded') } } } });
    expect(same.body).toEqual(p2.body); // nothing replaced: etag unchanged
    await a1.put(`${V3}/room_keys/keys?version=1`, { rooms: { [R]: { sessions: { s1: data(5, 0, false, 'less forwarded') } }, '!other:x': { sessions: { s3: data(0, 0, false, 's3') } } } });
    expect((await a1.get(`${V3}/room_keys/keys/${enc(R)}/s1?version=1`)).body.session_data).toEqual({ ciphertext: 'less forwarded' });
    await a1.put(`${V3}/room_keys/keys/${enc(R)}/s1?version=1`, data(9, 9, true, 'verified'));
    expect((await a1.get(`${V3}/room_keys/keys/${enc(R)}/s1?version=1`)).body.session_data).toEqual({ ciphertext: 'verified' });
    await a1.put(`${V3}/room_keys/keys/${enc(R)}/s1?version=1`, data(0, 0, false, 'unverified'));
    expect((await a1.get(`${V3}/room_keys/keys/${enc(R)}/s1?version=1`)).body.session_data).toEqual({ ciphertext: 'verified' });

    // read it back
    const all = await a1.get(`${V3}/room_keys/keys?version=1`);
    expect(Object.keys(all.body.rooms).sort()).toEqual(['!other:x', R]);
    expect(Object.keys(all.body.rooms[R].sessions).sort()).toEqual(['s1', 's2']);
    expect((await a1.get(`${V3}/room_keys/keys/${enc('!empty:x')}?version=1`)).body).toEqual({ sessions: {} });
    expect((await a1.get(`${V3}/room_keys/keys/${enc(R)}/nope?version=1`))).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    const info = await a1.get(`${V3}/room_keys/version/1`);
    expect(info.body).toMatchObject({ count: 3, version: '1' });

    // update auth_data: the algorithm must match, and the version in the body too
    expect(await a1.put(`${V3}/room_keys/version/1`, { algorithm: 'other', auth_data: {} })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    expect(await a1.put(`${V3}/room_keys/version/1`, { algorithm: ALG, auth_data: {}, version: '2' })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    expect(await a1.put(`${V3}/room_keys/version/7`, { algorithm: ALG, auth_data: {} })).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect((await a1.put(`${V3}/room_keys/version/1`, { algorithm: ALG, auth_data: { public_key: 'pk1b' } })).status).toBe(200);
    expect((await a1.get(`${V3}/room_keys/version/1`)).body.auth_data).toEqual({ public_key: 'pk1b' });

    // delete keys
    const d1 = await a1.delete(`${V3}/room_keys/keys/${enc(R)}/s2?version=1`);
    expect(d1.body).toMatchObject({ count: 2 });
    expect((await a1.delete(`${V3}/room_keys/keys/${enc('!other:x')}?version=1`)).body).toMatchObject({ count: 1 });

    // a new version becomes current; writing to the old one is refused
    const v2 = await a1.post(`${V3}/room_keys/version`, { algorithm: ALG, auth_data: { public_key: 'pk2' } });
    expect(v2.body.version).toBe('2');
    expect((await a1.get(`${V3}/room_keys/version`)).body).toMatchObject({ version: '2', count: 0 });
    expect(await a1.put(`${V3}/room_keys/keys/${enc(R)}/s9?version=1`, data(0, 0, false, 'x'))).toMatchObject({
      status: 403, body: { errcode: 'M_WRONG_ROOM_KEYS_VERSION', current_version: '2' },
    });
    expect(await a1.put(`${V3}/room_keys/keys?version=99`, { rooms: {} })).toMatchObject({ status: 403, body: { errcode: 'M_WRONG_ROOM_KEYS_VERSION' } });
    expect((await a1.get(`${V3}/room_keys/keys?version=1`)).body.rooms[R].sessions.s1).toBeDefined(); // old versions stay readable
    expect((await a1.delete(`${V3}/room_keys/keys?version=1`)).body).toMatchObject({ count: 0 });

    // delete versions: repeat deletes succeed, unknown ones are 404, numbers are not reused
    expect((await a1.delete(`${V3}/room_keys/version/2`)).status).toBe(200);
    expect((await a1.delete(`${V3}/room_keys/version/2`)).status).toBe(200);
    expect(await a1.delete(`${V3}/room_keys/version/42`)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await a1.get(`${V3}/room_keys/version/2`)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect((await a1.get(`${V3}/room_keys/version`)).body.version).toBe('1'); // the newest remaining
    expect((await a1.delete(`${V3}/room_keys/version/1`)).status).toBe(200);
    expect(await a1.get('/_matrix/client/r0/room_keys/version')).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect((await a1.post(`${V3}/room_keys/version`, { algorithm: ALG, auth_data: {} })).body.version).toBe('3');
  });

  it('orders keys as the spec says', () => {
    const d = (fmi: number, fc: number, v: boolean) => ({ first_message_index: fmi, forwarded_count: fc, is_verified: v, session_data: {} });
    expect(isBetterRoomKey(d(9, 9, true), d(0, 0, false))).toBe(true);
    expect(isBetterRoomKey(d(0, 0, false), d(9, 9, true))).toBe(false);
    expect(isBetterRoomKey(d(1, 9, false), d(2, 0, false))).toBe(true);
    expect(isBetterRoomKey(d(2, 0, false), d(1, 9, false))).toBe(false);
    expect(isBetterRoomKey(d(1, 0, false), d(1, 1, false))).toBe(true);
    expect(isBetterRoomKey(d(1, 1, false), d(1, 1, false))).toBe(false);
    expect(isBetterRoomKey(d(1, 1, false), undefined)).toBe(true);
  });
});
