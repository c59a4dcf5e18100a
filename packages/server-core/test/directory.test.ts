import { describe, expect, it } from 'vitest';
import type { Homeserver } from '../src/index.ts';
import { publicRoomsChunk } from '../src/services/directory.ts';
import { enc, newHomeserver, TestClient } from './helpers/hs.ts';

async function setup() {
  const hs = await newHomeserver();
  const alice = await new TestClient(hs).register('alice');
  const bob = await new TestClient(hs).register('bob');
  return { hs, alice, bob };
}

const aliasPath = (alias: string) => `/_matrix/client/v3/directory/room/${enc(alias)}`;

async function publicRoom(hs: Homeserver, userId: string, extra: Record<string, unknown> = {}): Promise<string> {
  return hs.rooms.createRoom(userId, { preset: 'public_chat', visibility: 'public', ...extra });
}

describe('room aliases', () => {
  it('creates, resolves and deletes a local alias', async () => {
    const { hs, alice } = await setup();
    const roomId = await hs.rooms.createRoom(alice.userId!, { preset: 'private_chat' });
    const alias = `#lobby:${hs.serverName}`;
    expect(await alice.put(aliasPath(alias), { room_id: roomId })).toMatchObject({ status: 200, body: {} });
    expect(await alice.get(aliasPath(alias), { token: null })).toEqual({ status: 200, body: { room_id: roomId, servers: [hs.serverName] } });
    expect(await alice.put(aliasPath(alias), { room_id: roomId })).toMatchObject({ status: 409, body: { errcode: 'M_UNKNOWN' } });
    expect((await alice.get(`/_matrix/client/v3/rooms/${enc(roomId)}/aliases`)).body).toEqual({ aliases: [alias] });
    expect(await alice.delete(aliasPath(alias))).toMatchObject({ status: 200, body: {} });
    expect(await alice.get(aliasPath(alias))).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await alice.delete(aliasPath(alias))).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect((await alice.get(`/_matrix/client/v3/rooms/${enc(roomId)}/aliases`)).body).toEqual({ aliases: [] });
  });

  it('refuses aliases on other servers, malformed aliases, unknown rooms and rooms the user is not in', async () => {
    const { hs, alice, bob } = await setup();
    const roomId = await hs.rooms.createRoom(alice.userId!, { preset: 'private_chat' });
    expect(await alice.put(aliasPath('#x:other.example'), { room_id: roomId })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    for (const bad of ['nohash', `#:${hs.serverName}`, '#nocolon', `#sp ace:${hs.serverName}`, `#${'a'.repeat(300)}:${hs.serverName}`]) {
      expect(await alice.put(aliasPath(bad), { room_id: roomId }), bad).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
      expect((await alice.get(aliasPath(bad))).status, bad).toBe(400);
    }
    expect(await alice.put(aliasPath(`#a:${hs.serverName}`), { room_id: 'not-a-room' })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    expect(await alice.put(aliasPath(`#a:${hs.serverName}`), { room_id: `!unknown:${hs.serverName}` })).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await bob.put(aliasPath(`#a:${hs.serverName}`), { room_id: roomId })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    expect(await alice.put(aliasPath(`#a:${hs.serverName}`), {})).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await alice.put(aliasPath(`#a:${hs.serverName}`), [roomId])).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await alice.put(aliasPath(`#a:${hs.serverName}`), { room_id: 5 })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await alice.put(aliasPath(`#a:${hs.serverName}`), '{nope')).toMatchObject({ status: 400, body: { errcode: 'M_NOT_JSON' } });
    expect(await alice.put(aliasPath(`#a:${hs.serverName}`), { room_id: roomId }, { token: null })).toMatchObject({ status: 401 });
    // A remote alias cannot be resolved without federation.
    expect(await alice.get(aliasPath('#x:other.example'))).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
  });

  it('lets only the creator or a room admin delete an alias', async () => {
    const { hs, alice, bob } = await setup();
    const carol = await new TestClient(hs).register('carol');
    const roomId = await publicRoom(hs, alice.userId!);
    await hs.rooms.join(bob.userId!, roomId);
    await hs.rooms.join(carol.userId!, roomId);
    const bobs = `#bobs:${hs.serverName}`;
    const alices = `#alices:${hs.serverName}`;
    expect((await bob.put(aliasPath(bobs), { room_id: roomId })).status).toBe(200);
    expect((await alice.put(aliasPath(alices), { room_id: roomId })).status).toBe(200);
    // Carol (power 0) created neither.
    expect(await carol.delete(aliasPath(bobs))).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    // Bob may not delete Alice's, but may delete his own.
    expect(await bob.delete(aliasPath(alices))).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    expect((await bob.put(aliasPath(`#bobs2:${hs.serverName}`), { room_id: roomId })).status).toBe(200);
    expect((await bob.delete(aliasPath(`#bobs2:${hs.serverName}`))).status).toBe(200);
    // Alice (power 100) may delete Bob's.
    expect((await alice.delete(aliasPath(bobs))).status).toBe(200);
    // A creator who has left the room may still delete their alias.
    expect((await carol.put(aliasPath(`#carols:${hs.serverName}`), { room_id: roomId })).status).toBe(200);
    await hs.rooms.setMembership(carol.userId!, roomId, carol.userId!, 'leave');
    expect((await carol.delete(aliasPath(`#carols:${hs.serverName}`))).status).toBe(200);
    // Bob made moderator at the canonical alias level may delete others' aliases.
    const pl = (await hs.store.rooms.stateEvent(roomId, 'm.room.power_levels', ''))!.pdu.content as any;
    await hs.rooms.setState(alice.userId!, roomId, 'm.room.power_levels', '', { ...pl, users: { ...pl.users, [bob.userId!]: 50 } });
    expect((await bob.delete(aliasPath(alices))).status).toBe(200);
  });

  it('drops a deleted alias from the room canonical alias event', async () => {
    const { hs, alice } = await setup();
    const roomId = await hs.rooms.createRoom(alice.userId!, { preset: 'public_chat', room_alias_name: 'main' });
    const main = `#main:${hs.serverName}`;
    const alt = `#alt:${hs.serverName}`;
    expect((await alice.put(aliasPath(alt), { room_id: roomId })).status).toBe(200);
    await hs.rooms.setState(alice.userId!, roomId, 'm.room.canonical_alias', '', { alias: main, alt_aliases: [alt] });
    expect((await alice.delete(aliasPath(alt))).status).toBe(200);
    let ca = (await hs.store.rooms.stateEvent(roomId, 'm.room.canonical_alias', ''))!.pdu.content;
    expect(ca).toEqual({ alias: main, alt_aliases: [] });
    expect((await alice.delete(aliasPath(main))).status).toBe(200);
    ca = (await hs.store.rooms.stateEvent(roomId, 'm.room.canonical_alias', ''))!.pdu.content;
    expect(ca).toEqual({ alt_aliases: [] });
  });

  it('lists local aliases to joined members (and anyone for world-readable rooms) only', async () => {
    const { hs, alice, bob } = await setup();
    const roomId = await hs.rooms.createRoom(alice.userId!, { preset: 'private_chat', room_alias_name: 'secret' });
    expect((await alice.get(`/_matrix/client/v3/rooms/${enc(roomId)}/aliases`)).body).toEqual({ aliases: [`#secret:${hs.serverName}`] });
    expect(await bob.get(`/_matrix/client/v3/rooms/${enc(roomId)}/aliases`)).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    expect(await bob.get(`/_matrix/client/v3/rooms/${enc(`!nope:${hs.serverName}`)}/aliases`)).toMatchObject({ status: 403 });
    expect(await bob.get(`/_matrix/client/v3/rooms/nonsense/aliases`)).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    await hs.rooms.setState(alice.userId!, roomId, 'm.room.history_visibility', '', { history_visibility: 'world_readable' });
    expect((await bob.get(`/_matrix/client/v3/rooms/${enc(roomId)}/aliases`)).status).toBe(200);
  });
});

