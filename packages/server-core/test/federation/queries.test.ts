/**
 * Queries across in-process nodes (spec: server-server API, "Querying for information", "Published
 * Room Directory", "Content Repository"): remote profiles, remote aliases (and joining by one), another
 * server's public rooms, and remote media through the authenticated client media endpoints. The
 * federation endpoints refuse unauthenticated requests and bad input.
 */
import { describe, expect, it } from 'vitest';
import { filenameOf, parseMultipart, remoteMediaKey } from '../../src/services/media.ts';
import type { JsonValue } from '../../src/kernel/types.ts';
import { enc, TestClient } from '../helpers/hs.ts';
import { federationStatus, nodes, waitFor } from './helpers.ts';

const V3 = '/_matrix/client/v3';
const F = '/_matrix/federation/v1';
async function two() {
  const { net, hss: [a, b], errors } = await nodes(2);
  const alice = await new TestClient(a).register('alice');
  const bob = await new TestClient(b).register('bob');
  return { net, a, b, alice, bob, errors };
}

/** Upload bytes as a client; returns the media id. */
async function upload(c: TestClient, bytes: Uint8Array, type: string, filename?: string): Promise<string> {
  const res = await c.hs.handle(new Request(`http://localhost/_matrix/media/v3/upload${filename ? `?filename=${enc(filename)}` : ''}`, {
    method: 'POST', headers: { authorization: `Bearer ${c.token}`, 'content-type': type }, body: bytes as Uint8Array<ArrayBuffer>,
  }));
  const body = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(200);
  return String(body.content_uri).split('/').pop()!;
}

async function download(c: TestClient, path: string): Promise<{ status: number; headers: Headers; bytes: Uint8Array; json?: any }> {
  const res = await c.hs.handle(new Request(`http://localhost${path}`, { headers: c.token ? { authorization: `Bearer ${c.token}` } : {} }));
  const bytes = new Uint8Array(await res.arrayBuffer());
  let json: any;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) json = JSON.parse(new TextDecoder().decode(bytes));
  return { status: res.status, headers: res.headers, bytes, json };
}

