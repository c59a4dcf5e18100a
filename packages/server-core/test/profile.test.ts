import { describe, expect, it } from 'vitest';
import { createMemoryHomeserver, type Homeserver } from '../src/index.ts';
import { enc, newHomeserver, TestClient } from './helpers/hs.ts';

async function setup(hs?: Homeserver) {
  const server = hs ?? (await newHomeserver());
  const alice = await new TestClient(server).register('alice');
  const bob = await new TestClient(server).register('bob');
  return { hs: server, alice, bob };
}

const profile = (userId: string, field = '') => `/_matrix/client/v3/profile/${enc(userId)}${field ? '/' + field : ''}`;
const member = async (hs: Homeserver, roomId: string, userId: string) => (await hs.store.rooms.stateEvent(roomId, 'm.room.member', userId))?.pdu.content;

describe('profile', () => {
  it('sets, reads and clears the display name and avatar', async () => {
    const { alice } = await setup();
    const me = alice.userId!;
    // Registration sets the display name to the localpart.
    expect(await alice.get(profile(me), { token: null })).toEqual({ status: 200, body: { displayname: 'alice' } });
    expect(await alice.get(profile(me, 'avatar_url'))).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await alice.put(profile(me, 'displayname'), { displayname: 'Alice' })).toEqual({ status: 200, body: {} });
    expect(await alice.put(profile(me, 'avatar_url'), { avatar_url: 'mxc://example.org/abc' })).toEqual({ status: 200, body: {} });
    expect((await alice.get(profile(me), { token: null })).body).toEqual({ displayname: 'Alice', avatar_url: 'mxc://example.org/abc' });
    expect((await alice.get(profile(me, 'displayname'))).body).toEqual({ displayname: 'Alice' });
    expect((await alice.get(profile(me, 'avatar_url'))).body).toEqual({ avatar_url: 'mxc://example.org/abc' });
    // Hydrogen's r0 prefix.
    expect((await alice.get(`/_matrix/client/r0/profile/${enc(me)}/displayname`)).body).toEqual({ displayname: 'Alice' });
    // Empty string and null clear a field.
    expect((await alice.put(profile(me, 'displayname'), { displayname: '' })).status).toBe(200);
    expect((await alice.put(profile(me, 'avatar_url'), { avatar_url: null })).status).toBe(200);
    expect((await alice.get(profile(me))).body).toEqual({});
    expect(await alice.get(profile(me, 'displayname'))).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
  });

  it('refuses changes to other users, unknown users and bad input', async () => {
    const { hs, alice, bob } = await setup();
    expect(await alice.put(profile(bob.userId!, 'displayname'), { displayname: 'Bobby' })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    expect(await alice.put(profile(bob.userId!, 'avatar_url'), { avatar_url: 'mxc://a/b' })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    expect(await alice.put(profile(alice.userId!, 'displayname'), { displayname: 'x' }, { token: null })).toMatchObject({ status: 401 });
    expect(await alice.get(profile(`@nobody:${hs.serverName}`))).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await alice.get(profile(`@nobody:${hs.serverName}`, 'displayname'))).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await alice.get(profile('@someone:remote.example'))).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await alice.get(profile('not-a-user-id'))).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    expect(await alice.get('/_matrix/client/v3/profile/%ZZ')).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    const me = profile(alice.userId!, 'displayname');
    expect(await alice.put(me, {})).toMatchObject({ status: 400, body: { errcode: 'M_MISSING_PARAM' } });
    expect(await alice.put(me, { displayname: 5 })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await alice.put(me, { displayname: 'x'.repeat(257) })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await alice.put(me, '["displayname"]')).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await alice.put(me, 'not json')).toMatchObject({ status: 400, body: { errcode: 'M_NOT_JSON' } });
    expect(await alice.put(profile(alice.userId!, 'avatar_url'), { avatar_url: 'https://example.org/a.png' })).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    expect(await alice.put(profile(alice.userId!, 'avatar_url'), { avatar_url: ['mxc://a/b'] })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect((await alice.get(profile(alice.userId!))).body).toEqual({ displayname: 'alice' });
  });

  it('sends an updated join event into every joined room, keeping the other member content', async () => {
    const { hs, alice, bob } = await setup();
    const me = alice.userId!;
    const r1 = await hs.rooms.createRoom(me, { preset: 'public_chat' });
    const r2 = await hs.rooms.createRoom(bob.userId!, { preset: 'public_chat' });
    await hs.rooms.join(me, r2, 'hello');
    const r3 = await hs.rooms.createRoom(bob.userId!, { preset: 'public_chat' });
    await hs.rooms.join(me, r3);
    await hs.rooms.setMembership(me, r3, me, 'leave');
    // A join carrying a custom key.
    await hs.rooms.write(r1, (w) => hs.rooms.append(w, { type: 'm.room.member', sender: me, stateKey: me, content: { membership: 'join', 'org.example.flair': 'gold' } }));

    const left = await hs.store.rooms.stateEvent(r3, 'm.room.member', me);
    expect((await alice.put(profile(me, 'displayname'), { displayname: 'Alice A.' })).status).toBe(200);
    expect(await member(hs, r1, me)).toEqual({ membership: 'join', displayname: 'Alice A.', 'org.example.flair': 'gold' });
    expect(await member(hs, r2, me)).toEqual({ membership: 'join', displayname: 'Alice A.' }); // the join reason is not repeated
    expect((await hs.store.rooms.stateEvent(r2, 'm.room.member', me))?.prevContent).toEqual({ membership: 'join', displayname: 'alice', reason: 'hello' });
    expect((await hs.store.rooms.stateEvent(r3, 'm.room.member', me))?.eventId).toBe(left?.eventId); // not in that room any more
    const ev = await hs.store.rooms.stateEvent(r1, 'm.room.member', me);
    expect(ev?.sender).toBe(me);
    expect(ev?.prevContent).toEqual({ membership: 'join', 'org.example.flair': 'gold' });

    expect((await alice.put(profile(me, 'avatar_url'), { avatar_url: 'mxc://example.org/face' })).status).toBe(200);
    expect(await member(hs, r2, me)).toEqual({ membership: 'join', displayname: 'Alice A.', avatar_url: 'mxc://example.org/face' });

    // Setting the same value again sends nothing.
    const before = (await hs.store.rooms.stateEvent(r2, 'm.room.member', me))?.eventId;
    expect((await alice.put(profile(me, 'avatar_url'), { avatar_url: 'mxc://example.org/face' })).status).toBe(200);
    expect((await hs.store.rooms.stateEvent(r2, 'm.room.member', me))?.eventId).toBe(before);

    // Clearing removes the key from the member events.
    expect((await alice.put(profile(me, 'displayname'), { displayname: null })).status).toBe(200);
    expect(await member(hs, r1, me)).toEqual({ membership: 'join', avatar_url: 'mxc://example.org/face', 'org.example.flair': 'gold' });
    // New rooms pick up the profile.
    const r4 = await hs.rooms.createRoom(me, {});
    expect(await member(hs, r4, me)).toEqual({ membership: 'join', avatar_url: 'mxc://example.org/face' });
  });
});

