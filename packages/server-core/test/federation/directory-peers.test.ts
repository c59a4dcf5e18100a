/**
 * Rooms are found through the peers (issue #7): a node whose user joins a listed public room publishes
 * a local alias for it and lists it; nodes announce their directories to each other (signed, over the
 * transport's broadcast) and each keeps the aggregated directory of every active node, pulled from a
 * peer on coming online; publicRooms lists it; aliases resolve through the directory when their server
 * is gone; and a room is joined through any node that lists it.
 */
import { describe, expect, it } from 'vitest';
import {
  createHomeserver, createNetworkedMemoryHomeserver, directoryAnnouncement, encodeAnnouncement, InProcessNetwork, MemoryEngine, MIGRATIONS,
  randomSeed, signJson, signingKeyFromSeed, serverNameOf, checkAnnouncement, type FederationTransport, type Homeserver, type JsonObject,
} from '../../src/index.ts';
import type { PeerDirectoryOptions } from '../../src/services/peer-directory.ts';
import { publicKeyOfServer } from '../../src/federation/x-matrix.ts';
import { enc, TestClient } from '../helpers/hs.ts';
import { stopAfterTest, waitFor } from './helpers.ts';

const V3 = '/_matrix/client/v3';
const PULL = '/_matrix/federation/unstable/org.matrix_p2p/directory';
/** No periodic rounds within a test: what a node learns, it learns from a change, a pull or a start. */
const QUIET: PeerDirectoryOptions = { refreshMs: 60_000, expireMs: 120_000 };

/** `n` nodes on one in-process network; `clocks[i]`, when given, is node i's clock. */
async function network(n: number, pd: PeerDirectoryOptions = QUIET, clocks: (() => number)[] = []) {
  const net = new InProcessNetwork();
  const errors: unknown[] = [];
  const add = async (clock?: () => number) => {
    const hs = await createNetworkedMemoryHomeserver(net, { log: (e) => errors.push(e), peerDirectory: pd, ...(clock ? { clock } : {}) });
    stopAfterTest(hs);
    return hs;
  };
  const hss: Homeserver[] = [];
  for (let i = 0; i < n; i++) hss.push(await add(clocks[i]));
  return { net, hss, errors, add };
}

async function user(hs: Homeserver, name: string) {
  return new TestClient(hs).register(name);
}

