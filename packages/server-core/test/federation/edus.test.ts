/**
 * EDUs between in-process nodes (spec: server-server API, "Typing Notifications", "Receipts",
 * "Presence", "Device Management", "Send-to-device messaging"): what a user does on one node shows up in
 * the /sync of users on the others; malformed or spoofed EDUs are ignored without failing a transaction.
 */
import { describe, expect, it } from 'vitest';
import { createNetworkedMemoryHomeserver, InProcessNetwork, type Homeserver } from '../../src/index.ts';
import { deviceListOutbox } from '../../src/federation/edus-out.ts';
import { handleEdu } from '../../src/federation/edu-handlers.ts';
import { remoteDeviceCache } from '../../src/services/keys.ts';
import { signJson, signingKeyFromSeed } from '../../src/kernel/signing.ts';
import { encodeBase64 } from '../../src/kernel/base64.ts';
import type { JsonObject } from '../../src/kernel/types.ts';
import { enc, TestClient } from '../helpers/hs.ts';
import { nodes, restartable, stopAfterTest, waitFor } from './helpers.ts';

const V3 = '/_matrix/client/v3';

/** alice on A creates a public room; bob on B joins it. */
async function pair(opts: { clock?: () => number } = {}) {
  const { net, hss: [a, b], errors } = await nodes(2, opts);
  const alice = await new TestClient(a).register('alice');
  const bob = await new TestClient(b).register('bob');
  const roomId = (await alice.post(`${V3}/createRoom`, { preset: 'public_chat' })).body.room_id as string;
  const j = await bob.post(`${V3}/join/${enc(roomId)}?via=${a.serverName}`);
  expect(j.status, JSON.stringify(j.body)).toBe(200);
  await waitFor('A sees bob', async () => (await a.store.rooms.membership(roomId, bob.userId!))?.membership === 'join');
  return { net, a, b, alice, bob, roomId, errors };
}

const since = async (c: TestClient) => (await c.get(`${V3}/sync?timeout=0`)).body.next_batch as string;