describe('user directory', () => {
  it('finds local users and members of shared rooms by id or display name', async () => {
    const { hs, alice, bob } = await setup();
    await bob.put(profile(bob.userId!, 'displayname'), { displayname: 'Robert Gardener' });
    await bob.put(profile(bob.userId!, 'avatar_url'), { avatar_url: 'mxc://example.org/bob' });
    const carol = await new TestClient(hs).register('carol');
    await new TestClient(hs).register('gardenia');
    const search = (body: unknown) => alice.post('/_matrix/client/v3/user_directory/search', body);

    let res = await search({ search_term: 'garden' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      results: [
        { user_id: `@gardenia:${hs.serverName}`, display_name: 'gardenia' },
        { user_id: bob.userId, display_name: 'Robert Gardener', avatar_url: 'mxc://example.org/bob' },
      ],
      limited: false,
    });
    expect((await search({ search_term: 'ROBERT' })).body.results.map((r: any) => r.user_id)).toEqual([bob.userId]);
    expect((await search({ search_term: 'CAROL' })).body.results).toEqual([{ user_id: carol.userId, display_name: 'carol' }]);
    res = await search({ search_term: '', limit: 2 });
    expect(res.body.results).toHaveLength(2);
    expect(res.body.limited).toBe(true);
    expect((await search({ search_term: 'zzz' })).body).toEqual({ results: [], limited: false });

    // A room member whose member event carries another display name than the account's.
    const room = await hs.rooms.createRoom(alice.userId!, { preset: 'public_chat' });
    await hs.rooms.write(room, (w) =>
      hs.rooms.append(w, { type: 'm.room.member', sender: alice.userId!, stateKey: alice.userId!, content: { membership: 'join', displayname: 'Queen of Hearts' } }),
    );
    expect((await search({ search_term: 'hearts' })).body.results).toEqual([{ user_id: alice.userId, display_name: 'Queen of Hearts' }]);

    expect(await search({})).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await search('["search_term"]')).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await search({ search_term: 3 })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await search({ search_term: 'a', limit: -1 })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await search({ search_term: 'a', limit: 'many' })).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await alice.post('/_matrix/client/v3/user_directory/search', { search_term: 'a' }, { token: null })).toMatchObject({ status: 401 });
  });
});

