import { describe, expect, it } from 'vitest';
import type { Homeserver } from '../../src/index.ts';
import { FederationError } from '../../src/federation/service.ts';
import { computeEventId } from '../../src/kernel/events.ts';
import { roomVersion } from '../../src/kernel/room-versions.ts';
import type { PDU } from '../../src/kernel/types.ts';
import { enc, TestClient } from '../helpers/hs.ts';
import { nodes, waitFor } from './helpers.ts';

const F = '/_matrix/federation/v1';
const rules = roomVersion('11')!;

async function result<T = any>(p: Promise<T>): Promise<{ status: number; errcode?: string; body?: T }> {
  try {
    return { status: 200, body: await p };
  } catch (e) {
    if (e instanceof FederationError) return { status: e.status, errcode: e.errcode };
    throw e;
  }
}

/** Page back through /messages until the end; returns every event, newest first. */
async function paginateAll(c: TestClient, roomId: string, limit = 7): Promise<any[]> {
  const out: any[] = [];
  let from: string | undefined;
  for (let i = 0; i < 100; i++) {
    const r = await c.get(`/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=${limit}${from ? `&from=${enc(from)}` : ''}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    out.push(...r.body.chunk);
    if (!r.body.end) return out;
    from = r.body.end;
  }
  throw new Error('pagination did not end');
}

/** A room on A with `n` messages before B's user joins it. */
async function roomWithHistory(a: Homeserver, b: Homeserver, n: number, historyVisibility?: string) {
  const alice = await new TestClient(a).register('alice');
  const bob = await new TestClient(b).register('bob');
  const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat', name: 'History' })).body.room_id;
  if (historyVisibility) {
    expect((await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.history_visibility`, { history_visibility: historyVisibility })).status).toBe(200);
  }
  for (let i = 0; i < n; i++) await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/h${i}`, { msgtype: 'm.text', body: `before ${i}` });
  // A little branching state: a topic change in the middle of the history.
  await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.topic`, { topic: 'old times' });
  const j = await bob.post(`/_matrix/client/v3/join/${enc(roomId)}?via=${a.serverName}`);
  expect(j.status, JSON.stringify(j.body)).toBe(200);
  await waitFor("A to see Bob's join", async () => (await a.store.rooms.membership(roomId, bob.userId!))?.membership === 'join');
  return { alice, bob, roomId };
}