describe('directory visibility', () => {
  it('gets and sets a room visibility; only room admins may change it', async () => {
    const { hs, alice, bob } = await setup();
    const roomId = await hs.rooms.createRoom(alice.userId!, { preset: 'public_chat' });
    const path = `/_matrix/client/v3/directory/list/room/${enc(roomId)}`;
    expect(await alice.get(path, { token: null })).toEqual({ status: 200, body: { visibility: 'private' } });
    expect((await alice.put(path, { visibility: 'public' })).status).toBe(200);
    expect((await alice.get(path)).body).toEqual({ visibility: 'public' });
    expect((await hs.store.rooms.room(roomId))?.published).toBe(1);
    // Bob is not in the room, then is but without power.
    expect(await bob.put(path, { visibility: 'private' })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    await hs.rooms.join(bob.userId!, roomId);
    expect(await bob.put(path, { visibility: 'private' })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    expect((await alice.put(path, { visibility: 'private' })).status).toBe(200);
    expect((await alice.get(path)).body).toEqual({ visibility: 'private' });
    // Defaults to public; the room record keeps its other fields.
    const before = await hs.store.rooms.room(roomId);
    expect((await alice.put(path, {})).status).toBe(200);
    expect(await hs.store.rooms.room(roomId)).toEqual({ ...before, published: 1 });
    // Errors.
    expect(await alice.put(path, { visibility: 'secret' })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await alice.put(path, '[]')).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await alice.put(path, '"public"')).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await alice.get(`/_matrix/client/v3/directory/list/room/${enc(`!nope:${hs.serverName}`)}`)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await alice.put(`/_matrix/client/v3/directory/list/room/${enc(`!nope:${hs.serverName}`)}`, { visibility: 'public' })).toMatchObject({ status: 404 });
    expect(await alice.get('/_matrix/client/v3/directory/list/room/garbage')).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
  });
});

