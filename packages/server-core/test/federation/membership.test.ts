import { describe, expect, it } from 'vitest';
import type { Homeserver } from '../../src/index.ts';
import { hashAndSignEvent, computeEventId } from '../../src/kernel/events.ts';
import { roomVersion } from '../../src/kernel/room-versions.ts';
import type { PDU } from '../../src/kernel/types.ts';
import { enc, TestClient } from '../helpers/hs.ts';
import { federationStatus, nodes, waitFor } from './helpers.ts';


const status = federationStatus;

const bodies = async (c: TestClient, roomId: string) =>
  ((await c.get(`/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=100`)).body.chunk as any[])
    .filter((e) => e.type === 'm.room.message').map((e) => e.content.body).sort();

describe('invites across servers', () => {
  it('a remote invite shows in the invitee\'s /sync with invite_state; they join and chat', async () => {
    const { hss: [a, b] } = await nodes(2);
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'private_chat', name: 'Secret', topic: 'shh' })).body.room_id;
    const s0 = (await bob.get('/_matrix/client/v3/sync')).body.next_batch;

    const inv = await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: bob.userId });
    expect(inv.status, JSON.stringify(inv.body)).toBe(200);
    // The inviter's copy carries both servers' signatures.
    const m = await a.store.rooms.membership(roomId, bob.userId!);
    expect(m?.membership).toBe('invite');
    const invite = (await a.store.rooms.event(m!.eventId))!;
    expect(Object.keys(invite.pdu.signatures ?? {}).sort()).toEqual([a.serverName, b.serverName].sort());

    const sync = (await bob.get(`/_matrix/client/v3/sync?since=${s0}&timeout=0`)).body;
    const room = sync.rooms.invite[roomId];
    expect(room, JSON.stringify(sync.rooms)).toBeDefined();
    const events = room.invite_state.events as any[];
    expect(events.find((e) => e.type === 'm.room.name')?.content).toEqual({ name: 'Secret' });
    expect(events.find((e) => e.type === 'm.room.create')).toBeDefined();
    const own = events.find((e) => e.type === 'm.room.member' && e.state_key === bob.userId);
    expect(own?.content.membership).toBe('invite');
    expect(own?.sender).toBe(alice.userId);
    // Stripped state only: no signatures or hashes leak to the client.
    expect(events.every((e) => e.signatures === undefined && e.hashes === undefined)).toBe(true);

    // Accepting: join with no via (through the inviter's server).
    const j = await bob.post(`/_matrix/client/v3/join/${enc(roomId)}`);
    expect(j.status, JSON.stringify(j.body)).toBe(200);
    await waitFor("A to see Bob's join", async () => (await a.store.rooms.membership(roomId, bob.userId!))?.membership === 'join');
    const s1 = (await bob.get(`/_matrix/client/v3/sync?since=${s0}&timeout=0`)).body;
    expect(s1.rooms.join[roomId]).toBeDefined();
    expect(s1.rooms.invite[roomId]).toBeUndefined();

    await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/1`, { msgtype: 'm.text', body: 'hello bob' });
    await bob.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/1`, { msgtype: 'm.text', body: 'hello alice' });
    await waitFor('both messages for Alice', async () => (await bodies(alice, roomId)).length === 2);
    await waitFor('both messages for Bob', async () => (await bodies(bob, roomId)).length === 2);
    expect(await bodies(bob, roomId)).toEqual(['hello alice', 'hello bob']);
  });

  it('inviting at room creation works for remote users too', async () => {
    const { hss: [a, b] } = await nodes(2);
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const r = await alice.post('/_matrix/client/v3/createRoom', { preset: 'private_chat', invite: [bob.userId], is_direct: true });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const roomId = r.body.room_id;
    expect((await a.store.rooms.membership(roomId, bob.userId!))?.membership).toBe('invite');
    const sync = (await bob.get('/_matrix/client/v3/sync')).body;
    const own = (sync.rooms.invite[roomId]?.invite_state.events as any[])?.find((e) => e.type === 'm.room.member');
    expect(own?.content).toEqual({ membership: 'invite', is_direct: true });
  });

  it('rejecting a remote invite: make_leave/send_leave through the inviter; both sides show leave', async () => {
    const { hss: [a, b] } = await nodes(2);
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'private_chat' })).body.room_id;
    expect((await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: bob.userId })).status).toBe(200);
    const s0 = (await bob.get('/_matrix/client/v3/sync')).body;
    expect(s0.rooms.invite[roomId]).toBeDefined();

    const l = await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`, { reason: 'no thanks' });
    expect(l.status, JSON.stringify(l.body)).toBe(200);
    const onA = await a.store.rooms.membership(roomId, bob.userId!);
    expect(onA?.membership).toBe('leave');
    const leaveEvent = (await a.store.rooms.event(onA!.eventId))!;
    expect(leaveEvent.sender).toBe(bob.userId);
    expect(leaveEvent.stream).toBeDefined();
    // The inviter sees the rejection in the room.
    const members = (await alice.get(`/_matrix/client/v3/rooms/${enc(roomId)}/members`)).body.chunk as any[];
    expect(members.find((e) => e.state_key === bob.userId)?.content.membership).toBe('leave');

    const s1 = (await bob.get(`/_matrix/client/v3/sync?since=${s0.next_batch}&timeout=0`)).body;
    expect(s1.rooms.leave[roomId]).toBeDefined();
    expect(s1.rooms.invite[roomId]).toBeUndefined();
    expect((await b.store.rooms.membership(roomId, bob.userId!))?.membership).toBe('leave');
    // A fresh sync no longer lists the invite.
    expect((await bob.get('/_matrix/client/v3/sync')).body.rooms.invite[roomId]).toBeUndefined();
  });

  it('rejecting while the inviter is unreachable rejects locally', async () => {
    const { net, hss: [a, b] } = await nodes(2);
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'private_chat' })).body.room_id;
    expect((await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: bob.userId })).status).toBe(200);
    net.setOnline(a.serverName, false);
    const l = await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`);
    expect(l.status, JSON.stringify(l.body)).toBe(200);
    expect((await b.store.rooms.membership(roomId, bob.userId!))?.membership).toBe('leave');
    expect((await a.store.rooms.membership(roomId, bob.userId!))?.membership).toBe('invite');
  });

  it('invites to an unreachable server fail without changing the room', async () => {
    const { net, hss: [a, b] } = await nodes(2);
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'private_chat' })).body.room_id;
    net.setOnline(b.serverName, false);
    const inv = await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: bob.userId });
    expect(inv.status).toBe(502);
    expect(await a.store.rooms.membership(roomId, bob.userId!)).toBeUndefined();
    // An unknown user on a reachable server: the invitee's server refuses.
    net.setOnline(b.serverName, true);
    const nobody = await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: `@nobody:${b.serverName}` });
    expect(nobody.status).toBe(404);
  });
});