describe('remote profiles', () => {
  it("a user on B reads alice's profile on A, whole or by field", async () => {
    const { a, alice, bob, errors } = await two();
    await alice.put(`${V3}/profile/${enc(alice.userId!)}/displayname`, { displayname: 'Alice A.' });
    await alice.put(`${V3}/profile/${enc(alice.userId!)}/avatar_url`, { avatar_url: `mxc://${a.serverName}/face` });
    expect(await bob.get(`${V3}/profile/${enc(alice.userId!)}`)).toEqual({ status: 200, body: { displayname: 'Alice A.', avatar_url: `mxc://${a.serverName}/face` } });
    expect(await bob.get(`${V3}/profile/${enc(alice.userId!)}/displayname`)).toEqual({ status: 200, body: { displayname: 'Alice A.' } });
    expect(await bob.get(`${V3}/profile/${enc(alice.userId!)}/avatar_url`)).toEqual({ status: 200, body: { avatar_url: `mxc://${a.serverName}/face` } });
    await alice.put(`${V3}/profile/${enc(alice.userId!)}/avatar_url`, { avatar_url: null });
    expect(await bob.get(`${V3}/profile/${enc(alice.userId!)}/avatar_url`)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await bob.get(`${V3}/profile/${enc(`@nobody:${a.serverName}`)}`)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(errors).toEqual([]);
  });

  it('answers 502 when the remote server cannot be reached, 404 for a server that does not exist', async () => {
    const { net, a, alice, bob } = await two();
    net.setOnline(a.serverName, false);
    expect(await bob.get(`${V3}/profile/${enc(alice.userId!)}`)).toMatchObject({ status: 502 });
    expect((await bob.get(`${V3}/profile/${enc('@x:nowhere.example')}`)).status).toBe(502);
  });
});

describe('remote room aliases', () => {
  it('resolves #alias:A from B with the servers in the room (A first), and joins by it end to end', async () => {
    const { hss: [a, b, c], errors } = await nodes(3);
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const carol = await new TestClient(c).register('carol');
    const roomId = (await alice.post(`${V3}/createRoom`, { preset: 'public_chat', name: 'Lobby', room_alias_name: 'lobby' })).body.room_id as string;
    const alias = `#lobby:${a.serverName}`;
    expect((await carol.post(`${V3}/join/${enc(roomId)}?via=${a.serverName}`)).status).toBe(200);
    await waitFor('A sees carol', async () => (await a.store.rooms.membership(roomId, carol.userId!))?.membership === 'join');

    const r = await bob.get(`${V3}/directory/room/${enc(alias)}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({ room_id: roomId, servers: [a.serverName, c.serverName] });
    expect(await bob.get(`${V3}/directory/room/${enc(`#nope:${a.serverName}`)}`)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    expect(await bob.post(`${V3}/join/${enc(`#nope:${a.serverName}`)}`)).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });

    const j = await bob.post(`${V3}/join/${enc(alias)}`);
    expect(j.status, JSON.stringify(j.body)).toBe(200);
    expect(j.body.room_id).toBe(roomId);
    expect((await bob.get(`${V3}/rooms/${enc(roomId)}/state/m.room.name`)).body).toEqual({ name: 'Lobby' });
    await waitFor('A sees bob', async () => (await a.store.rooms.membership(roomId, bob.userId!))?.membership === 'join');
    expect(errors).toEqual([]);
  });

  it('an unreachable alias server is a 502 for the directory and for a join alike', async () => {
    const { net, a, bob } = await two();
    net.setOnline(a.serverName, false);
    expect((await bob.get(`${V3}/directory/room/${enc(`#x:${a.serverName}`)}`)).status).toBe(502);
    expect(await bob.post(`${V3}/join/${enc(`#x:${a.serverName}`)}`)).toMatchObject({ status: 502 });
  });
});

describe("another server's public rooms", () => {
  it('lists A\'s published rooms from B with GET and POST (with a filter)', async () => {
    const { a, alice, bob, errors } = await two();
    const mk = async (name: string, topic: string) => (await alice.post(`${V3}/createRoom`, { preset: 'public_chat', name, topic, visibility: 'public' })).body.room_id as string;
    const r1 = await mk('Gardening', 'plants');
    const r2 = await mk('Cooking', 'food');
    const g = await bob.get(`${V3}/publicRooms?server=${a.serverName}`);
    expect(g.status, JSON.stringify(g.body)).toBe(200);
    expect(g.body.chunk.map((e: any) => e.room_id).sort()).toEqual([r1, r2].sort());
    expect(g.body.total_room_count_estimate).toBe(2);
    const page = await bob.get(`${V3}/publicRooms?server=${a.serverName}&limit=1`);
    expect(page.body.chunk).toHaveLength(1);
    expect(page.body.next_batch).toBeDefined();
    const p2 = await bob.get(`${V3}/publicRooms?server=${a.serverName}&limit=1&since=${page.body.next_batch}`);
    expect(p2.body.chunk[0].room_id).not.toBe(page.body.chunk[0].room_id);
    const f = await bob.post(`${V3}/publicRooms?server=${a.serverName}`, { filter: { generic_search_term: 'plan' } });
    expect(f.status, JSON.stringify(f.body)).toBe(200);
    expect(f.body.chunk).toEqual([expect.objectContaining({ room_id: r1, name: 'Gardening', topic: 'plants', num_joined_members: 1, join_rule: 'public' })]);
    // B's own directory is the aggregated one of every node (issue #7): A's rooms, through A. A bad server name is refused.
    const mine = await waitFor("B's directory lists A's rooms", async () => ((await bob.get(`${V3}/publicRooms`)).body.chunk as any[]).length === 2 && (await bob.get(`${V3}/publicRooms`)).body);
    expect(mine.chunk.map((e: any) => [e.room_id, e['org.matrix_p2p.servers']]).sort()).toEqual([[r1, [a.serverName]], [r2, [a.serverName]]].sort());
    expect((await bob.get(`${V3}/publicRooms?server=${enc('bad server/x')}`)).status).toBe(400);
    expect(errors).toEqual([]);
  });
});

describe('remote media', () => {
  it('downloads mxc://A/id through B (authenticated), caches it, and serves it while A is offline', async () => {
    const { net, a, b, alice, bob, errors } = await two();
    const bytes = new Uint8Array(3000).map((_, i) => (i * 7 + 3) % 256);
    const id = await upload(alice, bytes, 'image/png', 'pic ü.png');
    const path = `/_matrix/client/v1/media/download/${a.serverName}/${id}`;

    // The legacy unauthenticated endpoint does not fetch new remote media.
    expect((await download(new TestClient(b), `/_matrix/media/v3/download/${a.serverName}/${id}`)).status).toBe(404);

    const d = await download(bob, path);
    expect(d.status).toBe(200);
    expect(d.bytes).toEqual(bytes);
    expect(d.headers.get('content-type')).toBe('image/png');
    expect(filenameOf(d.headers.get('content-disposition'))).toBe('pic ü.png');
    expect(await b.store.userData.media(remoteMediaKey(a.serverName, id))).toBeDefined();

    net.setOnline(a.serverName, false);
    const again = await download(bob, `${path}/other.png`);
    expect(again.status).toBe(200);
    expect(again.bytes).toEqual(bytes);
    expect(filenameOf(again.headers.get('content-disposition'))).toBe('other.png');
    expect((await download(bob, `/_matrix/client/v1/media/thumbnail/${a.serverName}/${id}?width=32&height=32`)).status).toBe(200);
    // Once cached, the legacy endpoint serves it too.
    expect((await download(new TestClient(b), `/_matrix/media/v3/download/${a.serverName}/${id}`)).status).toBe(200);
    // Uncached media of an unreachable server: 502; unknown media of a reachable one: 404.
    expect((await download(bob, `/_matrix/client/v1/media/download/${a.serverName}/unknownmedia`)).status).toBe(502);
    net.setOnline(a.serverName, true);
    expect((await download(bob, `/_matrix/client/v1/media/download/${a.serverName}/unknownmedia`)).json).toMatchObject({ errcode: 'M_NOT_FOUND' });
    expect(errors).toEqual([]);
  });

  it('the federation download answers multipart/mixed: a JSON part, then the media', async () => {
    const { a, b, alice } = await two();
    const id = await upload(alice, new TextEncoder().encode('hello\r\n--world'), 'text/plain', 'a.txt');
    const res = await b.federation.rawRequest(a.serverName, 'GET', `${F}/media/download/${id}`);
    expect(res.status).toBe(200);
    const ct = res.headers.get('content-type')!;
    expect(ct).toMatch(/^multipart\/mixed; boundary=/);
    const parts = parseMultipart(new Uint8Array(await res.arrayBuffer()), ct.split('boundary=')[1])!;
    expect(parts).toHaveLength(2);
    expect(parts[0].headers.get('content-type')).toBe('application/json');
    expect(new TextDecoder().decode(parts[0].body)).toBe('{}');
    expect(parts[1].headers.get('content-type')).toBe('text/plain');
    expect(parts[1].headers.get('content-disposition')).toBe('inline; filename="a.txt"');
    expect(new TextDecoder().decode(parts[1].body)).toBe('hello\r\n--world');
    // Thumbnails of non-images are refused; of images, the original is sent.
    const t = await b.federation.rawRequest(a.serverName, 'GET', `${F}/media/thumbnail/${id}?width=10&height=10`);
    expect(t.status).toBe(400);
  });
});

describe('multipart parsing', () => {
  it('parses parts with and without headers, and refuses malformed bodies', () => {
    const te = new TextEncoder();
    const body = te.encode('preamble\r\n--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b\r\n\r\nraw\r\n--b--\r\nepilogue');
    const parts = parseMultipart(body, 'b')!;
    expect(parts.map((p) => new TextDecoder().decode(p.body))).toEqual(['{}', 'raw']);
    expect(parts[1].headers.get('content-type')).toBeNull();
    expect(parseMultipart(te.encode('no delimiters'), 'b')).toBeUndefined();
    expect(parseMultipart(te.encode('--b\r\nX: y\r\n\r\nunterminated'), 'b')).toBeUndefined();
    expect(filenameOf('attachment; filename="a \\"b\\".txt"')).toBe('a "b".txt');
    expect(filenameOf("inline; filename*=utf-8''%E2%82%AC.png")).toBe('€.png');
    expect(filenameOf(null)).toBeUndefined();
  });
});

describe('federation query endpoints', () => {
  it('refuse unauthenticated requests (401) and bad input (4xx), never 500', async () => {
    const { a, b, alice, errors } = await two();
    const roomId = (await alice.post(`${V3}/createRoom`, { preset: 'public_chat', room_alias_name: 'r' })).body.room_id as string;
    const id = await upload(alice, new Uint8Array([1, 2, 3]), 'image/png');
    const ok: [string, string, JsonValue?][] = [
      ['GET', `${F}/query/directory?room_alias=${enc(`#r:${a.serverName}`)}`],
      ['GET', `${F}/query/profile?user_id=${enc(alice.userId!)}`],
      ['GET', `${F}/publicRooms`],
      ['POST', `${F}/publicRooms`, {}],
      ['GET', `${F}/media/download/${id}`],
      ['GET', `${F}/media/thumbnail/${id}?width=1&height=1`],
    ];
    for (const [m, p, body] of ok) {
      const res = await a.handle(new Request(`http://x${p}`, { method: m, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined }));
      expect({ status: res.status, body: await res.json() }, `${m} ${p}`).toMatchObject({ status: 401, body: { errcode: 'M_UNAUTHORIZED' } });
      expect((await b.federation.rawRequest(a.serverName, m, p, body)).status, `${m} ${p} signed`).toBe(200);
    }
    expect(await b.federation.request(a.serverName, 'GET', `${F}/query/directory?room_alias=${enc(`#r:${a.serverName}`)}`)).toEqual({ room_id: roomId, servers: [a.serverName] });

    const status = async (method: string, path: string, body?: JsonValue) => (await federationStatus(b.federation.request(a.serverName, method, path, body))).status;
    const bad: [string, string, JsonValue?][] = [
      ['GET', `${F}/query/directory`],
      ['GET', `${F}/query/directory?room_alias=nope`],
      ['GET', `${F}/query/directory?room_alias=${enc('#x:elsewhere.example')}`],
      ['GET', `${F}/query/directory?room_alias=${enc(`#unknown:${a.serverName}`)}`],
      ['GET', `${F}/query/profile`],
      ['GET', `${F}/query/profile?user_id=alice`],
      ['GET', `${F}/query/profile?user_id=${enc('@x:elsewhere.example')}`],
      ['GET', `${F}/query/profile?user_id=${enc(`@ghost:${a.serverName}`)}`],
      ['GET', `${F}/query/profile?user_id=${enc(alice.userId!)}&field=avatar_url`],
      ['GET', `${F}/query/profile?user_id=${enc(alice.userId!)}&field=m.unknown`],
      ['GET', `${F}/publicRooms?limit=abc`],
      ['GET', `${F}/publicRooms?since=zzz`],
      ['GET', `${F}/publicRooms?include_all_networks=maybe`],
      ['POST', `${F}/publicRooms`, { limit: 'x' }],
      ['POST', `${F}/publicRooms`, { filter: { generic_search_term: 5 } }],
      ['GET', `${F}/media/download/${enc('../etc')}`],
      ['GET', `${F}/media/download/unknown`],
      ['GET', `${F}/media/thumbnail/${id}`],
      ['GET', `${F}/media/thumbnail/${id}?width=a&height=1`],
    ];
    for (const [m, p, body] of bad) {
      const s = await status(m, p, body);
      expect(s >= 400 && s < 500, `${m} ${p} ${JSON.stringify(body)} → ${s}`).toBe(true);
    }
    expect(await b.federation.request(a.serverName, 'GET', `${F}/query/profile?user_id=${enc(alice.userId!)}&field=displayname`)).toEqual({ displayname: 'alice' });
    expect(errors).toEqual([]);
  });
});
