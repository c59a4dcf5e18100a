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

async function network(n: number, pd: PeerDirectoryOptions = QUIET) {
  const net = new InProcessNetwork();
  const errors: unknown[] = [];
  const add = async () => {
    const hs = await createNetworkedMemoryHomeserver(net, { log: (e) => errors.push(e), peerDirectory: pd });
    stopAfterTest(hs);
    return hs;
  };
  const hss: Homeserver[] = [];
  for (let i = 0; i < n; i++) hss.push(await add());
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

  it("drops the entries of a node that went away after the timeout, keeps those of the others", async () => {
    const { net, hss: [a, b, c], errors } = await network(3, { refreshMs: 40, expireMs: 400 });
    const alice = await user(a, 'alice');
    const bob = await user(b, 'bob');
    const carol = await user(c, 'carol');
    const solo = await createRoom(alice, { preset: 'public_chat', visibility: 'public', name: 'Solo' });
    const stays = await createRoom(bob, { preset: 'public_chat', visibility: 'public', name: 'Stays' });
    await waitFor('C lists both', async () => (await entryOf(carol, solo)) && (await entryOf(carol, stays)));
    // Periodic rounds keep them listed past the expiry time.
    await new Promise((r) => setTimeout(r, 600));
    expect(await entryOf(carol, solo)).toBeDefined();
    net.setOnline(a.serverName, false);
    await waitFor("A's room leaves C's directory", async () => !(await entryOf(carol, solo)), 5000);
    expect(c.peerDirectory.origins()).toEqual([b.serverName]);
    expect(await entryOf(carol, stays)).toMatchObject({ name: 'Stays', 'org.matrix_p2p.servers': [b.serverName] });
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
    await evil.broadcast!(encodeAnnouncement(old));
    await new Promise((r) => setTimeout(r, 20));
    expect(await entryOf(bob, roomId)).toBeDefined();

    // Mallory's own, valid: listed, through her.
    await evil.broadcast!(encodeAnnouncement((await sign(m.name, m.key, [fakeRoom()], Date.now())) as never));
    const fake = await waitFor('B lists Mallory\'s room', () => entryOf(bob, '!fake:nowhere'));
    expect(fake['org.matrix_p2p.servers']).toEqual([m.name]);
    // A node's own announcement coming back (relayed) is not taken as another node's.
    await b.peerDirectory.receiveObject(await b.peerDirectory.ownAnnouncement());
    expect(b.peerDirectory.origins()).not.toContain(b.serverName);
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