describe('backfill for clients', () => {
  it('a node joining late pages /messages back to the room\'s start through /backfill', async () => {
    const { hss: [a, b] } = await nodes(2);
    const { alice, bob, roomId } = await roomWithHistory(a, b, 25);
    await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/after`, { msgtype: 'm.text', body: 'after' });
    await waitFor('the message on B', async () => (await b.store.rooms.timeline(roomId, { dir: 'b', limit: 100 })).some((e) => e.pdu.content.body === 'after'));
    const s0 = (await bob.get('/_matrix/client/v3/sync')).body.next_batch;

    const all = await paginateAll(bob, roomId);
    const msgs = all.filter((e) => e.type === 'm.room.message').map((e) => e.content.body);
    expect(msgs).toEqual(['after', ...Array.from({ length: 25 }, (_, i) => `before ${24 - i}`)]);
    // The whole room, from its create event, in order, each event once.
    const aliceView = (await paginateAll(alice, roomId, 50)).map((e) => e.event_id);
    expect(all.map((e) => e.event_id)).toEqual(aliceView);
    expect(all[all.length - 1].type).toBe('m.room.create');
    const topic = all.find((e) => e.type === 'm.room.topic');
    expect(topic.content.topic).toBe('old times');
    // Backfilled events never show in /sync.
    const s1 = (await bob.get(`/_matrix/client/v3/sync?since=${s0}&timeout=0`)).body;
    expect(s1.rooms.join[roomId]).toBeUndefined();
    // The backfilled events sit before the join in the timeline index, at negative positions.
    const backfilled = await b.store.rooms.timeline(roomId, { dir: 'f', to: 0, limit: 1000 });
    expect(backfilled.length).toBeGreaterThan(25);
    expect(backfilled.every((e) => e.stateBefore !== undefined && e.stateAfter !== undefined && !e.rejected)).toBe(true);
    // Paging again is served locally (nothing more to fetch).
    const again = await paginateAll(bob, roomId, 50);
    expect(again.map((e) => e.event_id)).toEqual(aliceView);
    // Event and context of backfilled events work for the client.
    const ev = await bob.get(`/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(all[10].event_id)}`);
    expect(ev.status).toBe(200);
    expect(ev.body.content).toEqual(all[10].content);
  });

  it('history_visibility joined: earlier messages are not shown (and are served redacted)', async () => {
    const { hss: [a, b] } = await nodes(2);
    const { bob, roomId } = await roomWithHistory(a, b, 5, 'joined');
    const all = await paginateAll(bob, roomId);
    expect(all.filter((e) => e.type === 'm.room.message')).toEqual([]);
    // bob's own join is visible.
    expect(all.some((e) => e.type === 'm.room.member' && e.state_key === bob.userId)).toBe(true);
    // What B stored of the earlier messages is redacted: A never sent their content.
    const stored = await b.store.rooms.timeline(roomId, { dir: 'f', to: 0, limit: 100 });
    const messages = stored.filter((e) => e.type === 'm.room.message');
    expect(messages.length).toBe(5);
    expect(messages.every((e) => Object.keys(e.pdu.content).length === 0)).toBe(true);
  });

  it('history_visibility shared / world_readable: earlier messages are visible', async () => {
    for (const hv of ['shared', 'world_readable']) {
      const { hss: [a, b] } = await nodes(2);
      const { bob, roomId } = await roomWithHistory(a, b, 3, hv);
      const all = await paginateAll(bob, roomId);
      expect(all.filter((e) => e.type === 'm.room.message').map((e) => e.content.body)).toEqual(['before 2', 'before 1', 'before 0']);
    }
  });

  it('with three nodes, a late joiner backfills from a server in the room', async () => {
    const { net, hss: [a, b, c] } = await nodes(3);
    const { bob, roomId } = await roomWithHistory(a, b, 4);
    await bob.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/b1`, { msgtype: 'm.text', body: 'bob was here' });
    await waitFor("Bob's message on A", async () => (await a.store.rooms.timeline(roomId, { dir: 'b', limit: 5 })).some((e) => e.pdu.content.body === 'bob was here'));
    // B backfills its history first, so it can answer for it.
    await paginateAll(bob, roomId);
    const carol = await new TestClient(c).register('carol');
    expect((await carol.post(`/_matrix/client/v3/join/${enc(roomId)}?via=${a.serverName}`)).status).toBe(200);
    await waitFor("B to see Carol's join", async () => (await b.store.rooms.membership(roomId, carol.userId!))?.membership === 'join');
    // A goes away: C's backfill comes from B.
    net.setOnline(a.serverName, false);
    const all = await paginateAll(carol, roomId);
    expect(all.filter((e) => e.type === 'm.room.message').map((e) => e.content.body)).toEqual(['bob was here', 'before 3', 'before 2', 'before 1', 'before 0']);
    expect(all[all.length - 1].type).toBe('m.room.create');
  });

  it('fetches auth events it lacks (/event_auth) and the state at the edge (/state_ids, /state)', async () => {
    const { hss: [a, b] } = await nodes(2);
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' })).body.room_id;
    const oldPl = (await a.store.rooms.stateEvent(roomId, 'm.room.power_levels', ''))!.eventId;
    for (let i = 0; i < 12; i++) await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/o${i}`, { msgtype: 'm.text', body: `old ${i}` });
    const pl = (await alice.get(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.power_levels`)).body;
    await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.power_levels`, { ...pl, events_default: 0, state_default: 60 });
    for (let i = 0; i < 3; i++) await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/n${i}`, { msgtype: 'm.text', body: `new ${i}` });
    expect((await bob.post(`/_matrix/client/v3/join/${enc(roomId)}?via=${a.serverName}`)).status).toBe(200);
    // B lost the old power levels (only the auth chain of the new ones had it).
    expect(await b.store.rooms.event(oldPl)).toBeDefined();
    await b.store.batch().delete('events', oldPl).commit();
    const paths: string[] = [];
    const orig = b.federation.request.bind(b.federation);
    b.federation.request = ((dest: string, method: string, path: string, ...rest: any[]) => (paths.push(path.split('?')[0].split('/').slice(0, 5).join('/')), orig(dest, method, path, ...rest))) as typeof b.federation.request;
    const all = await paginateAll(bob, roomId, 4);
    expect(all.filter((e) => e.type === 'm.room.message').map((e) => e.content.body)).toEqual(['new 2', 'new 1', 'new 0', ...Array.from({ length: 12 }, (_, i) => `old ${11 - i}`)]);
    expect(paths).toContain('/_matrix/federation/v1/backfill');
    expect(paths).toContain('/_matrix/federation/v1/event_auth');
    expect(paths).toContain('/_matrix/federation/v1/state_ids');
    expect((await b.store.rooms.event(oldPl))?.rejected).toBeUndefined();
  });

  it('a locally created room paginates to its start without federating', async () => {
    const { net, hss: [a] } = await nodes(1);
    const alice = await new TestClient(a).register('alice');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', {})).body.room_id;
    const before = net.delivered;
    const all = await paginateAll(alice, roomId, 3);
    expect(all[all.length - 1].type).toBe('m.room.create');
    expect(net.delivered).toBe(before);
  });
});