describe('publicRooms', () => {
  it('lists published rooms from their current state', async () => {
    const { hs, alice, bob } = await setup();
    const roomId = await hs.rooms.createRoom(alice.userId!, {
      preset: 'public_chat', visibility: 'public', name: 'Cheese', topic: 'Tasty cheese', room_alias_name: 'cheese',
      creation_content: { type: 'm.space' },
      initial_state: [
        { type: 'm.room.avatar', content: { url: 'mxc://example.org/abc' } },
        { type: 'm.room.history_visibility', content: { history_visibility: 'world_readable' } },
        { type: 'm.room.guest_access', content: { guest_access: 'can_join' } },
      ],
    });
    await hs.rooms.join(bob.userId!, roomId);
    await hs.rooms.createRoom(alice.userId!, { preset: 'public_chat' }); // not published
    await hs.rooms.createRoom(alice.userId!, { preset: 'private_chat', visibility: 'public' }); // published but invite-only
    const res = await alice.get('/_matrix/client/v3/publicRooms', { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      chunk: [{
        room_id: roomId, name: 'Cheese', topic: 'Tasty cheese', canonical_alias: `#cheese:${hs.serverName}`, num_joined_members: 2,
        world_readable: true, guest_can_join: true, join_rule: 'public', avatar_url: 'mxc://example.org/abc', room_type: 'm.space',
      }],
      total_room_count_estimate: 1,
    });
    expect((await alice.post('/_matrix/client/v3/publicRooms', {})).body).toEqual(res.body);
    expect((await alice.get(`/_matrix/client/v3/publicRooms?server=${hs.serverName}`)).body).toEqual(res.body);
    expect(await publicRoomsChunk(hs, [roomId, `!unknown:${hs.serverName}`])).toEqual(res.body.chunk);
  });

  it('omits absent fields and reads the plain-text topic of rich topics', async () => {
    const { hs, alice } = await setup();
    const roomId = await publicRoom(hs, alice.userId!, {
      initial_state: [{ type: 'm.room.topic', content: { 'm.topic': { 'm.text': [{ mimetype: 'text/html', body: '<b>hi</b>' }, { body: 'hi' }] } } }],
    });
    const [entry] = await publicRoomsChunk(hs, [roomId]);
    expect(entry).toEqual({ room_id: roomId, num_joined_members: 1, world_readable: false, guest_can_join: false, join_rule: 'public', topic: 'hi' });
  });

  it('searches name, topic, canonical alias and room id, and filters by room type', async () => {
    const { hs, alice } = await setup();
    const a = await publicRoom(hs, alice.userId!, { name: 'Gardening Club' });
    const b = await publicRoom(hs, alice.userId!, { topic: 'All about GARDENS' });
    const c = await publicRoom(hs, alice.userId!, { room_alias_name: 'garden-chat' });
    const d = await publicRoom(hs, alice.userId!, { name: 'Cooking', creation_content: { type: 'm.space' } });
    const search = async (filter: unknown) =>
      ((await alice.post('/_matrix/client/v3/publicRooms', { filter })).body.chunk as { room_id: string }[]).map((e) => e.room_id).sort();
    expect(await search({ generic_search_term: 'garden' })).toEqual([a, b, c].sort());
    expect(await search({ generic_search_term: 'cook' })).toEqual([d]);
    expect(await search({ generic_search_term: d.slice(1, 8) })).toEqual([d]);
    expect(await search({ generic_search_term: 'nothing-matches' })).toEqual([]);
    expect(await search({ room_types: ['m.space'] })).toEqual([d]);
    expect(await search({ room_types: [null] })).toEqual([a, b, c].sort());
    expect(await search({})).toEqual([a, b, c, d].sort());
    expect(await search(null)).toEqual([a, b, c, d].sort());
    const res = await alice.post('/_matrix/client/v3/publicRooms', { filter: { generic_search_term: 'garden' }, include_all_networks: true });
    expect(res.body.total_room_count_estimate).toBe(3);
    // A third-party network we do not have lists nothing.
    expect((await alice.post('/_matrix/client/v3/publicRooms', { third_party_instance_id: 'irc' })).body).toEqual({ chunk: [], total_room_count_estimate: 0 });
  });

  it('paginates forwards and backwards with opaque tokens, largest rooms first', async () => {
    const { hs, alice } = await setup();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await publicRoom(hs, alice.userId!, { name: `room ${i}` }));
    const users = await Promise.all(['u1', 'u2', 'u3'].map((n) => new TestClient(hs).register(n)));
    for (const u of users) await hs.rooms.join(u.userId!, ids[3]);
    await hs.rooms.join(users[0].userId!, ids[1]);
    const expected = [ids[3], ids[1], ...[ids[0], ids[2], ids[4]].sort()];

    const seen: string[] = [];
    let since: string | undefined;
    const pages: any[] = [];
    do {
      const q = since ? `&since=${enc(since)}` : '';
      const res = await alice.get(`/_matrix/client/v3/publicRooms?limit=2${q}`);
      expect(res.status).toBe(200);
      expect(res.body.total_room_count_estimate).toBe(5);
      pages.push(res.body);
      seen.push(...res.body.chunk.map((e: any) => e.room_id));
      since = res.body.next_batch;
    } while (since);
    expect(seen).toEqual(expected);
    expect(pages.map((p) => p.chunk.length)).toEqual([2, 2, 1]);
    expect(pages[0].prev_batch).toBeUndefined();
    expect(pages[0].chunk[0].num_joined_members).toBe(4);
    // Back from the last page: the previous page again.
    const back = await alice.post('/_matrix/client/v3/publicRooms', { limit: 2, since: pages[2].prev_batch });
    expect(back.body.chunk.map((e: any) => e.room_id)).toEqual(expected.slice(2, 4));
    expect(back.body.next_batch).toBeDefined();
    const first = await alice.post('/_matrix/client/v3/publicRooms', { limit: 2, since: back.body.prev_batch });
    expect(first.body.chunk.map((e: any) => e.room_id)).toEqual(expected.slice(0, 2));
    expect(first.body.prev_batch).toBeUndefined();
    // limit 0 or absent: everything.
    expect((await alice.get('/_matrix/client/v3/publicRooms?limit=0')).body.chunk).toHaveLength(5);
  });

  it('rejects bad input without a server error, and other servers without federation', async () => {
    const { hs, alice } = await setup();
    await publicRoom(hs, alice.userId!);
    expect(await alice.get('/_matrix/client/v3/publicRooms?server=other.example')).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await alice.post('/_matrix/client/v3/publicRooms?server=other.example', {})).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    for (const q of ['limit=abc', 'limit=-1', 'limit=1e3', 'since=garbage', 'since=f-1']) {
      expect(await alice.get(`/_matrix/client/v3/publicRooms?${q}`), q).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    }
    for (const body of [{ limit: 'ten' }, { limit: 1.5 }, { filter: { generic_search_term: 5 } }, { filter: { room_types: 'm.space' } }, { since: 7 }, [1], [], 'null', '"x"']) {
      expect(await alice.post('/_matrix/client/v3/publicRooms', body), JSON.stringify(body)).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    }
    expect(await alice.post('/_matrix/client/v3/publicRooms', { since: 'zzz' })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    expect(await alice.post('/_matrix/client/v3/publicRooms', {}, { token: null })).toMatchObject({ status: 401 });
    // A page past the end is empty.
    expect((await alice.get('/_matrix/client/v3/publicRooms?since=f99')).body).toMatchObject({ chunk: [], prev_batch: 'b1' });
  });
});