async function createRoom(c: TestClient, body: object): Promise<string> {
  const r = await c.post(`${V3}/createRoom`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.room_id;
}

async function bodies(hs: Homeserver, roomId: string): Promise<string[]> {
  const evs = await hs.store.rooms.timeline(roomId, { dir: 'f', limit: 10_000 });
  return evs.filter((e) => e.type === 'm.room.message').map((e) => String(e.pdu.content.body));
}

/** The entry for a room in a client's (aggregated) directory. */
async function entryOf(c: TestClient, roomId: string): Promise<any> {
  const r = await c.get(`${V3}/publicRooms`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return (r.body.chunk as any[]).find((e) => e.room_id === roomId);
}

const localAliases = async (hs: Homeserver, roomId: string) => (await hs.store.rooms.aliasesOfRoom(roomId)).map((a) => a.alias).sort();

describe('rooms are found and joined through the peers', () => {
  it('B joining a listed room publishes #name:B; with A gone, a new node C pulls the directory from B, finds the room, joins through B and talks with B', async () => {
    const { net, hss: [a, b], errors, add } = await network(2);
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const roomId = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Cheese Lovers', topic: 'All about fromage', room_alias_name: 'cheese' });
    // A's room is announced to B at once (A's directory changed).
    await waitFor('B hears of the room', async () => b.peerDirectory.listedByPeers(roomId));
    // The creator's node already had an alias and a listing: nothing added.
    await a.peerDirectory.idle();
    expect(await localAliases(a, roomId)).toEqual([`#cheese:${a.serverName}`]);

    expect((await bob.post(`${V3}/join/${enc(`#cheese:${a.serverName}`)}`)).status).toBe(200);
    await waitFor('B publishes #cheese:B', async () => (await b.store.rooms.alias(`#cheese:${b.serverName}`))?.roomId === roomId);
    expect((await bob.get(`${V3}/directory/list/room/${enc(roomId)}`)).body).toEqual({ visibility: 'public' });
    expect((await bob.get(`${V3}/rooms/${enc(roomId)}/aliases`)).body).toEqual({ aliases: [`#cheese:${b.serverName}`] });
    // B's own (local) directory, as other servers see it over federation, lists it now.
    const fed = await a.federation.request<any>(b.serverName, 'GET', '/_matrix/federation/v1/publicRooms');
    expect(fed.chunk.map((e: any) => e.room_id)).toEqual([roomId]);
    // A learns that the room can be joined through B too.
    await waitFor('A lists B as a server of the room', async () => (await entryOf(alice, roomId))?.['org.matrix_p2p.servers'].length === 2);
    expect(await entryOf(alice, roomId)).toMatchObject({ 'org.matrix_p2p.servers': [a.serverName, b.serverName] });
    // Bob's join changed what A announces about the room (its members): A announces again at once, without
    // waiting for a round (none in this test), and B takes the new member count in.
    const announcedCount = () => b.peerDirectory.live().find((x) => x.origin === a.serverName)?.rooms.find((r) => r.room_id === roomId)?.num_joined_members;
    await waitFor('A announces two members', async () => announcedCount() === 2);

    net.setOnline(a.serverName, false);
    const c = await add();
    const carol = await user(c, 'carol');
    // No periodic round in this test and B announced before C existed: C knows the room only by pulling.
    const entry = await waitFor('C lists the room', () => entryOf(carol, roomId));
    expect(c.peerDirectory.stats.pulls).toBeGreaterThanOrEqual(1);
    expect(entry).toMatchObject({
      room_id: roomId, name: 'Cheese Lovers', topic: 'All about fromage', canonical_alias: `#cheese:${a.serverName}`, num_joined_members: 2,
      join_rule: 'public', world_readable: false, guest_can_join: false,
    });
    expect(entry['org.matrix_p2p.servers']).toContain(b.serverName);
    expect(entry['org.matrix_p2p.aliases']).toEqual(expect.arrayContaining([`#cheese:${a.serverName}`, `#cheese:${b.serverName}`]));
    // Found by a word of its topic, whatever the case; not by a word it lacks.
    const search = async (term: string) => ((await carol.post(`${V3}/publicRooms`, { filter: { generic_search_term: term } })).body.chunk as any[]).map((e) => e.room_id);
    expect(await search('FROMAGE')).toEqual([roomId]);
    expect(await search(`#cheese:${b.serverName}`)).toEqual([roomId]);
    expect(await search('brie')).toEqual([]);
    // #cheese:A resolves while A is gone, through the directory.
    const resolved = await carol.get(`${V3}/directory/room/${enc(`#cheese:${a.serverName}`)}`);
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    expect(resolved.body.room_id).toBe(roomId);
    expect(resolved.body.servers).toContain(b.serverName);

    // Joined by room id, no server given: through the nodes that list it (A is offline: B).
    const j = await carol.post(`${V3}/join/${enc(roomId)}`);
    expect(j.status, JSON.stringify(j.body)).toBe(200);
    await carol.put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/c1`, { msgtype: 'm.text', body: 'hello from C' });
    await waitFor('B gets C\'s message', async () => (await bodies(b, roomId)).includes('hello from C'));
    await bob.put(`${V3}/rooms/${enc(roomId)}/send/m.room.message/b1`, { msgtype: 'm.text', body: 'hi C, from B' });
    await waitFor('C gets B\'s message', async () => (await bodies(c, roomId)).includes('hi C, from B'));
    // C publishes it in turn.
    await waitFor('C publishes #cheese:C', async () => (await c.store.rooms.alias(`#cheese:${c.serverName}`))?.roomId === roomId);
    expect(errors).toEqual([]);
  });

  it('a joined room is published once some node lists it, and unpublished when the last local user leaves', async () => {
    const { hss: [a, b], errors } = await network(2);
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const roomId = await createRoom(alice, { preset: 'public_chat', name: 'Unlisted yet', room_alias_name: 'lobby' });
    expect((await bob.post(`${V3}/join/${enc(roomId)}?server_name=${a.serverName}`)).status).toBe(200);
    await b.peerDirectory.idle();
    // Public join rule, but nobody lists it: nothing is published.
    expect(await localAliases(b, roomId)).toEqual([]);
    expect((await b.store.rooms.room(roomId))?.published).toBeUndefined();

    // Listed on A after B's user joined: B publishes when the announcement arrives.
    expect((await alice.put(`${V3}/directory/list/room/${enc(roomId)}`, { visibility: 'public' })).status).toBe(200);
    await waitFor('B publishes #lobby:B', async () => (await localAliases(b, roomId)).includes(`#lobby:${b.serverName}`));
    expect((await b.store.rooms.room(roomId))?.published).toBe(1);
    await waitFor('A sees B list it', async () => (await entryOf(alice, roomId))?.['org.matrix_p2p.servers'].includes(b.serverName));

    // The last (only) local user leaves: the alias and the listing go, and A hears of it.
    expect((await bob.post(`${V3}/rooms/${enc(roomId)}/leave`)).status).toBe(200);
    await waitFor('B unpublishes', async () => (await localAliases(b, roomId)).length === 0 && (await b.store.rooms.room(roomId))?.published === undefined);
    await waitFor('A no longer lists B', async () => JSON.stringify((await entryOf(alice, roomId))?.['org.matrix_p2p.servers']) === JSON.stringify([a.serverName]));
    // Joining again publishes again.
    expect((await bob.post(`${V3}/join/${enc(roomId)}?server_name=${a.serverName}`)).status).toBe(200);
    await waitFor('B publishes again', async () => (await localAliases(b, roomId)).includes(`#lobby:${b.serverName}`));
    expect(errors).toEqual([]);
  });

  it('a listing or alias a user made stays when the last local user leaves', async () => {
    const { hss: [a, b], errors } = await network(2);
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const roomId = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Kept' });
    await waitFor('B hears of the room', async () => b.peerDirectory.listedByPeers(roomId));
    expect((await bob.post(`${V3}/join/${enc(roomId)}`)).status).toBe(200);
    await waitFor('B publishes #kept:B', async () => (await localAliases(b, roomId)).includes(`#kept:${b.serverName}`));
    expect((await bob.put(`${V3}/directory/room/${enc(`#mine:${b.serverName}`)}`, { room_id: roomId })).status).toBe(200);
    expect((await bob.post(`${V3}/rooms/${enc(roomId)}/leave`)).status).toBe(200);
    await waitFor('the auto alias goes', async () => !(await localAliases(b, roomId)).includes(`#kept:${b.serverName}`));
    expect(await localAliases(b, roomId)).toEqual([`#mine:${b.serverName}`]);
    expect(errors).toEqual([]);
  });

  it('names auto aliases after the canonical alias, else the name, else the room id, made unique', async () => {
    const { hss: [a, b], errors } = await network(2);
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    // #cheese:B is taken on B by another room.
    const bobsOwn = await createRoom(bob, { room_alias_name: 'cheese' });
    const cheese = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Whatever', room_alias_name: 'cheese' });
    const cafe = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Café Society!' });
    const nameless = await createRoom(alice, { preset: 'public_chat', visibility: 'public' });
    await waitFor('B hears of the rooms', async () => [cheese, cafe, nameless].every((r) => b.peerDirectory.listedByPeers(r)));
    for (const r of [cheese, cafe, nameless]) expect((await bob.post(`${V3}/join/${enc(r)}`)).status).toBe(200);
    await waitFor('B publishes the three', async () => (await Promise.all([cheese, cafe, nameless].map((r) => localAliases(b, r)))).every((l) => l.length === 1));
    expect(await localAliases(b, cheese)).toEqual([`#cheese-2:${b.serverName}`]);
    expect(await localAliases(b, bobsOwn)).toEqual([`#cheese:${b.serverName}`]);
    expect(await localAliases(b, cafe)).toEqual([`#cafe-society:${b.serverName}`]);
    const [namelessAlias] = await localAliases(b, nameless);
    expect(namelessAlias).toMatch(new RegExp(`^#room-[a-z0-9._=-]+:${b.serverName}$`));
    // A published the rooms without an alias on itself the same way.
    expect(await localAliases(a, cafe)).toEqual([`#cafe-society:${a.serverName}`]);
    expect(errors).toEqual([]);
  });

  it('expires a departed node by when its announcements were received, whatever its clock says; its last one replayed does not bring it back', async () => {
    // One fake time for all, each node's clock skewed: A a minute ahead, B 45 s behind, C right.
    let t = Date.now();
    const { net, hss: [a, b, c], errors } = await network(3, { refreshMs: 600_000, expireMs: 20_000 }, [() => t + 60_000, () => t - 45_000, () => t]);
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const carol = await user(c, 'carol');
    const solo = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Solo' });
    const stays = await createRoom(bob, { preset: 'public_chat', visibility: 'public', name: 'Stays' });
    await waitFor('C lists both', async () => (await entryOf(carol, solo)) && (await entryOf(carol, stays)));
    /** A round of `hs`'s announcement, once C has taken it in. */
    const round = async (hs: Homeserver) => {
      const before = c.peerDirectory.stats.accepted;
      hs.peerDirectory.announce();
      await hs.peerDirectory.idle();
      await waitFor('C takes the round in', async () => c.peerDirectory.stats.accepted > before);
    };
    // Rounds keep them listed past the expiry time.
    t += 15_000;
    await round(a);
    await round(b);
    t += 15_000;
    expect(await entryOf(carol, solo)).toBeDefined();
    // A's last announcement (newer than what C holds), then A goes.
    const last = encodeAnnouncement(await a.peerDirectory.ownAnnouncement());
    const evil = net.transportFor(() => 'evil');
    let accepted = c.peerDirectory.stats.accepted;
    await evil.broadcast!(last);
    await waitFor('C takes it in', async () => c.peerDirectory.stats.accepted > accepted);
    net.setOnline(a.serverName, false);
    t += 10_000;
    await round(b);
    t += 10_001;
    // 20 001 ms after C last received from A, 10 001 ms after B: A's room goes, B's stays.
    expect(await entryOf(carol, solo)).toBeUndefined();
    expect(c.peerDirectory.origins()).toEqual([b.serverName]);
    expect(await entryOf(carol, stays)).toMatchObject({ name: 'Stays', 'org.matrix_p2p.servers': [b.serverName] });
    // Replaying A's last announcement (still within the clock-skew window) does not bring A back.
    const stale = c.peerDirectory.stats.stale;
    accepted = c.peerDirectory.stats.accepted;
    await evil.broadcast!(last);
    await waitFor('C finds it stale', async () => c.peerDirectory.stats.stale > stale);
    expect(c.peerDirectory.stats.accepted).toBe(accepted);
    expect(await entryOf(carol, solo)).toBeUndefined();
    // A's own directory is not affected: it is its own.
    expect(await entryOf(alice, solo)).toMatchObject({ 'org.matrix_p2p.servers': [a.serverName] });
    expect(errors).toEqual([]);
  });

  it('paginates the aggregated directory; server=X asks X only; the federation endpoint answers with the local directory', async () => {
    const { hss: [a, b], errors } = await network(2);
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const onA: string[] = [];
    for (let i = 0; i < 3; i++) onA.push(await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: `A room ${i}` }));
    const onB: string[] = [];
    for (let i = 0; i < 2; i++) onB.push(await createRoom(bob, { preset: 'public_chat', visibility: 'public', name: `B room ${i}` }));
    const all = [...onA, ...onB].sort();
    await waitFor('B lists all five', async () => (await bob.get(`${V3}/publicRooms`)).body.total_room_count_estimate === 5);

    const seen: string[] = [];
    const pages: any[] = [];
    let since: string | undefined;
    do {
      const r = await bob.get(`${V3}/publicRooms?limit=2${since ? `&since=${since}` : ''}`);
      expect(r.status).toBe(200);
      expect(r.body.total_room_count_estimate).toBe(5);
      pages.push(r.body);
      seen.push(...r.body.chunk.map((e: any) => e.room_id));
      since = r.body.next_batch;
    } while (since);
    expect(pages.map((p) => p.chunk.length)).toEqual([2, 2, 1]);
    expect([...seen].sort()).toEqual(all);
    expect(pages[0].prev_batch).toBeUndefined();
    const back = await bob.post(`${V3}/publicRooms`, { limit: 2, since: pages[2].prev_batch });
    expect(back.body.chunk.map((e: any) => e.room_id)).toEqual(seen.slice(2, 4));
    // Filtered and paginated together.
    const f = await bob.post(`${V3}/publicRooms`, { limit: 2, filter: { generic_search_term: 'a room' } });
    expect(f.body.total_room_count_estimate).toBe(3);
    expect(f.body.chunk).toHaveLength(2);
    expect(f.body.chunk.every((e: any) => onA.includes(e.room_id))).toBe(true);

    // server=A: A's own directory, over federation, only.
    const fromA = await bob.get(`${V3}/publicRooms?server=${a.serverName}`);
    expect(fromA.status).toBe(200);
    expect(fromA.body.chunk.map((e: any) => e.room_id).sort()).toEqual([...onA].sort());
    expect(fromA.body.chunk[0]['org.matrix_p2p.servers']).toBeUndefined();
    // server=us is the aggregated directory.
    expect((await bob.get(`${V3}/publicRooms?server=${b.serverName}`)).body.total_room_count_estimate).toBe(5);
    // Other servers asking B get B's local directory only.
    const fed = await a.federation.request<any>(b.serverName, 'POST', '/_matrix/federation/v1/publicRooms', {});
    expect(fed.chunk.map((e: any) => e.room_id).sort()).toEqual([...onB].sort());
    expect(errors).toEqual([]);
  });

  it('a user who unlists the room or deletes the auto alias is not overridden: not by a profile change, not by leaving and joining again', async () => {
    const { hss: [a, b], errors } = await network(2);
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const roomId = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Opt Out' });
    await waitFor('B hears of the room', async () => b.peerDirectory.listedByPeers(roomId));
    expect((await bob.post(`${V3}/join/${enc(roomId)}`)).status).toBe(200);
    await waitFor('B publishes #opt-out:B', async () => (await localAliases(b, roomId)).includes(`#opt-out:${b.serverName}`));
    // Bob may manage the room's directory listing.
    const pl = (await alice.get(`${V3}/rooms/${enc(roomId)}/state/m.room.power_levels`)).body;
    expect((await alice.put(`${V3}/rooms/${enc(roomId)}/state/m.room.power_levels`, { ...pl, users: { ...pl.users, [bob.userId!]: 100 } })).status).toBe(200);
    await waitFor('B sees Bob promoted', async () => ((await b.store.rooms.stateEvent(roomId, 'm.room.power_levels', ''))?.pdu.content as any)?.users?.[bob.userId!] === 100);

    expect((await bob.put(`${V3}/directory/list/room/${enc(roomId)}`, { visibility: 'private' })).status).toBe(200);
    expect((await bob.delete(`${V3}/directory/room/${enc(`#opt-out:${b.serverName}`)}`)).status).toBe(200);
    const unlisted = async () => {
      await b.peerDirectory.idle();
      expect((await b.store.rooms.room(roomId))?.published).toBeUndefined();
      expect(await localAliases(b, roomId)).toEqual([]);
    };
    await unlisted();
    // A display name change is a new member event: not a join.
    expect((await bob.put(`${V3}/profile/${enc(bob.userId!)}/displayname`, { displayname: 'Robert' })).status).toBe(200);
    await waitFor('the new name is in the room', async () => ((await b.store.rooms.stateEvent(roomId, 'm.room.member', bob.userId!))?.pdu.content as any)?.displayname === 'Robert');
    await unlisted();
    // The opt-out is for the room: kept across leaving and joining again.
    expect((await bob.post(`${V3}/rooms/${enc(roomId)}/leave`)).status).toBe(200);
    await unlisted();
    expect((await bob.post(`${V3}/join/${enc(roomId)}`)).status).toBe(200);
    await unlisted();
    expect(errors).toEqual([]);
  });

  it('a published room that cannot be announced (a 300-character join rule) does not keep the node\'s other rooms from its peers', async () => {
    const { hss: [a, b], errors } = await network(2);
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const odd = await createRoom(alice, {
      preset: 'public_chat', visibility: 'public', name: 'Odd',
      initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'x'.repeat(300) } }, { type: 'm.room.history_visibility', content: { history_visibility: 'world_readable' } }],
    });
    // Listed on A (world readable), with its odd join rule.
    expect(await entryOf(alice, odd)).toMatchObject({ join_rule: 'x'.repeat(300) });
    const normal = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Normal' });
    await waitFor('B lists the normal room', () => entryOf(bob, normal));
    expect(await entryOf(bob, odd)).toBeUndefined();
    expect(b.peerDirectory.stats.rejected).toBe(0);
    expect(errors).toEqual([]);
  });

  it('an alias whose server answers is resolved by it: its 404 is final', async () => {
    const { hss: [a, b], errors } = await network(2);
    const bob = await user(b, 'bob');
    expect((await bob.get(`${V3}/directory/room/${enc(`#nope:${a.serverName}`)}`)).status).toBe(404);
    expect(errors).toEqual([]);
  });
});

describe('directory announcements between nodes', () => {
  async function mallory() {
    const key = await signingKeyFromSeed(randomSeed(), 'ed25519:p2p');
    return { key, name: serverNameOf(key.publicKey) };
  }
  const fakeRoom = (roomId = '!fake:nowhere') => ({
    room_id: roomId, aliases: [] as string[], name: 'Free stuff', num_joined_members: 999, join_rule: 'public', guest_can_join: false, world_readable: false,
  });
  const sign = (origin: string, key: Awaited<ReturnType<typeof mallory>>['key'], rooms: object[], ts: number) =>
    signJson(directoryAnnouncement(origin, ts, rooms as never) as unknown as JsonObject, origin, key);

  it('forged, misaddressed and replayed announcements change nothing; a valid one is listed', async () => {
    const { net, hss: [a, b], errors } = await network(2);
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const evil = net.transportFor(() => 'evil');
    const m = await mallory();
    const now = Date.now();
    const before = b.peerDirectory.stats.rejected;
    // In A's name, signed by Mallory.
    await evil.broadcast!(encodeAnnouncement((await sign(a.serverName, m.key, [fakeRoom()], now)) as never));
    // In Mallory's name, with an alias on A.
    await evil.broadcast!(encodeAnnouncement((await sign(m.name, m.key, [{ ...fakeRoom(), aliases: [`#free:${a.serverName}`] }], now)) as never));
    // Garbage.
    await evil.broadcast!(new TextEncoder().encode('{"type":"org.matrix_p2p.directory"'));
    await waitFor('B refuses the three', async () => b.peerDirectory.stats.rejected - before === 3);
    expect(await entryOf(bob, '!fake:nowhere')).toBeUndefined();

    // A's older announcement replayed after a newer one: the newer stays.
    const old = await a.peerDirectory.ownAnnouncement();
    await new Promise((r) => setTimeout(r, 5));
    const roomId = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'New' });
    await waitFor('B lists the new room', () => entryOf(bob, roomId));
    const stale = b.peerDirectory.stats.stale;
    await evil.broadcast!(encodeAnnouncement(old));
    await waitFor('B finds the replay stale', async () => b.peerDirectory.stats.stale > stale);
    expect(await entryOf(bob, roomId)).toBeDefined();
    // The same announcement again, its signature broken: found stale before the signature is checked.
    const held = await a.peerDirectory.ownAnnouncement();
    expect((await b.peerDirectory.receiveObject(held)).ok).toBe(true);
    const rejected = b.peerDirectory.stats.rejected;
    const broken = { ...held, signatures: { [a.serverName]: { 'ed25519:p2p': 'A'.repeat(86) } } };
    expect(await b.peerDirectory.receiveObject(broken)).toMatchObject({ ok: false, stale: true });
    expect(b.peerDirectory.stats.rejected).toBe(rejected);

    // Mallory's own, valid: listed, through her.
    await evil.broadcast!(encodeAnnouncement((await sign(m.name, m.key, [fakeRoom()], Date.now())) as never));
    const fake = await waitFor('B lists Mallory\'s room', () => entryOf(bob, '!fake:nowhere'));
    expect(fake['org.matrix_p2p.servers']).toEqual([m.name]);
    // A node's own announcement coming back (relayed) is not taken as another node's.
    await b.peerDirectory.receiveObject(await b.peerDirectory.ownAnnouncement());
    expect(b.peerDirectory.origins()).not.toContain(b.serverName);
    expect(errors).toEqual([]);
  });

  it('an alias is resolved from the directory only when its own server announced it: a canonical alias claimed by another node is not enough', async () => {
    const { net, hss: [a, b], errors } = await network(2);
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    // #lobby:A exists, but A does not list its room.
    await createRoom(alice, { preset: 'public_chat', name: 'Lobby', room_alias_name: 'lobby' });
    const m = await mallory();
    const evil = net.transportFor(() => 'evil');
    await evil.broadcast!(encodeAnnouncement((await sign(m.name, m.key, [{ ...fakeRoom('!evil:x'), canonical_alias: `#lobby:${a.serverName}` }], Date.now())) as never));
    await waitFor('B lists Mallory\'s room', () => entryOf(bob, '!evil:x'));
    net.setOnline(a.serverName, false);
    const r = await bob.get(`${V3}/directory/room/${enc(`#lobby:${a.serverName}`)}`);
    expect(r.status, JSON.stringify(r.body)).toBe(502);
    expect(b.peerDirectory.resolveAlias(`#lobby:${a.serverName}`)).toBeUndefined();
    // Nor is it joined through Mallory's claim.
    expect((await bob.post(`${V3}/join/${enc(`#lobby:${a.serverName}`)}`)).status).toBe(502);
    expect(errors).toEqual([]);
  });

  it('a node announcing someone else\'s room changes neither its name, its member count nor who is tried first to join it', async () => {
    const { hss: [a, b, c], net, errors } = await network(3);
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const carol = await user(c, 'carol');
    const roomId = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Cheese Lovers', topic: 'Fromage', room_alias_name: 'cheese' });
    await waitFor('B hears of the room', async () => b.peerDirectory.listedByPeers(roomId));
    expect((await bob.post(`${V3}/join/${enc(roomId)}`)).status).toBe(200);
    await waitFor('C sees A and B list it', async () => c.peerDirectory.serversFor(roomId).length === 2);
    // Mallory lists the real room id with her own fields, her own (signed) alias as its canonical alias, dated ahead.
    const m = await mallory();
    const evil = net.transportFor(() => 'evil');
    const forged = { ...fakeRoom(roomId), name: 'HIJACKED', topic: 'pwned', num_joined_members: 99999, aliases: [`#hijack:${m.name}`], canonical_alias: `#hijack:${m.name}` };
    await evil.broadcast!(encodeAnnouncement((await sign(m.name, m.key, [forged], Date.now() + 9_000)) as never));
    await waitFor('B and C hold Mallory\'s', async () => b.peerDirectory.serversFor(roomId).includes(m.name) && c.peerDirectory.serversFor(roomId).includes(m.name));
    // B is in the room: it describes it from its own state.
    expect(await entryOf(bob, roomId)).toMatchObject({ name: 'Cheese Lovers', topic: 'Fromage', num_joined_members: 2, canonical_alias: `#cheese:${a.serverName}` });
    // C is not: the fields of the node holding the room's canonical alias, the median member count.
    expect(await entryOf(carol, roomId)).toMatchObject({ name: 'Cheese Lovers', topic: 'Fromage', num_joined_members: 2, canonical_alias: `#cheese:${a.serverName}` });
    // Join candidates: the canonical alias's server first, Mallory (seen last) last.
    for (const hs of [b, c]) expect(hs.peerDirectory.serversFor(roomId)).toEqual([a.serverName, ...(hs === c ? [b.serverName] : []), m.name]);
    expect((await entryOf(carol, roomId))['org.matrix_p2p.servers']).toEqual([a.serverName, b.serverName, m.name]);
    expect(errors).toEqual([]);
  });

  it('takes one pull at a time: a node coming online pulls from one peer, not from every peer that becomes reachable', async () => {
    const { net, hss: [a, b], errors } = await network(2);
    const alice = await user(a, 'alice');
    const roomId = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Pulled once' });
    await waitFor('B hears of the room', async () => b.peerDirectory.listedByPeers(roomId));
    let name = '';
    let pulls = 0;
    const inner = net.transportFor(() => name);
    const transport: FederationTransport = { ...inner, fetch: (d, r) => (new URL(r.url).pathname === PULL && pulls++, inner.fetch(d, r)) };
    const c = await createHomeserver({ engine: new MemoryEngine(MIGRATIONS), transport, peerDirectory: QUIET, log: (e) => errors.push(e) });
    stopAfterTest(c);
    name = c.serverName;
    net.attach(c);
    await waitFor('C pulled', async () => c.peerDirectory.stats.pulls >= 1);
    await c.peerDirectory.idle();
    expect(pulls).toBe(1);
    expect(c.peerDirectory.listedByPeers(roomId)).toBe(true);
    expect(errors).toEqual([]);
  });

  it('refuses a pull answer larger than it would hold, without reading it to the end', async () => {
    const { net, hss: [a], errors } = await network(1);
    let read = 0;
    const huge = new ReadableStream<Uint8Array>({
      // An endless answer: only what is pulled from it is produced.
      pull(c) {
        read += 64 * 1024;
        c.enqueue(new Uint8Array(64 * 1024).fill(0x20));
      },
    });
    const handle = a.handle.bind(a);
    a.handle = async (req, remote) => (new URL(req.url).pathname === PULL ? new Response(huge, { headers: { 'content-type': 'application/json' } }) : handle(req, remote));
    let name = '';
    const c = await createHomeserver({ engine: new MemoryEngine(MIGRATIONS), transport: net.transportFor(() => name), peerDirectory: { ...QUIET, maxHeldBytes: 64 * 1024 }, log: (e) => errors.push(e) });
    stopAfterTest(c);
    name = c.serverName;
    net.attach(c);
    await waitFor('C tried to pull', async () => read > 0);
    await c.peerDirectory.idle();
    expect(c.peerDirectory.stats.pulls).toBe(0); // not an answer
    expect(read).toBeLessThanOrEqual(2 * 64 * 1024 + 64 * 1024 + 2 * 64 * 1024);
    expect(errors).toEqual([]);
  });

  it('holds announcements within a byte budget: new origins are refused when it is full, origins held longer stay and may update', async () => {
    const budget = 24 * 1024;
    const { net, hss: [a, b], errors } = await network(2, { ...QUIET, maxHeldBytes: budget });
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const first = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Here first' });
    await waitFor('B lists A\'s room', () => entryOf(bob, first));
    const evil = net.transportFor(() => 'evil');
    // Twenty fresh keys, each announcing ~4 KiB.
    const big = (i: number) => ({ ...fakeRoom(`!big${i}:nowhere`), topic: 'x'.repeat(4000) });
    const before = b.peerDirectory.stats.overBudget;
    const acceptedBefore = b.peerDirectory.stats.accepted;
    for (let i = 0; i < 20; i++) {
      const k = await mallory();
      await evil.broadcast!(encodeAnnouncement((await sign(k.name, k.key, [big(i)], Date.now())) as never));
    }
    await waitFor('B refuses some', async () => b.peerDirectory.stats.overBudget > before);
    await waitFor('B has taken all in', async () => b.peerDirectory.stats.accepted - acceptedBefore + b.peerDirectory.stats.overBudget - before >= 20);
    expect(b.peerDirectory.heldBytes).toBeLessThanOrEqual(budget);
    expect(b.peerDirectory.origins()).toContain(a.serverName);
    expect(b.peerDirectory.origins().length).toBeLessThan(21);
    // A, held first, still updates.
    const later = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Later' });
    await waitFor('B lists A\'s new room', () => entryOf(bob, later));
    expect(b.peerDirectory.heldBytes).toBeLessThanOrEqual(budget);
    expect(errors).toEqual([]);
  });

  it('the pull endpoint needs X-Matrix and answers our announcement and the live ones we hold, each verifiable', async () => {
    const { hss: [a, b, c], errors } = await network(3);
    const alice = await user(a, 'alice');
    const roomId = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Pulled' });
    await waitFor('B holds A\'s announcement', async () => b.peerDirectory.listedByPeers(roomId));
    const anon = await b.handle(new Request(`http://x${PULL}`));
    expect(anon.status).toBe(401);
    const res = await c.federation.request<{ announcements: JsonObject[] }>(b.serverName, 'GET', PULL);
    // B's first, then every live one it holds (C's own included: it announced its empty directory on start).
    expect(res.announcements[0].origin).toBe(b.serverName);
    expect(res.announcements.slice(1).map((x) => x.origin).sort()).toEqual([a.serverName, c.serverName].sort());
    const opts = { now: Date.now(), maxAgeMs: 60_000, maxFutureMs: 10_000, publicKeyOf: publicKeyOfServer };
    for (const x of res.announcements) expect((await checkAnnouncement(x, opts)).ok).toBe(true);
    expect((res.announcements.find((x) => x.origin === a.serverName)!.rooms as JsonObject[]).map((r) => r.room_id)).toEqual([roomId]);
    expect(errors).toEqual([]);
  });

  it('announces on start and periodically, and stops when the homeserver stops', async () => {
    const net = new InProcessNetwork();
    let name = '';
    let sent = 0;
    const inner = net.transportFor(() => name);
    const transport: FederationTransport = { ...inner, broadcast: async (m) => (sent++, inner.broadcast!(m)) };
    const errors: unknown[] = [];
    const hs = await createHomeserver({ engine: new MemoryEngine(MIGRATIONS), transport, peerDirectory: { refreshMs: 20 }, log: (e) => errors.push(e) });
    name = hs.serverName;
    net.attach(hs);
    await waitFor('a few rounds', async () => sent >= 3);
    await hs.stop();
    await hs.peerDirectory.idle();
    const after = sent;
    await new Promise((r) => setTimeout(r, 120));
    expect(sent).toBe(after);
    expect(errors).toEqual([]);
  });

  it('a node without federation lists its local directory only and runs no rounds', async () => {
    const hs = await createHomeserver({ engine: new MemoryEngine(MIGRATIONS) });
    stopAfterTest(hs);
    expect(hs.peerDirectory.active).toBe(false);
    const alice = await user(hs, 'alice');
    const roomId = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Local' });
    const r = await alice.get(`${V3}/publicRooms`);
    expect(r.body.chunk.map((e: any) => e.room_id)).toEqual([roomId]);
    expect(r.body.chunk[0]['org.matrix_p2p.servers']).toBeUndefined();
    // No auto alias either: nothing to be found through.
    expect(await localAliases(hs, roomId)).toEqual([]);
  });
});