/** Sync from `from` until `pick` finds something (each sync waits briefly for news). */
async function syncUntil<T>(c: TestClient, from: string, pick: (body: any) => T | undefined, what = 'sync'): Promise<{ value: T; next: string }> {
  let tok = from;
  const end = Date.now() + 5000;
  for (;;) {
    const r = await c.get(`${V3}/sync?since=${tok}&timeout=200`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const v = pick(r.body);
    if (v !== undefined) return { value: v, next: r.body.next_batch };
    tok = r.body.next_batch;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

const typingIn = (roomId: string) => (body: any) => {
  const e = (body.rooms?.join?.[roomId]?.ephemeral?.events ?? []).find((x: any) => x.type === 'm.typing');
  return e ? (e.content.user_ids as string[]) : undefined;
};

async function signedDeviceKeys(c: TestClient, seed: number): Promise<JsonObject> {
  const k = await signingKeyFromSeed(new Uint8Array(32).fill(seed), `ed25519:${c.deviceId}`);
  return signJson({
    user_id: c.userId!, device_id: c.deviceId!, algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
    keys: { [`curve25519:${c.deviceId}`]: `curve-${seed}`, [`ed25519:${c.deviceId}`]: encodeBase64(k.publicKey) },
  }, c.userId!, k);
}

async function loginAgain(hs: Homeserver, user: TestClient, deviceId: string): Promise<TestClient> {
  const c = new TestClient(hs);
  const r = await c.post(`${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: user.userId }, password: 'correct horse', device_id: deviceId });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  Object.assign(c, { token: r.body.access_token, userId: r.body.user_id, deviceId: r.body.device_id });
  return c;
}

describe('typing across nodes', () => {
  it("a local user's typing shows in a remote user's sync, and stopping clears it", async () => {
    const { b, alice, bob, roomId, errors } = await pair();
    const s0 = await since(bob);
    expect((await alice.put(`${V3}/rooms/${enc(roomId)}/typing/${enc(alice.userId!)}`, { typing: true, timeout: 30000 })).status).toBe(200);
    const t1 = await syncUntil(bob, s0, (body) => { const u = typingIn(roomId)(body); return u?.includes(alice.userId!) ? u : undefined; }, 'typing');
    expect(t1.value).toEqual([alice.userId]);
    expect(b.typing.users(roomId)).toEqual([alice.userId]);
    await alice.put(`${V3}/rooms/${enc(roomId)}/typing/${enc(alice.userId!)}`, { typing: false });
    const t2 = await syncUntil(bob, t1.next, (body) => { const u = typingIn(roomId)(body); return u && u.length === 0 ? u : undefined; }, 'typing stopped');
    expect(t2.value).toEqual([]);
    // And back: bob's typing reaches alice.
    await bob.put(`${V3}/rooms/${enc(roomId)}/typing/${enc(bob.userId!)}`, { typing: true, timeout: 30000 });
    await waitFor('alice sees bob typing', async () =>
      ((await alice.get(`${V3}/sync?timeout=0`)).body.rooms.join[roomId].ephemeral.events as any[]).some((e) => e.type === 'm.typing' && e.content.user_ids.includes(bob.userId)));
    expect(errors).toEqual([]);
  });

  it('a local timeout sends typing: false; a remote user expires on its own after 60 s without news', async () => {
    let now = Date.now();
    const clock = () => now;
    const { a, b, alice, bob, roomId } = await pair({ clock });
    await alice.put(`${V3}/rooms/${enc(roomId)}/typing/${enc(alice.userId!)}`, { typing: true, timeout: 50 });
    await waitFor('B sees alice typing', async () => b.typing.users(roomId).includes(alice.userId!));
    // Alice's timeout passes on A: A tells B she stopped (B's own 60 s timeout has not passed).
    now += 100;
    await waitFor('B sees alice stop', async () => b.typing.users(roomId).length === 0);
    // A remote user whose server goes quiet expires after REMOTE_TYPING_TIMEOUT_MS.
    await bob.put(`${V3}/rooms/${enc(roomId)}/typing/${enc(bob.userId!)}`, { typing: true, timeout: 120000 });
    await waitFor('A sees bob typing', async () => a.typing.users(roomId).includes(bob.userId!));
    now += 61_000;
    expect(a.typing.users(roomId)).toEqual([]);
  });

  it('ignores typing EDUs for users of another server or users not in the room', async () => {
    const { hss: [a, b, c] } = await nodes(3);
    const alice = await new TestClient(a).register('alice');
    const roomId = (await alice.post(`${V3}/createRoom`, { preset: 'public_chat' })).body.room_id as string;
    await handleEdu(a, b.serverName, { edu_type: 'm.typing', content: { room_id: roomId, user_id: `@x:${c.serverName}`, typing: true } });
    await handleEdu(a, b.serverName, { edu_type: 'm.typing', content: { room_id: roomId, user_id: `@x:${b.serverName}`, typing: true } }); // not joined
    await handleEdu(a, b.serverName, { edu_type: 'm.typing', content: { room_id: roomId, user_id: alice.userId, typing: true } }); // spoofed local user
    expect(a.typing.users(roomId)).toEqual([]);
  });
});

describe('receipts across nodes', () => {
  it("a remote user's read receipt appears in the local user's sync; private receipts stay home", async () => {
    const { a, alice, bob, roomId, errors } = await pair();
    const ev = (await alice.put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/1`, { msgtype: 'm.text', body: 'read me' })).body.event_id as string;
    const s0 = await since(alice);
    await waitFor('B has the event', async () => (await bob.get(`${V3}/rooms/${enc(roomId)}/event/${enc(ev)}`)).status === 200);
    expect((await bob.post(`${V3}/rooms/${enc(roomId)}/receipt/m.read/${enc(ev)}`, { thread_id: 'main' })).status).toBe(200);
    const r = await syncUntil(alice, s0, (body) => {
      const e = (body.rooms?.join?.[roomId]?.ephemeral?.events ?? []).find((x: any) => x.type === 'm.receipt');
      return e?.content?.[ev]?.['m.read']?.[bob.userId!];
    }, 'receipt');
    expect(r.value.thread_id).toBe('main');
    expect(typeof r.value.ts).toBe('number');
    const stored = await a.store.rooms.receipt(roomId, 'm.read', bob.userId!, 'main');
    expect(stored?.eventId).toBe(ev);

    // m.read.private is not federated.
    const ev2 = (await alice.put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/2`, { msgtype: 'm.text', body: 'again' })).body.event_id as string;
    await waitFor('B has ev2', async () => (await bob.get(`${V3}/rooms/${enc(roomId)}/event/${enc(ev2)}`)).status === 200);
    expect((await bob.post(`${V3}/rooms/${enc(roomId)}/receipt/m.read.private/${enc(ev2)}`, {})).status).toBe(200);
    await bob.post(`${V3}/rooms/${enc(roomId)}/read_markers`, { 'm.read': ev2 });
    await waitFor('public marker arrives', async () => (await a.store.rooms.receipt(roomId, 'm.read', bob.userId!, ''))?.eventId === ev2);
    expect(await a.store.rooms.receipt(roomId, 'm.read.private', bob.userId!, '')).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it('ignores receipts of users of other servers, of users not in the room, and malformed ones', async () => {
    const { a, b, bob, roomId } = await pair();
    const { hss: [c] } = await nodes(1);
    const spoof = async (content: unknown) => handleEdu(a, b.serverName, { edu_type: 'm.receipt', content });
    await spoof({ [roomId]: { 'm.read': { [`@eve:${c.serverName}`]: { event_ids: ['$x'], data: { ts: 1 } } } } });
    await spoof({ [roomId]: { 'm.read': { [`@ghost:${b.serverName}`]: { event_ids: ['$x'], data: { ts: 1 } } } } });
    await spoof({ [roomId]: { 'm.read': { [bob.userId!]: { event_ids: [], data: { ts: 1 } } } } });
    await spoof({ [roomId]: { 'm.read': { [bob.userId!]: { event_ids: [5], data: { ts: 1 } } } } });
    await spoof({ [roomId]: { 'm.read.private': { [bob.userId!]: { event_ids: ['$x'], data: { ts: 1 } } } } });
    await spoof({ '!unknown:x': { 'm.read': { [bob.userId!]: { event_ids: ['$x'], data: { ts: 1 } } } } });
    await spoof([1, 2]);
    await spoof({ [roomId]: 'nope' });
    expect(await a.store.rooms.receiptsSince(roomId, 0)).toEqual([]);
  });
});

describe('presence across nodes', () => {
  it("a local user's presence reaches the servers sharing a room, and shows in their users' sync", async () => {
    const { b, alice, bob, errors } = await pair();
    const s0 = await since(bob);
    expect((await alice.put(`${V3}/presence/${enc(alice.userId!)}/status`, { presence: 'online', status_msg: 'hacking' })).status).toBe(200);
    const p = await syncUntil(bob, s0, (body) => (body.presence?.events ?? []).find((e: any) => e.sender === alice.userId), 'presence');
    expect(p.value.content).toMatchObject({ presence: 'online', status_msg: 'hacking', currently_active: true });
    expect((await b.store.userData.presence(alice.userId!))?.presence).toBe('online');
    const g = await bob.get(`${V3}/presence/${enc(alice.userId!)}/status`);
    expect(g.status, JSON.stringify(g.body)).toBe(200);
    expect(g.body).toMatchObject({ presence: 'online', status_msg: 'hacking' });
    expect(errors).toEqual([]);
  });

  it('ignores presence for users of another server, users sharing no room, and malformed updates', async () => {
    const { a, b, bob } = await pair();
    const { hss: [c] } = await nodes(1);
    const before = await a.store.userData.presenceSince(0);
    await handleEdu(a, b.serverName, { edu_type: 'm.presence', content: { push: [{ user_id: `@x:${c.serverName}`, presence: 'online', last_active_ago: 0 }] } });
    await handleEdu(a, b.serverName, { edu_type: 'm.presence', content: { push: [{ user_id: bob.userId, presence: 'dancing', last_active_ago: 0 }] } });
    await handleEdu(a, b.serverName, { edu_type: 'm.presence', content: { push: [{ user_id: `@stranger:${b.serverName}`, presence: 'online', last_active_ago: 0 }] } });
    await handleEdu(a, b.serverName, { edu_type: 'm.presence', content: { push: 'x' } });
    await handleEdu(a, b.serverName, { edu_type: 'm.presence', content: { push: [null, 3, { user_id: 5 }] } });
    expect(await a.store.userData.presenceSince(0)).toEqual(before);
    await handleEdu(a, b.serverName, { edu_type: 'm.presence', content: { push: [{ user_id: bob.userId, presence: 'unavailable', last_active_ago: 1000 }] } });
    expect((await a.store.userData.presence(bob.userId!))?.presence).toBe('unavailable');
  });
});

describe('device lists across nodes', () => {
  it("a device's keys, a new device and a deleted device show in a remote user's device_lists.changed", async () => {
    const { a, b, alice, bob, errors } = await pair();
    let tok = await since(bob);
    const changedHas = (u: string) => (body: any) => ((body.device_lists?.changed ?? []) as string[]).includes(u) || undefined;

    // Alice's device uploads its keys: B hears of it.
    expect((await alice.post(`${V3}/keys/upload`, { device_keys: await signedDeviceKeys(alice, 1) })).status).toBe(200);
    tok = (await syncUntil(bob, tok, changedHas(alice.userId!), 'alice changed (keys)')).next;
    // B resynchronised its copy of alice's device list (no previous update known) and keeps it current.
    await waitFor('B caches alice', async () => (await remoteDeviceCache(b, alice.userId!))?.devices[alice.deviceId!]);

    // A second device with keys, then its deletion.
    const phone = await loginAgain(a, alice, 'PHONE');
    expect((await phone.post(`${V3}/keys/upload`, { device_keys: await signedDeviceKeys(phone, 2) })).status).toBe(200);
    tok = (await syncUntil(bob, tok, changedHas(alice.userId!), 'alice changed (new device)')).next;
    await waitFor('B caches the phone', async () => (await remoteDeviceCache(b, alice.userId!))?.devices.PHONE);
    expect((await phone.post(`${V3}/logout`)).status).toBe(200);
    tok = (await syncUntil(bob, tok, changedHas(alice.userId!), 'alice changed (deleted)')).next;
    await waitFor('B drops the phone', async () => {
      const c = await remoteDeviceCache(b, alice.userId!);
      return c && !c.devices.PHONE && c.devices[alice.deviceId!];
    });
    // bob's own changes reach A the same way.
    const s0 = await since(alice);
    await bob.post(`${V3}/keys/upload`, { device_keys: await signedDeviceKeys(bob, 3) });
    await syncUntil(alice, s0, changedHas(bob.userId!), 'bob changed');
    expect(errors).toEqual([]);
  });

  it('cross-signing keys are announced with m.signing_key_update', async () => {
    const { b, alice, bob } = await pair();
    await alice.post(`${V3}/keys/upload`, { device_keys: await signedDeviceKeys(alice, 1) });
    await waitFor('B caches alice', async () => (await remoteDeviceCache(b, alice.userId!))?.devices[alice.deviceId!]);
    const tok = await since(bob);
    const master = await signingKeyFromSeed(new Uint8Array(32).fill(9), 'ed25519:x');
    const mk = { user_id: alice.userId!, usage: ['master'], keys: { [`ed25519:${encodeBase64(master.publicKey)}`]: encodeBase64(master.publicKey) } };
    expect((await alice.post(`${V3}/keys/device_signing/upload`, { master_key: mk, auth: {} })).status).toBe(200);
    await syncUntil(bob, tok, (body) => ((body.device_lists?.changed ?? []) as string[]).includes(alice.userId!) || undefined, 'alice changed (cross-signing)');
    await waitFor('B caches the master key', async () => (await remoteDeviceCache(b, alice.userId!))?.master_key);
  });

  it('ignores updates from the wrong server, for users sharing no room, and malformed ones; a gap triggers a resync', async () => {
    const { a, b, alice, bob } = await pair();
    const { hss: [c] } = await nodes(1);
    const changes = async () => [...(await a.store.keys.deviceListChangesSince(0))];
    const before = await changes();
    const upd = (userId: string, extra: JsonObject = {}) => ({ edu_type: 'm.device_list_update', content: { user_id: userId, device_id: 'D', stream_id: 5, prev_id: [], ...extra } });
    await handleEdu(a, c.serverName, upd(bob.userId!)); // wrong origin
    await handleEdu(a, b.serverName, upd(`@stranger:${b.serverName}`)); // shares no room
    await handleEdu(a, b.serverName, upd(bob.userId!, { stream_id: 'x' }));
    await handleEdu(a, b.serverName, upd(bob.userId!, { prev_id: ['y'] }));
    await handleEdu(a, b.serverName, { edu_type: 'm.device_list_update', content: 7 });
    await handleEdu(a, b.serverName, null);
    expect(await changes()).toEqual(before);

    // A well-formed update whose prev_id A never saw: recorded, and A asks B for bob's whole list.
    await bob.post(`${V3}/keys/upload`, { device_keys: await signedDeviceKeys(bob, 3) });
    await waitFor('A caches bob', async () => (await remoteDeviceCache(a, bob.userId!))?.devices[bob.deviceId!]);
    const cached = (await remoteDeviceCache(a, bob.userId!))!;
    await handleEdu(a, b.serverName, upd(bob.userId!, { device_id: 'GHOST', stream_id: cached.stream + 100, prev_id: [cached.stream + 99], keys: { user_id: bob.userId!, device_id: 'GHOST', keys: {} } }));
    // The resync replaces the cache with B's truth: no GHOST device.
    await waitFor('resynced', async () => {
      const now = await remoteDeviceCache(a, bob.userId!);
      return now && !now.devices.GHOST && now.devices[bob.deviceId!];
    });
    expect(alice.userId).toBeDefined();
  });
});

describe('device list updates survive a restart', () => {
  it('a change recorded before a restart is announced after it', async () => {
    const net = new InProcessNetwork();
    const { start } = restartable(net, (e) => console.error('A:', e));
    let a = await start();
    const b = await createNetworkedMemoryHomeserver(net);
    stopAfterTest(b);
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const roomId = (await alice.post(`${V3}/createRoom`, { preset: 'public_chat' })).body.room_id as string;
    expect((await bob.post(`${V3}/join/${enc(roomId)}?via=${a.serverName}`)).status).toBe(200);
    await waitFor('A sees bob', async () => (await a.store.rooms.membership(roomId, bob.userId!))?.membership === 'join');
    const tok = await since(bob);

    deviceListOutbox(a).stop(); // as if A stopped right after the change was committed
    expect((await alice.post(`${V3}/keys/upload`, { device_keys: await signedDeviceKeys(alice, 1) })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    expect(await a.federation.queued(b.serverName)).toBe(0);
    // The memory engine cannot be re-opened once closed: the old instance is abandoned (as in queue.test.ts).
    a.federation.stop();
    a.typing.stop();
    net.detach(a);
    a = await start();
    stopAfterTest(a);
    await syncUntil(bob, tok, (body) => ((body.device_lists?.changed ?? []) as string[]).includes(alice.userId!) || undefined, 'alice changed after restart');
    await waitFor('B caches alice', async () => (await remoteDeviceCache(b, alice.userId!))?.devices[alice.deviceId!]);
  });
});

describe('to-device messages across nodes', () => {
  it('a message to a remote device (and to all devices with *) arrives in its sync', async () => {
    const { b, alice, bob, errors } = await pair();
    const bob2 = await loginAgain(b, bob, 'BOB2');
    const s1 = await since(bob);
    const s2 = await since(bob2);
    const put = (txn: string, messages: unknown) => alice.put(`${V3}/sendToDevice/m.test/${txn}`, { messages });
    expect((await put('t1', { [bob.userId!]: { [bob.deviceId!]: { hello: 'one' } } })).status).toBe(200);
    const got = await syncUntil(bob, s1, (body) => (body.to_device?.events ?? []).find((e: any) => e.type === 'm.test'), 'to-device');
    expect(got.value).toEqual({ type: 'm.test', sender: alice.userId, content: { hello: 'one' } });
    // The same txn id again is not sent twice; a new one to every device reaches both.
    expect((await put('t1', { [bob.userId!]: { [bob.deviceId!]: { hello: 'one' } } })).status).toBe(200);
    expect((await put('t2', { [bob.userId!]: { '*': { hello: 'all' } } })).status).toBe(200);
    const all1 = await syncUntil(bob, got.next, (body) => (body.to_device?.events ?? []).find((e: any) => e.content.hello === 'all'), 'to-device *');
    expect(all1.value.sender).toBe(alice.userId);
    const all2 = await syncUntil(bob2, s2, (body) => (body.to_device?.events ?? []).filter((e: any) => e.type === 'm.test').length ? body.to_device.events : undefined, 'to-device * on BOB2');
    expect(all2.value.map((e: any) => e.content.hello)).toEqual(['all']);
    expect(errors).toEqual([]);
  });

  it('a retried EDU is delivered once; spoofed senders and malformed messages are dropped', async () => {
    const { a, b, alice, bob } = await pair();
    const edu = { edu_type: 'm.direct_to_device', content: { sender: bob.userId, type: 'm.x', message_id: 'm1', messages: { [alice.userId!]: { '*': { n: 1 } } } } };
    await handleEdu(a, b.serverName, edu);
    await handleEdu(a, b.serverName, edu);
    await handleEdu(a, b.serverName, { ...edu, content: { ...edu.content, message_id: 'm2', sender: `@eve:${a.serverName}` } });
    await handleEdu(a, b.serverName, { ...edu, content: { ...edu.content, message_id: 'm3', messages: { [alice.userId!]: { '*': 'str' } } } });
    await handleEdu(a, b.serverName, { ...edu, content: { ...edu.content, message_id: 'm4', messages: [] } });
    const inbox = await a.store.keys.toDevice(alice.userId!, alice.deviceId!, -1);
    expect(inbox.map((r) => r.message)).toEqual([{ type: 'm.x', sender: bob.userId, content: { n: 1 } }]);
  });
});

describe('the /send endpoint with bad EDUs', () => {
  it('accepts the transaction and ignores what it cannot use', async () => {
    const { a, b } = await pair();
    const txn = { origin: b.serverName, origin_server_ts: Date.now(), pdus: [], edus: [null, 5, 'x', { edu_type: 5 }, { edu_type: 'm.typing', content: [] }, { edu_type: 'm.unknown', content: {} }, { edu_type: 'm.receipt', content: { '!r:x': null } }] };
    const r = await b.federation.request(a.serverName, 'PUT', '/_matrix/federation/v1/send/t1', txn as unknown as JsonObject);
    expect(r).toEqual({ pdus: {} });
  });
});
