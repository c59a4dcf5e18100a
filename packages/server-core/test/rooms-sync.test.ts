import { describe, expect, it } from 'vitest';
import { enc, newHomeserver, TestClient } from './helpers/hs.ts';

async function twoUsers() {
  const hs = await newHomeserver();
  const alice = await new TestClient(hs).register('alice');
  const bob = await new TestClient(hs).register('bob');
  return { hs, alice, bob };
}

const R = (roomId: string) => `/_matrix/client/v3/rooms/${enc(roomId)}`;

describe('rooms and sync on one node', () => {
  it('creates a room that appears in sync with its state, and echoes sends with transaction_id', async () => {
    const { alice } = await twoUsers();
    const created = await alice.post('/_matrix/client/v3/createRoom', { name: 'Room', topic: 'About things', preset: 'private_chat' });
    expect(created.status).toBe(200);
    const roomId = created.body.room_id;
    const s1 = await alice.get('/_matrix/client/v3/sync');
    const room = s1.body.rooms.join[roomId];
    expect(room).toBeDefined();
    const all = [...room.state.events, ...room.timeline.events];
    const types = all.map((e: any) => e.type);
    for (const t of ['m.room.create', 'm.room.member', 'm.room.power_levels', 'm.room.join_rules', 'm.room.history_visibility', 'm.room.name', 'm.room.topic']) expect(types).toContain(t);
    expect(room.summary['m.joined_member_count']).toBe(1);

    const send = await alice.put(`${R(roomId)}/send/m.room.message/txn1`, { msgtype: 'm.text', body: 'hello' });
    expect(send.status).toBe(200);
    const again = await alice.put(`${R(roomId)}/send/m.room.message/txn1`, { msgtype: 'm.text', body: 'hello' });
    expect(again.body.event_id).toBe(send.body.event_id);
    const s2 = await alice.get(`/_matrix/client/v3/sync?since=${s1.body.next_batch}`);
    const tl = s2.body.rooms.join[roomId].timeline.events;
    expect(tl).toHaveLength(1);
    expect(tl[0]).toMatchObject({ event_id: send.body.event_id, content: { body: 'hello' }, unsigned: { transaction_id: 'txn1' } });
  });

  it('long-polls: an incremental sync returns as soon as an event is sent', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' })).body.room_id;
    expect((await bob.post(`/_matrix/client/v3/join/${enc(roomId)}`)).status).toBe(200);
    const base = (await bob.get('/_matrix/client/v3/sync')).body.next_batch;
    const t0 = Date.now();
    const poll = bob.get(`/_matrix/client/v3/sync?since=${base}&timeout=20000`);
    await new Promise((r) => setTimeout(r, 50));
    await alice.put(`${R(roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'ping' });
    const res = await poll;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(res.body.rooms.join[roomId].timeline.events.map((e: any) => e.content.body)).toEqual(['ping']);
    // and an empty poll times out with the same position
    const quiet = await bob.get(`/_matrix/client/v3/sync?since=${res.body.next_batch}&timeout=100`);
    expect(quiet.body.rooms.join[roomId]).toBeUndefined();
  });

  it('invites, joins by alias, leaves, kicks and bans, with permissions enforced', async () => {
    const { hs, alice, bob } = await twoUsers();
    const carol = await new TestClient(hs).register('carol');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'private_chat', invite: [bob.userId] })).body.room_id;
    const bs = await bob.get('/_matrix/client/v3/sync');
    const inv = bs.body.rooms.invite[roomId];
    expect(inv.invite_state.events.map((e: any) => e.type)).toContain('m.room.member');
    // carol is not invited: the join rule is invite
    expect((await carol.post(`${R(roomId)}/join`)).status).toBe(403);
    expect((await bob.post(`${R(roomId)}/join`)).status).toBe(200);
    const joined = (await bob.get(`${R(roomId)}/joined_members`)).body.joined;
    expect(Object.keys(joined).sort()).toEqual([alice.userId, bob.userId].sort());
    // bob (power 0) cannot kick alice; alice kicks bob, then bans him
    expect((await bob.post(`${R(roomId)}/kick`, { user_id: alice.userId })).body.errcode).toBe('M_FORBIDDEN');
    expect((await alice.post(`${R(roomId)}/kick`, { user_id: bob.userId, reason: 'bye' })).status).toBe(200);
    expect((await alice.post(`${R(roomId)}/ban`, { user_id: bob.userId })).status).toBe(200);
    expect((await bob.post(`${R(roomId)}/join`)).status).toBe(403);
    expect((await alice.post(`${R(roomId)}/unban`, { user_id: bob.userId })).status).toBe(200);

    const pub = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat', room_alias_name: 'lobby' })).body.room_id;
    const alias = `#lobby:${hs.serverName}`;
    const j = await carol.post(`/_matrix/client/v3/join/${enc(alias)}`);
    expect(j.body.room_id).toBe(pub);
    expect((await carol.post(`${R(pub)}/leave`)).status).toBe(200);
    expect((await carol.get('/_matrix/client/v3/joined_rooms')).body.joined_rooms).toEqual([]);
    expect((await carol.post(`${R(pub)}/forget`)).status).toBe(200);
    expect((await alice.post('/_matrix/client/v3/createRoom', { room_alias_name: 'lobby' })).body.errcode).toBe('M_ROOM_IN_USE');
  });

  it('paginates history with /messages, serves /context, /event and /members', async () => {
    const { alice } = await twoUsers();
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', {})).body.room_id;
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push((await alice.put(`${R(roomId)}/send/m.room.message/m${i}`, { msgtype: 'm.text', body: `msg ${i}` })).body.event_id);
    const seen: string[] = [];
    let from: string | undefined;
    for (let page = 0; page < 10; page++) {
      const r = await alice.get(`${R(roomId)}/messages?dir=b&limit=10${from ? `&from=${from}` : ''}`);
      expect(r.status).toBe(200);
      for (const e of r.body.chunk) if (e.type === 'm.room.message') seen.push(e.content.body);
      if (!r.body.end) break;
      from = r.body.end;
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => `msg ${24 - i}`));
    const fwd = await alice.get(`${R(roomId)}/messages?dir=f&limit=5&filter=${enc(JSON.stringify({ types: ['m.room.message'] }))}`);
    expect(fwd.body.chunk.map((e: any) => e.content.body)).toEqual(['msg 0', 'msg 1', 'msg 2', 'msg 3', 'msg 4']);
    const ctx = await alice.get(`${R(roomId)}/context/${enc(ids[10])}?limit=4`);
    expect(ctx.body.event.content.body).toBe('msg 10');
    expect(ctx.body.events_before.map((e: any) => e.content.body)).toEqual(['msg 9', 'msg 8']);
    expect(ctx.body.events_after.map((e: any) => e.content.body)).toEqual(['msg 11', 'msg 12']);
    expect((await alice.get(`${R(roomId)}/event/${enc(ids[3])}`)).body.content.body).toBe('msg 3');
    expect((await alice.get(`${R(roomId)}/event/%24nope`)).status).toBe(404);
    const members = await alice.get(`${R(roomId)}/members?not_membership=leave`);
    expect(members.body.chunk.map((e: any) => e.state_key)).toEqual([alice.userId]);
  });

  it('redacts events, enforces who may redact, and keeps v11 redacts in content', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' })).body.room_id;
    await bob.post(`${R(roomId)}/join`);
    const a = (await alice.put(`${R(roomId)}/send/m.room.message/a`, { msgtype: 'm.text', body: 'secret' })).body.event_id;
    expect((await bob.put(`${R(roomId)}/redact/${enc(a)}/r1`, {})).body.errcode).toBe('M_FORBIDDEN');
    const red = await alice.put(`${R(roomId)}/redact/${enc(a)}/r1`, { reason: 'oops' });
    expect(red.status).toBe(200);
    const ev = (await bob.get(`${R(roomId)}/event/${enc(a)}`)).body;
    expect(ev.content).toEqual({});
    expect(ev.unsigned.redacted_because.event_id).toBe(red.body.event_id);
    const r = (await bob.get(`${R(roomId)}/event/${enc(red.body.event_id)}`)).body;
    expect(r).toMatchObject({ redacts: a, content: { redacts: a, reason: 'oops' } });
  });

  it('state get/put, power levels enforced, oversized events refused', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' })).body.room_id;
    await bob.post(`${R(roomId)}/join`);
    expect((await alice.put(`${R(roomId)}/state/m.room.topic`, { topic: 'new' })).status).toBe(200);
    expect((await bob.get(`${R(roomId)}/state/m.room.topic`)).body).toEqual({ topic: 'new' });
    expect((await bob.get(`${R(roomId)}/state/m.room.topic/?format=event`)).body.type).toBe('m.room.topic');
    expect((await bob.put(`${R(roomId)}/state/m.room.topic`, { topic: 'mine' })).body.errcode).toBe('M_FORBIDDEN');
    expect((await bob.get(`${R(roomId)}/state/m.room.avatar`)).status).toBe(404);
    expect((await alice.put(`${R(roomId)}/send/m.room.message/big`, { body: 'x'.repeat(70_000) })).body.errcode).toBe('M_TOO_LARGE');
    expect((await alice.put(`${R('!unknown:x')}/send/m.room.message/t`, { body: 'x' })).status).toBe(404);
    expect((await alice.post('/_matrix/client/v3/createRoom', { room_version: '99' })).body.errcode).toBe('M_UNSUPPORTED_ROOM_VERSION');
    expect((await alice.post('/_matrix/client/v3/createRoom', { invite: 'bob' })).body.errcode).toBe('M_BAD_JSON');
    const state = (await bob.get(`${R(roomId)}/state`)).body;
    expect(state.find((e: any) => e.type === 'm.room.topic').content.topic).toBe('new');
  });

  it('unread counts: messages of others after the user\'s latest own message, in full and incremental syncs alike', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' })).body.room_id;
    await bob.post(`${R(roomId)}/join`);
    const count = (body: any) => body.rooms?.join?.[roomId]?.unread_notifications?.notification_count;
    for (let i = 0; i < 3; i++) await alice.put(`${R(roomId)}/send/m.room.message/a${i}`, { msgtype: 'm.text', body: `a${i}` });
    const first = (await bob.get('/_matrix/client/v3/sync')).body;
    expect(count(first)).toBe(3);
    // Bob answers: everything before his own message counts as read, in the incremental sync that carries it...
    await bob.put(`${R(roomId)}/send/m.room.message/b0`, { msgtype: 'm.text', body: 'b0' });
    const own = (await bob.get(`/_matrix/client/v3/sync?since=${first.next_batch}`)).body;
    expect(count(own)).toBe(0);
    // ... and after it only what others sent since counts, whether the sync is incremental or full.
    for (let i = 3; i < 5; i++) await alice.put(`${R(roomId)}/send/m.room.message/a${i}`, { msgtype: 'm.text', body: `a${i}` });
    const later = (await bob.get(`/_matrix/client/v3/sync?since=${own.next_batch}`)).body;
    expect(count(later)).toBe(2);
    await bob.put(`${R(roomId)}/send/m.room.message/b1`, { msgtype: 'm.text', body: 'b1' });
    await alice.put(`${R(roomId)}/send/m.room.message/a5`, { msgtype: 'm.text', body: 'a5' });
    const inc = (await bob.get(`/_matrix/client/v3/sync?since=${later.next_batch}`)).body;
    expect(count(inc)).toBe(1);
    expect(count((await bob.get('/_matrix/client/v3/sync')).body)).toBe(1);
  });

  it('typing and receipts arrive as ephemeral events; account data and tags sync', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' })).body.room_id;
    await bob.post(`${R(roomId)}/join`);
    const ev = (await alice.put(`${R(roomId)}/send/m.room.message/x`, { msgtype: 'm.text', body: 'read me' })).body.event_id;
    const base = (await bob.get('/_matrix/client/v3/sync')).body;
    expect(base.rooms.join[roomId].unread_notifications.notification_count).toBe(1);
    expect((await alice.put(`${R(roomId)}/typing/${enc(alice.userId!)}`, { typing: true, timeout: 10000 })).status).toBe(200);
    const t = await bob.get(`/_matrix/client/v3/sync?since=${base.next_batch}&timeout=5000`);
    const typing = t.body.rooms.join[roomId].ephemeral.events.find((e: any) => e.type === 'm.typing');
    expect(typing.content.user_ids).toEqual([alice.userId]);
    expect((await bob.post(`${R(roomId)}/receipt/m.read/${enc(ev)}`, {})).status).toBe(200);
    const r = await alice.get(`/_matrix/client/v3/sync?since=${t.body.next_batch}&timeout=5000`);
    const receipt = r.body.rooms.join[roomId].ephemeral.events.find((e: any) => e.type === 'm.receipt');
    expect(receipt.content[ev]['m.read'][bob.userId!].ts).toBeTypeOf('number');
    const after = (await bob.get('/_matrix/client/v3/sync')).body;
    expect(after.rooms.join[roomId].unread_notifications.notification_count).toBe(0);

    await bob.put(`/_matrix/client/v3/user/${enc(bob.userId!)}/account_data/m.direct`, { [alice.userId!]: [roomId] });
    await bob.put(`/_matrix/client/v3/user/${enc(bob.userId!)}/rooms/${enc(roomId)}/tags/m.favourite`, { order: 0.5 });
    const ad = (await bob.get(`/_matrix/client/v3/sync?since=${after.next_batch}`)).body;
    expect(ad.account_data.events).toContainEqual({ type: 'm.direct', content: { [alice.userId!]: [roomId] } });
    expect(ad.rooms.join[roomId].account_data.events).toContainEqual({ type: 'm.tag', content: { tags: { 'm.favourite': { order: 0.5 } } } });
    expect((await bob.get(`/_matrix/client/v3/user/${enc(bob.userId!)}/rooms/${enc(roomId)}/tags`)).body.tags).toEqual({ 'm.favourite': { order: 0.5 } });
    expect((await bob.get(`/_matrix/client/v3/user/${enc(alice.userId!)}/account_data/m.direct`)).status).toBe(403);
  });

  it('filters: stored and inline, timeline limit with limited/prev_batch, lazy-loaded members', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' })).body.room_id;
    await bob.post(`${R(roomId)}/join`);
    for (let i = 0; i < 5; i++) await alice.put(`${R(roomId)}/send/m.room.message/f${i}`, { msgtype: 'm.text', body: `f${i}` });
    const f = await bob.post(`/_matrix/client/v3/user/${enc(bob.userId!)}/filter`, { room: { timeline: { limit: 2 }, state: { lazy_load_members: true } } });
    expect(f.status).toBe(200);
    expect((await bob.get(`/_matrix/client/v3/user/${enc(bob.userId!)}/filter/${f.body.filter_id}`)).body.room.timeline.limit).toBe(2);
    const s = (await bob.get(`/_matrix/client/v3/sync?filter=${f.body.filter_id}`)).body.rooms.join[roomId];
    expect(s.timeline.events.map((e: any) => e.content.body)).toEqual(['f3', 'f4']);
    expect(s.timeline.limited).toBe(true);
    const older = await bob.get(`${R(roomId)}/messages?dir=b&from=${s.timeline.prev_batch}&limit=1`);
    expect(older.body.chunk[0].content.body).toBe('f2');
    const inline = (await bob.get(`/_matrix/client/v3/sync?filter=${enc(JSON.stringify({ room: { timeline: { limit: 1, types: ['m.room.message'] } } }))}`)).body;
    expect(inline.rooms.join[roomId].timeline.events).toHaveLength(1);
    expect((await bob.post(`/_matrix/client/v3/user/${enc(bob.userId!)}/filter`, { room: { timeline: { limit: 'x' } } })).body.errcode).toBe('M_BAD_JSON');
    expect((await bob.get('/_matrix/client/v3/sync?since=garbage')).body.errcode).toBe('M_INVALID_PARAM');
    expect((await bob.get('/_matrix/client/v3/sync?filter=nope')).body.errcode).toBe('M_INVALID_PARAM');
  });

  it('serves the push rules default set and its CRUD', async () => {
    const { alice } = await twoUsers();
    const rules = (await alice.get('/_matrix/client/v3/pushrules/')).body.global;
    expect(rules.override.map((r: any) => r.rule_id)).toContain('.m.rule.master');
    expect(rules.underride.map((r: any) => r.rule_id)).toContain('.m.rule.message');
    expect((await alice.put('/_matrix/client/v3/pushrules/global/room/' + enc('!r:x'), { actions: ['notify'] })).status).toBe(200);
    expect((await alice.get('/_matrix/client/v3/pushrules/global/room/' + enc('!r:x'))).body.rule_id).toBe('!r:x');
    expect((await alice.put('/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled', { enabled: true })).status).toBe(200);
    expect((await alice.get('/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled')).body.enabled).toBe(true);
    expect((await alice.get('/_matrix/client/v3/pushrules/global/override/nope')).body.errcode).toBe('M_NOT_FOUND');
  });
});