describe('presence', () => {
  it('sets and reads presence, with a stream position', async () => {
    let now = 1_700_000_000_000;
    const hs = await createMemoryHomeserver({ clock: () => now, log: (e) => console.error(e) });
    const { alice, bob } = await setup(hs);
    const me = alice.userId!;
    const path = `/_matrix/client/v3/presence/${enc(me)}/status`;
    expect((await alice.get(path)).body).toEqual({ presence: 'offline' });
    const streamBefore = hs.store.stream;
    expect(await alice.put(path, { presence: 'online', status_msg: 'Gardening' })).toEqual({ status: 200, body: {} });
    const rec = await hs.store.userData.presence(me);
    expect(rec).toEqual({ userId: me, presence: 'online', statusMsg: 'Gardening', lastActiveTs: now, stream: streamBefore + 1 });
    expect(hs.store.stream).toBe(streamBefore + 1);
    now += 1000;
    expect((await alice.get(path)).body).toEqual({ presence: 'online', last_active_ago: 1000, status_msg: 'Gardening', currently_active: true });
    now += 10 * 60 * 1000;
    expect((await alice.get(path)).body).toMatchObject({ presence: 'online', currently_active: false });
    expect((await alice.put(path, { presence: 'unavailable' })).status).toBe(200);
    expect((await alice.get(path)).body).toEqual({ presence: 'unavailable', last_active_ago: 0, currently_active: false });
    expect((await hs.store.userData.presenceSince(streamBefore + 1)).map((p) => p.presence)).toEqual(['unavailable']);

    // Others see it once they share a room.
    expect(await bob.get(path)).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    const room = await hs.rooms.createRoom(me, { preset: 'public_chat' });
    await hs.rooms.join(bob.userId!, room);
    expect((await bob.get(path)).body).toMatchObject({ presence: 'unavailable' });
  });

  it('refuses other users, unknown users and bad bodies', async () => {
    const { hs, alice, bob } = await setup();
    const mine = `/_matrix/client/v3/presence/${enc(alice.userId!)}/status`;
    expect(await alice.put(`/_matrix/client/v3/presence/${enc(bob.userId!)}/status`, { presence: 'online' })).toMatchObject({ status: 403, body: { errcode: 'M_FORBIDDEN' } });
    expect(await alice.get(`/_matrix/client/v3/presence/${enc(`@ghost:${hs.serverName}`)}/status`)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await alice.get(`/_matrix/client/v3/presence/${enc('@x:remote.example')}/status`)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await alice.get(`/_matrix/client/v3/presence/garbage/status`)).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    for (const body of [{}, [], ['online'], { presence: 'busy' }, { presence: 1 }, { presence: 'online', status_msg: 5 }, { presence: 'online', status_msg: 'x'.repeat(2000) }]) {
      expect(await alice.put(mine, body), JSON.stringify(body)).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    }
    expect(await alice.put(mine, '{')).toMatchObject({ status: 400, body: { errcode: 'M_NOT_JSON' } });
    expect(await alice.get(mine, { token: null })).toMatchObject({ status: 401 });
    // status_msg null clears it.
    await alice.put(mine, { presence: 'online', status_msg: 'x' });
    await alice.put(mine, { presence: 'online', status_msg: null });
    expect((await alice.get(mine)).body.status_msg).toBeUndefined();
  });
});