describe('history endpoints', () => {
  async function setup() {
    const { net, hss: [a, b, c] } = await nodes(3);
    const { alice, bob, roomId } = await roomWithHistory(a, b, 6);
    const timeline = await a.store.rooms.timeline(roomId, { dir: 'b', limit: 1000 }); // newest first
    return { net, a, b, c, alice, bob, roomId, timeline };
  }
  const get = (from: Homeserver, to: Homeserver, path: string) => result<any>(from.federation.request(to.serverName, 'GET', path));
  const post = (from: Homeserver, to: Homeserver, path: string, body: any) => result<any>(from.federation.request(to.serverName, 'POST', path, body));

  it('/event, /state, /state_ids, /event_auth answer servers in the room', async () => {
    const { a, b, roomId, timeline } = await setup();
    const msg = timeline.find((e) => e.type === 'm.room.message')!;
    const ev = await get(b, a, `${F}/event/${enc(msg.eventId)}`);
    expect(ev.status).toBe(200);
    expect(ev.body.origin).toBe(a.serverName);
    expect(typeof ev.body.origin_server_ts).toBe('number');
    expect(ev.body.pdus).toHaveLength(1);
    expect(computeEventId(ev.body.pdus[0], rules)).toBe(msg.eventId);
    expect(ev.body.pdus[0].event_id).toBeUndefined();
    expect(ev.body.pdus[0].content.body).toBe(msg.pdu.content.body);

    // State before the topic change: the old state, without the topic event itself.
    const topic = timeline.find((e) => e.type === 'm.room.topic')!;
    const st = await get(b, a, `${F}/state/${enc(roomId)}?event_id=${enc(topic.eventId)}`);
    expect(st.status).toBe(200);
    const stateIds = (st.body.pdus as PDU[]).map((p) => computeEventId(p, rules));
    expect(stateIds).not.toContain(topic.eventId);
    expect((st.body.pdus as PDU[]).map((p) => p.type)).toContain('m.room.create');
    const want = [...(await a.store.rooms.stateGroup(topic.stateBefore!)).values()].sort();
    expect([...stateIds].sort()).toEqual(want);
    expect(st.body.auth_chain.length).toBeGreaterThan(0);
    const ids = await get(b, a, `${F}/state_ids/${enc(roomId)}?event_id=${enc(topic.eventId)}`);
    expect(ids.status).toBe(200);
    expect([...ids.body.pdu_ids].sort()).toEqual(want);
    expect([...ids.body.auth_chain_ids].sort()).toEqual((st.body.auth_chain as PDU[]).map((p) => computeEventId(p, rules)).sort());

    // The auth chain of a message: create, power levels, alice's join (and what those rest on).
    const auth = await get(b, a, `${F}/event_auth/${enc(roomId)}/${enc(msg.eventId)}`);
    expect(auth.status).toBe(200);
    const authTypes = (auth.body.auth_chain as PDU[]).map((p) => p.type).sort();
    expect(authTypes).toEqual(['m.room.create', 'm.room.member', 'm.room.power_levels']);
    expect((auth.body.auth_chain as PDU[]).map((p) => computeEventId(p, rules))).not.toContain(msg.eventId);

    // The create event: empty state before it.
    const create = timeline[timeline.length - 1];
    const cs = await get(b, a, `${F}/state_ids/${enc(roomId)}?event_id=${enc(create.eventId)}`);
    expect(cs.body).toEqual({ pdu_ids: [], auth_chain_ids: [] });
  });

  it('/get_missing_events walks back from latest_events to earliest_events, oldest first', async () => {
    const { a, b, roomId, timeline } = await setup();
    const msgs = timeline.filter((e) => e.type === 'm.room.message').reverse(); // oldest first
    expect(msgs).toHaveLength(6);
    const r = await post(b, a, `${F}/get_missing_events/${enc(roomId)}`, { earliest_events: [msgs[1].eventId], latest_events: [msgs[5].eventId], limit: 10 });
    expect(r.status).toBe(200);
    expect((r.body.events as PDU[]).map((p) => computeEventId(p, rules))).toEqual([msgs[2].eventId, msgs[3].eventId, msgs[4].eventId]);
    const lim = await post(b, a, `${F}/get_missing_events/${enc(roomId)}`, { earliest_events: [], latest_events: [msgs[5].eventId], limit: 2 });
    expect((lim.body.events as PDU[]).map((p) => computeEventId(p, rules))).toEqual([msgs[3].eventId, msgs[4].eventId]);
    const deep = await post(b, a, `${F}/get_missing_events/${enc(roomId)}`, { earliest_events: [], latest_events: [msgs[5].eventId], limit: 10, min_depth: msgs[4].depth });
    expect((deep.body.events as PDU[]).map((p) => computeEventId(p, rules))).toEqual([msgs[4].eventId]);
    const none = await post(b, a, `${F}/get_missing_events/${enc(roomId)}`, { earliest_events: [], latest_events: ['$unknown'] });
    expect(none.body).toEqual({ events: [] });
  });

  it('/backfill returns the v events and those before them, newest first, up to limit', async () => {
    const { a, b, roomId, timeline } = await setup();
    const msgs = timeline.filter((e) => e.type === 'm.room.message'); // newest first
    const r = await get(b, a, `${F}/backfill/${enc(roomId)}?v=${enc(msgs[0].eventId)}&limit=4`);
    expect(r.status).toBe(200);
    expect(r.body.origin).toBe(a.serverName);
    expect((r.body.pdus as PDU[]).map((p) => computeEventId(p, rules))).toEqual(msgs.slice(0, 4).map((e) => e.eventId));
    // Everything back to the create event.
    const all = await get(b, a, `${F}/backfill/${enc(roomId)}?v=${enc(msgs[0].eventId)}&limit=100`);
    const pdus = all.body.pdus as PDU[];
    expect(pdus[pdus.length - 1].type).toBe('m.room.create');
    const depths = pdus.map((p) => p.depth!);
    expect([...depths].sort((x, y) => y - x)).toEqual(depths);
    expect(await get(b, a, `${F}/backfill/${enc(roomId)}?v=${enc(msgs[0].eventId)}&limit=0`)).toMatchObject({ status: 200, body: { pdus: [] } });
  });

  it('served PDUs never carry local unsigned data (invite_room_state)', async () => {
    const { a, b, alice, roomId } = await setup();
    // A local invitee's invite is stored with invite_room_state for its /sync; other servers never see that.
    const carol = await new TestClient(a).register('carol');
    expect((await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: carol.userId })).status).toBe(200);
    const m = (await a.store.rooms.membership(roomId, carol.userId!))!;
    expect(((await a.store.rooms.event(m.eventId))!.pdu.unsigned as any)?.invite_room_state).toBeDefined();
    const ev = await get(b, a, `${F}/event/${enc(m.eventId)}`);
    expect(ev.body.pdus[0].unsigned).toBeUndefined();
    // A remote invitee's server countersigns the invite.
    const dave = await new TestClient(b).register('dave');
    expect((await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: dave.userId })).status).toBe(200);
    const dm = (await a.store.rooms.membership(roomId, dave.userId!))!;
    const dev = await get(b, a, `${F}/event/${enc(dm.eventId)}`);
    expect(dev.body.pdus[0].signatures[b.serverName]).toBeDefined();
    const later = await a.store.rooms.timeline(roomId, { dir: 'b', limit: 1 });
    const st = await get(b, a, `${F}/state/${enc(roomId)}?event_id=${enc(later[0].eventId)}`);
    expect((st.body.pdus as PDU[]).every((p) => p.unsigned === undefined)).toBe(true);
  });

  it('refuses servers not in the room (403), and bad input with 4xx', async () => {
    const { a, b, c, roomId, timeline } = await setup();
    const id = timeline[0].eventId;
    const rid = enc(roomId);
    // C has no user in the room.
    for (const path of [`${F}/event/${enc(id)}`, `${F}/state/${rid}?event_id=${enc(id)}`, `${F}/state_ids/${rid}?event_id=${enc(id)}`,
      `${F}/event_auth/${rid}/${enc(id)}`, `${F}/backfill/${rid}?v=${enc(id)}&limit=5`]) {
      expect(await get(c, a, path), path).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
    }
    expect(await post(c, a, `${F}/get_missing_events/${rid}`, { earliest_events: [], latest_events: [id] })).toMatchObject({ status: 403 });

    // Unknown events and rooms: 404.
    const unknownRoom = enc(`!nope:${a.serverName}`);
    for (const path of [`${F}/event/${enc('$nope')}`, `${F}/state/${rid}?event_id=${enc('$nope')}`, `${F}/state_ids/${rid}?event_id=${enc('$nope')}`,
      `${F}/event_auth/${rid}/${enc('$nope')}`, `${F}/state/${unknownRoom}?event_id=${enc(id)}`, `${F}/backfill/${unknownRoom}?v=${enc(id)}&limit=5`,
      `${F}/event_auth/${unknownRoom}/${enc(id)}`]) {
      expect(await get(b, a, path), path).toMatchObject({ status: 404, errcode: 'M_NOT_FOUND' });
    }
    expect(await post(b, a, `${F}/get_missing_events/${unknownRoom}`, { earliest_events: [], latest_events: [id] })).toMatchObject({ status: 404 });

    // Missing or malformed parameters: 400.
    for (const path of [`${F}/state/${rid}`, `${F}/state_ids/${rid}`, `${F}/backfill/${rid}?limit=5`, `${F}/backfill/${rid}?v=${enc(id)}`,
      `${F}/backfill/${rid}?v=${enc(id)}&limit=many`, `${F}/backfill/${rid}?v=${enc(id)}&limit=-1`]) {
      const r = await get(b, a, path);
      expect(r.status, path).toBe(400);
    }
    for (const body of [{}, { earliest_events: [] }, { earliest_events: 'x', latest_events: [] }, { earliest_events: [], latest_events: [1] },
      { earliest_events: [], latest_events: [], limit: 'ten' }, { earliest_events: [], latest_events: [], limit: -1 }, { earliest_events: [], latest_events: [], min_depth: 'x' }]) {
      expect((await post(b, a, `${F}/get_missing_events/${rid}`, body)).status, JSON.stringify(body)).toBe(400);
    }
    // An event of another room is not found through this room.
    const other = (await new TestClient(a).register('zed')).post('/_matrix/client/v3/createRoom', {});
    const otherRoom = (await other).body.room_id;
    expect(await get(b, a, `${F}/state_ids/${enc(otherRoom)}?event_id=${enc(id)}`)).toMatchObject({ status: 404 });
    // Unauthenticated requests never reach the handlers.
    expect((await a.handle(new Request(`http://x${F}/event/${enc(id)}`))).status).toBe(401);
  });

  it('a server that left may read the history of its time in the room, not what came after', async () => {
    const { a, b, alice, bob, roomId } = await setup();
    await bob.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/x`, { msgtype: 'm.text', body: 'while in' });
    const whileIn = await waitFor('the message on A', async () => (await a.store.rooms.timeline(roomId, { dir: 'b', limit: 5 })).find((e) => e.pdu.content.body === 'while in'));
    expect((await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`)).status).toBe(200);
    await waitFor("A to see Bob's leave", async () => (await a.store.rooms.membership(roomId, bob.userId!))?.membership === 'leave');
    const after = (await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/y`, { msgtype: 'm.text', body: 'after leave' })).body.event_id;
    expect((await get(b, a, `${F}/event/${enc(whileIn.eventId)}`)).status).toBe(200);
    expect(await get(b, a, `${F}/event/${enc(after)}`)).toMatchObject({ status: 403 });
    expect(await get(b, a, `${F}/backfill/${enc(roomId)}?v=${enc(after)}&limit=5`)).toMatchObject({ status: 403 });
  });
});

describe('history and membership endpoints under odd input', () => {
  it('no input from a server in the room yields a 500', async () => {
    const { hss: [a, b], errors } = await nodes(2);
    const { bob, roomId, alice } = await roomWithHistory(a, b, 2);
    void alice;
    const msg = (await a.store.rooms.timeline(roomId, { dir: 'b', limit: 1 }))[0].eventId;
    const rooms = [roomId, `!nope:${a.serverName}`, 'garbage', '!', '%2F..%2F'];
    const events = [msg, '$nope', 'x', '$', ''];
    const users = [bob.userId!, 'x', '@a:b', `@zz:${b.serverName}`];
    const queries = ['', '?event_id=', `?event_id=${enc(msg)}`, '?event_id=%FF', '?v=&limit=1', `?v=${enc(msg)}&limit=99999999999`, '?ver=&ver=11', '?limit=1e3&v=x'];
    const bodies: unknown[] = [
      {}, { event: null }, { room_version: 5, event: {} }, { room_version: '11', event: { type: 'm.room.member' } },
      { room_version: '11', event: { type: 'm.room.member', content: 'x', sender: 5, prev_events: 'x', auth_events: [[1]] }, invite_room_state: 'x' },
      { earliest_events: null, latest_events: [null] }, { earliest_events: [], latest_events: [msg], limit: 0, min_depth: -5 },
      { type: 'm.room.member', content: { membership: 'leave' }, sender: bob.userId, state_key: bob.userId, room_id: roomId, depth: 'x' },
      { type: 'm.room.member', content: { membership: 'knock' }, sender: bob.userId, state_key: bob.userId, room_id: roomId, depth: 1, origin_server_ts: 1, prev_events: [msg], auth_events: ['$nope'], signatures: { x: 'y' }, hashes: 7 },
    ];
    const F1 = '/_matrix/federation/v1';
    const F2 = '/_matrix/federation/v2';
    const calls: [string, string, unknown?][] = [];
    for (const r of rooms) {
      for (const q of queries) calls.push(['GET', `${F1}/state/${enc(r)}${q}`], ['GET', `${F1}/state_ids/${enc(r)}${q}`], ['GET', `${F1}/backfill/${enc(r)}${q}`]);
      for (const e of events) {
        calls.push(['GET', `${F1}/event_auth/${enc(r)}/${enc(e)}`], ['GET', `${F1}/event/${enc(e)}`]);
        for (const body of bodies) {
          calls.push(['PUT', `${F2}/invite/${enc(r)}/${enc(e)}`, body], ['PUT', `${F2}/send_leave/${enc(r)}/${enc(e)}`, body],
            ['PUT', `${F1}/send_leave/${enc(r)}/${enc(e)}`, body], ['PUT', `${F1}/send_knock/${enc(r)}/${enc(e)}`, body]);
        }
      }
      for (const u of users) for (const q of ['', '?ver=11', '?ver=1']) calls.push(['GET', `${F1}/make_leave/${enc(r)}/${enc(u)}${q}`], ['GET', `${F1}/make_knock/${enc(r)}/${enc(u)}${q}`]);
      for (const body of bodies) calls.push(['POST', `${F1}/get_missing_events/${enc(r)}`, body]);
    }
    for (const [method, path, body] of calls) {
      const res = await b.federation.rawRequest(a.serverName, method, path, body as any);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBeLessThan(500);
      await res.arrayBuffer();
    }
    expect(errors).toEqual([]);
  });
});