describe('knocking across servers', () => {
  async function knockRoom(a: Homeserver) {
    const alice = await new TestClient(a).register('alice');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', {
      preset: 'private_chat', name: 'Knock here', initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'knock' } }],
    })).body.room_id;
    return { alice, roomId };
  }

  it('knock → the admin sees it → invites → the knocker joins', async () => {
    const { hss: [a, b] } = await nodes(2);
    const { alice, roomId } = await knockRoom(a);
    const bob = await new TestClient(b).register('bob');
    const s0 = (await bob.get('/_matrix/client/v3/sync')).body.next_batch;
    const aliceSince = (await alice.get('/_matrix/client/v3/sync')).body.next_batch;

    const k = await bob.post(`/_matrix/client/v3/knock/${enc(roomId)}?via=${a.serverName}`, { reason: 'let me in' });
    expect(k.status, JSON.stringify(k.body)).toBe(200);
    expect(k.body.room_id).toBe(roomId);
    expect((await b.store.rooms.membership(roomId, bob.userId!))?.membership).toBe('knock');
    const s1 = (await bob.get(`/_matrix/client/v3/sync?since=${s0}&timeout=0`)).body;
    const knockState = s1.rooms.knock[roomId]?.knock_state.events as any[];
    expect(knockState, JSON.stringify(s1.rooms)).toBeDefined();
    expect(knockState.find((e) => e.type === 'm.room.name')?.content.name).toBe('Knock here');
    expect(knockState.find((e) => e.type === 'm.room.join_rules')?.content.join_rule).toBe('knock');
    expect(knockState.find((e) => e.type === 'm.room.member')?.content.membership).toBe('knock');

    // The admin sees the knock in their timeline.
    const as1 = (await alice.get(`/_matrix/client/v3/sync?since=${aliceSince}&timeout=0`)).body;
    const tl = as1.rooms.join[roomId].timeline.events as any[];
    const knock = tl.find((e) => e.type === 'm.room.member' && e.state_key === bob.userId);
    expect(knock?.content).toMatchObject({ membership: 'knock', reason: 'let me in' });

    // Accepting the knock is an invite; the knocker then joins.
    const inv = await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: bob.userId });
    expect(inv.status, JSON.stringify(inv.body)).toBe(200);
    const s2 = (await bob.get(`/_matrix/client/v3/sync?since=${s1.next_batch}&timeout=0`)).body;
    expect(s2.rooms.invite[roomId]).toBeDefined();
    const j = await bob.post(`/_matrix/client/v3/join/${enc(roomId)}`);
    expect(j.status, JSON.stringify(j.body)).toBe(200);
    await waitFor("A to see Bob's join", async () => (await a.store.rooms.membership(roomId, bob.userId!))?.membership === 'join');
  });

  it('a knock can be retracted by leaving (through the server knocked at)', async () => {
    const { hss: [a, b] } = await nodes(2);
    const { roomId } = await knockRoom(a);
    const bob = await new TestClient(b).register('bob');
    expect((await bob.post(`/_matrix/client/v3/knock/${enc(roomId)}?via=${a.serverName}`, {})).status).toBe(200);
    expect((await a.store.rooms.membership(roomId, bob.userId!))?.membership).toBe('knock');
    const l = await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`);
    expect(l.status, JSON.stringify(l.body)).toBe(200);
    expect((await a.store.rooms.membership(roomId, bob.userId!))?.membership).toBe('leave');
    expect((await b.store.rooms.membership(roomId, bob.userId!))?.membership).toBe('leave');
  });

  it('knocking on a room that does not allow it is refused', async () => {
    const { hss: [a, b] } = await nodes(2);
    const alice = await new TestClient(a).register('alice');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'private_chat' })).body.room_id;
    const bob = await new TestClient(b).register('bob');
    const k = await bob.post(`/_matrix/client/v3/knock/${enc(roomId)}?via=${a.serverName}`, {});
    expect(k.status).toBe(403);
    expect(await b.store.rooms.membership(roomId, bob.userId!)).toBeUndefined();
  });

  it('a third server sees the knock once it is in the room', async () => {
    const { hss: [a, b, c] } = await nodes(3);
    const { roomId } = await knockRoom(a);
    const carol = await new TestClient(c).register('carol');
    // Carol is invited and joins, so C is in the room.
    const admin = await new TestClient(a).request('POST', '/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'correct horse' });
    const adminClient = new TestClient(a);
    adminClient.token = admin.body.access_token;
    expect((await adminClient.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: carol.userId })).status).toBe(200);
    expect((await carol.post(`/_matrix/client/v3/join/${enc(roomId)}`)).status).toBe(200);
    const bob = await new TestClient(b).register('bob');
    expect((await bob.post(`/_matrix/client/v3/knock/${enc(roomId)}?via=${a.serverName}`, {})).status).toBe(200);
    await waitFor("C to see Bob's knock", async () => (await c.store.rooms.membership(roomId, bob.userId!))?.membership === 'knock');
  });
});

describe('membership endpoints refuse bad requests', () => {
  it('make_leave / send_leave / make_knock / send_knock / invite answer 4xx for bad input', async () => {
    const { hss: [a, b, c] } = await nodes(3);
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' })).body.room_id;
    const F = '/_matrix/federation';
    const req = (from: Homeserver, method: string, path: string, body?: any) => status(from.federation.request(a.serverName, method, path, body));

    // make_leave for a user of another server; unknown room; a bad user id.
    expect(await req(b, 'GET', `${F}/v1/make_leave/${enc(roomId)}/${enc(`@x:${c.serverName}`)}`)).toMatchObject({ status: 403 });
    expect(await req(b, 'GET', `${F}/v1/make_leave/${enc('!nope:' + a.serverName)}/${enc(bob.userId!)}`)).toMatchObject({ status: 404 });
    expect(await req(b, 'GET', `${F}/v1/make_leave/${enc(roomId)}/not-a-user`)).toMatchObject({ status: 400 });
    // bob is not in the room: leaving is not allowed.
    expect(await req(b, 'GET', `${F}/v1/make_leave/${enc(roomId)}/${enc(bob.userId!)}`)).toMatchObject({ status: 403 });
    // make_knock needs ver; a version list without the room's is refused; a public room refuses knocks.
    expect(await req(b, 'GET', `${F}/v1/make_knock/${enc(roomId)}/${enc(bob.userId!)}`)).toMatchObject({ status: 400, errcode: 'M_MISSING_PARAM' });
    expect(await req(b, 'GET', `${F}/v1/make_knock/${enc(roomId)}/${enc(bob.userId!)}?ver=1`)).toMatchObject({ status: 400, errcode: 'M_INCOMPATIBLE_ROOM_VERSION' });
    expect(await req(b, 'GET', `${F}/v1/make_knock/${enc(roomId)}/${enc(bob.userId!)}?ver=11&ver=10`)).toMatchObject({ status: 403 });
    // send_leave / send_knock with junk, with a mismatched event id, with another membership.
    for (const kind of ['v2/send_leave', 'v1/send_leave', 'v1/send_knock']) {
      expect(await req(b, 'PUT', `${F}/${kind}/${enc(roomId)}/${enc('$x')}`, { hello: 'world' })).toMatchObject({ status: 400 });
      expect(await req(b, 'PUT', `${F}/${kind}/${enc('!nope:' + a.serverName)}/${enc('$x')}`, { hello: 'world' })).toMatchObject({ status: 404 });
    }
    const rules = roomVersion('11')!;
    const joinLike = await hashAndSignEvent({
      type: 'm.room.member', room_id: roomId, sender: bob.userId!, state_key: bob.userId!, content: { membership: 'join' },
      origin_server_ts: 1, depth: 5, prev_events: [], auth_events: [],
    } as PDU, rules, b.serverName, b.signingKey);
    const joinId = computeEventId(joinLike, rules);
    expect(await req(b, 'PUT', `${F}/v2/send_leave/${enc(roomId)}/${enc(joinId)}`, joinLike)).toMatchObject({ status: 400 });
    expect(await req(b, 'PUT', `${F}/v2/send_leave/${enc(roomId)}/${enc('$other')}`, { ...joinLike, content: { membership: 'leave' } })).toMatchObject({ status: 400 });
    // Sent by a server that is not the sender's.
    expect(await req(c, 'PUT', `${F}/v2/send_leave/${enc(roomId)}/${enc(joinId)}`, joinLike)).toMatchObject({ status: 400 });
    // Unsigned requests are refused by the router.
    const raw = await a.handle(new Request(`http://x${F}/v1/make_leave/${enc(roomId)}/${enc(bob.userId!)}`));
    expect(raw.status).toBe(401);

    // Invites: unsupported version, bad signature, not an invite, not our user, wrong origin, bad body.
    const inviteFor = async (target: string, extra: Partial<PDU> = {}) => {
      const pdu = await hashAndSignEvent({
        type: 'm.room.member', room_id: roomId, sender: alice.userId!, state_key: target, content: { membership: 'invite' },
        origin_server_ts: 1, depth: 5, prev_events: [], auth_events: [], ...extra,
      } as PDU, rules, a.serverName, a.signingKey);
      return { pdu, id: computeEventId(pdu, rules) };
    };
    const toB = (from: Homeserver, path: string, body: any) => status(from.federation.request(b.serverName, 'PUT', path, body));
    const good = await inviteFor(bob.userId!);
    expect(await toB(a, `${F}/v2/invite/${enc(roomId)}/${enc(good.id)}`, { room_version: '99', event: good.pdu })).toMatchObject({ status: 400, errcode: 'M_INCOMPATIBLE_ROOM_VERSION' });
    expect(await toB(a, `${F}/v2/invite/${enc(roomId)}/${enc(good.id)}`, { room_version: '11', event: { ...good.pdu, content: { membership: 'invite', x: 1 } } })).toMatchObject({ status: 400 });
    expect(await toB(a, `${F}/v2/invite/${enc(roomId)}/${enc('$wrong')}`, { room_version: '11', event: good.pdu })).toMatchObject({ status: 400 });
    expect(await toB(c, `${F}/v2/invite/${enc(roomId)}/${enc(good.id)}`, { room_version: '11', event: good.pdu })).toMatchObject({ status: 400 });
    expect(await toB(a, `${F}/v2/invite/${enc('!other:x')}/${enc(good.id)}`, { room_version: '11', event: good.pdu })).toMatchObject({ status: 400 });
    expect(await toB(a, `${F}/v2/invite/${enc(roomId)}/${enc(good.id)}`, { room_version: '11' })).toMatchObject({ status: 400 });
    expect(await toB(a, `${F}/v2/invite/${enc(roomId)}/${enc(good.id)}`, { room_version: '11', event: 'nope' })).toMatchObject({ status: 400 });
    const notOurs = await inviteFor(`@bob:${c.serverName}`);
    expect(await toB(a, `${F}/v2/invite/${enc(roomId)}/${enc(notOurs.id)}`, { room_version: '11', event: notOurs.pdu })).toMatchObject({ status: 400 });
    const ghost = await inviteFor(`@ghost:${b.serverName}`);
    expect(await toB(a, `${F}/v2/invite/${enc(roomId)}/${enc(ghost.id)}`, { room_version: '11', event: ghost.pdu })).toMatchObject({ status: 404 });
    const notInvite = await inviteFor(bob.userId!, { content: { membership: 'join' } });
    expect(await toB(a, `${F}/v2/invite/${enc(roomId)}/${enc(notInvite.id)}`, { room_version: '11', event: notInvite.pdu })).toMatchObject({ status: 400 });
    // None of these left an invite behind.
    expect(await b.store.rooms.membership(roomId, bob.userId!)).toBeUndefined();
    // The good one is countersigned and kept; junk invite_room_state entries are dropped.
    const r = await a.federation.request<{ event: PDU }>(b.serverName, 'PUT', `${F}/v2/invite/${enc(roomId)}/${enc(good.id)}`, {
      room_version: '11', event: good.pdu as any, invite_room_state: [{ type: 'm.room.name', state_key: '', sender: alice.userId!, content: { name: 'N' } }, 'junk', { type: 'm.room.topic', signatures: {}, sender: alice.userId!, content: {} }],
    });
    expect(r.event.signatures?.[b.serverName]).toBeDefined();
    expect(computeEventId(r.event, rules)).toBe(good.id);
    const sync = (await bob.get('/_matrix/client/v3/sync')).body;
    const st = sync.rooms.invite[roomId].invite_state.events as any[];
    expect(st.map((e) => e.type).sort()).toEqual(['m.room.member', 'm.room.name']);
  });
});
