/**
 * Real libp2p in Node: a rendezvous and nodes that find each other through it and talk HTTP over relayed
 * connections (WebRTC between browsers is the e2e suite's: e2e/p2p-*.spec.ts). Then two real homeservers
 * federating over it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryHomeserver, decodeBase64, type FederationTransport } from '@matrix-p2p/server-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRendezvous, type Rendezvous } from '../../../rendezvous/src/index.ts';
import { DEFAULT_RENDEZVOUS_PORT, createP2PNode, findRendezvous, serveHomeserver, transportFromNode, type P2PNode } from '../src/index.ts';
import { HTTP_PROTOCOL, MAX_BROADCAST_BYTES } from '../src/constants.ts';
import { enc, TestClient } from '../../server-core/test/helpers/hs.ts';

async function waitFor<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const seed = (n: number) => new Uint8Array(32).fill(n);
const FAST = { announceIntervalMs: 1_000, webrtc: false, dial: { baseDelayMs: 100, fallbackAfterMs: 1_000 } } as const;

let dir: string;
let rv: Rendezvous;
const nodes: P2PNode[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rendezvous-'));
  rv = await startRendezvous({ port: 0, keyFile: join(dir, 'key') });
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await rv?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function node(n: number, extra: Partial<Parameters<typeof createP2PNode>[0]> = {}): Promise<P2PNode> {
  const p = await createP2PNode({ seed: seed(n), rendezvousAddrs: rv.multiaddrs, ...FAST, ...extra });
  nodes.push(p);
  return p;
}

/**
 * A memory homeserver federating over a libp2p node made from its own key (meta.signing_seed): the node can only
 * be made once the homeserver exists, so its transport is bound late (listeners registered meanwhile are passed on).
 */
async function homeserverOverLibp2p(opts: Omit<Parameters<typeof createMemoryHomeserver>[0] & object, 'transport'> = {}) {
  let p2p: P2PNode | undefined;
  const reach: ((name: string) => void)[] = [];
  const hear: ((m: Uint8Array) => void)[] = [];
  const transport: FederationTransport = {
    fetch: (d, r) => (p2p ? p2p.request(d, r) : Promise.reject(new Error('not started'))),
    onPeerReachable: (l) => void reach.push(l),
    broadcast: async (m) => p2p?.broadcast(m),
    onBroadcast: (l) => void hear.push(l),
  };
  const hs = await createMemoryHomeserver({ ...opts, transport });
  const seedB64 = await hs.store.getMeta<string>('signing_seed');
  p2p = await createP2PNode({ seed: decodeBase64(seedB64!), rendezvousAddrs: rv.multiaddrs, ...FAST });
  nodes.push(p2p);
  expect(p2p.serverName).toBe(hs.serverName);
  const real = transportFromNode(p2p);
  for (const l of reach) real.onPeerReachable!(l);
  for (const l of hear) real.onBroadcast!(l);
  serveHomeserver(p2p, hs);
  await p2p.start();
  return { hs, p2p };
}

describe('rendezvous', () => {
  it('serves its multiaddrs on the websocket port, with CORS; a restart with the same key file keeps its PeerId', async () => {
    expect(rv.keyCreated).toBe(true);
    expect(rv.multiaddrs[0]).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/ws/p2p/${rv.peerId}$`));
    const json = await fetch(`${rv.httpUrl}/rendezvous.json`);
    expect(json.headers.get('access-control-allow-origin')).toBe('*');
    expect(await json.json()).toEqual({ peerId: rv.peerId, multiaddrs: rv.multiaddrs });
    expect((await (await fetch(`${rv.httpUrl}/multiaddr`)).text()).trim()).toBe(rv.multiaddrs.join('\n'));
    expect((await fetch(`${rv.httpUrl}/nope`)).status).toBe(404);
    const pre = await fetch(`${rv.httpUrl}/rendezvous.json`, { method: 'OPTIONS', headers: { 'access-control-request-private-network': 'true' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-private-network')).toBe('true');
    // The page's discovery helper: the first URL that answers wins.
    expect(await findRendezvous([`${rv.httpUrl}/nope`, `${rv.httpUrl}/rendezvous.json`])).toEqual(rv.multiaddrs);
    expect(DEFAULT_RENDEZVOUS_PORT).toBe(9090);

    const key = await readFile(join(dir, 'key'));
    const again = await startRendezvous({ port: 0, keyFile: join(dir, 'key') });
    try {
      expect(again.keyCreated).toBe(false);
      expect(again.peerId).toBe(rv.peerId);
      expect(await readFile(join(dir, 'key'))).toEqual(key);
    } finally {
      await again.stop();
    }
  });
});

describe('nodes through the rendezvous (relayed)', () => {
  it('discover each other, exchange requests both ways with the right remote server name, and refuse the client API', async () => {
    const a = await node(1);
    const b = await node(2);
    const seen: string[] = [];
    a.on('peer', (p) => seen.push(p.serverName));
    const handler = (me: string) => async (req: Request, remote: string) =>
      Response.json({ me, remote, path: new URL(req.url).pathname, bytes: (await req.arrayBuffer()).byteLength });
    a.onRequest(handler('a'));
    b.onRequest(handler('b'));
    await a.start();
    await b.start();
    await waitFor(() => a.peers().length === 1 && b.peers().length === 1, 15_000, 'both to see each other');
    expect(a.peers()[0]).toMatchObject({ serverName: b.serverName, kind: 'relay', direct: false });
    expect(seen).toEqual([b.serverName]);
    expect(rv.reservations()).toBeGreaterThanOrEqual(2);

    const ab = await a.request(b.serverName, new Request('http://federation.invalid/_matrix/federation/v1/echo', { method: 'POST', body: new Uint8Array(100_000) }));
    expect(await ab.json()).toEqual({ me: 'b', remote: a.serverName, path: '/_matrix/federation/v1/echo', bytes: 100_000 });
    const ba = await b.request(a.serverName, new Request('http://federation.invalid/_matrix/key/v2/server'));
    expect(await ba.json()).toEqual({ me: 'a', remote: b.serverName, path: '/_matrix/key/v2/server', bytes: 0 });
    const client = await b.request(a.serverName, new Request('http://federation.invalid/_matrix/client/v3/sync'));
    expect(client.status).toBe(403);

    // Keep-alive: sequential requests reuse one stream instead of opening one each.
    const httpStreams = () => a.libp2p!.getConnections().flatMap((c) => c.streams).filter((st) => st.protocol === HTTP_PROTOCOL && st.direction === 'outbound' && st.status === 'open');
    for (let i = 0; i < 5; i++) {
      const r = await a.request(b.serverName, new Request(`http://federation.invalid/_matrix/federation/v1/send/${i}`, { method: 'PUT', body: `x${i}` }));
      expect((await r.json()).bytes).toBe(2);
    }
    expect(httpStreams().length).toBe(1);

    const gone = new Promise<string>((resolve) => a.on('peer-gone', (p) => resolve(p.serverName)));
    await b.stop();
    expect(await gone).toBe(b.serverName);
    await expect(a.request(b.serverName, new Request('http://x/_matrix/federation/v1/version'))).rejects.toThrow();
  });
});

describe('a rendezvous that restarts', () => {
  it('nodes reconnect to it (same key, same port), reserve again, and newcomers find them', async () => {
    const rdir = await mkdtemp(join(tmpdir(), 'rendezvous-restart-'));
    let r = await startRendezvous({ port: 0, keyFile: join(rdir, 'key') });
    const port = Number(r.multiaddrs[0]!.split('/')[4]);
    const extra = { rendezvousAddrs: r.multiaddrs, dial: { baseDelayMs: 100, maxDelayMs: 500, fallbackAfterMs: 1_000 } };
    const a = await node(11, extra);
    await a.start();
    await waitFor(() => a.rendezvousConnected(), 10_000, 'a to reach the rendezvous');
    await r.stop();
    await waitFor(() => !a.rendezvousConnected(), 10_000, 'a to notice');
    r = await startRendezvous({ port, keyFile: join(rdir, 'key') });
    try {
      await waitFor(() => a.rendezvousConnected(), 15_000, 'a to reconnect');
      await waitFor(() => r.reservations() >= 1, 15_000, 'a to reserve a relay slot again');
      const c = await node(12, extra);
      await c.start();
      await waitFor(() => c.peers().some((p) => p.serverName === a.serverName), 15_000, 'a newcomer to reach a');
      const res = await c.request(a.serverName, new Request('http://x/_matrix/federation/v1/version'));
      expect(res.status).toBe(503); // a has no handler: the transport answers for it
    } finally {
      await r.stop();
      await rm(rdir, { recursive: true, force: true });
    }
  });
});

describe('two homeservers federating over libp2p', () => {
  it('a user joins a room on the other server and they chat both ways', async () => {
    const make = () => homeserverOverLibp2p();
    const A = await make();
    const B = await make();
    await waitFor(() => A.p2p.peers().some((p) => p.serverName === B.hs.serverName), 15_000, 'A to reach B');

    const alice = await new TestClient(A.hs).register('alice');
    const bob = await new TestClient(B.hs).register('bob');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat', name: 'Over libp2p' })).body.room_id;
    const j = await bob.post(`/_matrix/client/v3/join/${enc(roomId)}?via=${A.hs.serverName}`);
    expect(j.status, JSON.stringify(j.body)).toBe(200);
    expect((await bob.get(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.name`)).body).toEqual({ name: 'Over libp2p' });
    await waitFor(async () => (await A.hs.store.rooms.membership(roomId, bob.userId!))?.membership === 'join', 15_000, 'A to see the join');
    await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/1`, { msgtype: 'm.text', body: 'hi bob' });
    await bob.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/1`, { msgtype: 'm.text', body: 'hi alice' });
    const bodies = async (c: TestClient) =>
      ((await c.get(`/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=50`)).body.chunk as any[])
        .filter((e) => e.type === 'm.room.message')
        .map((e) => e.content.body)
        .sort();
    await waitFor(async () => (await bodies(bob)).length === 2 && (await bodies(alice)).length === 2, 20_000, 'both messages on both sides');
    expect(await bodies(alice)).toEqual(['hi alice', 'hi bob']);
    expect(await bodies(bob)).toEqual(['hi alice', 'hi bob']);
    // Over libp2p, the client API of the other server is out of reach (403 at the transport).
    const r = await A.p2p.request(B.hs.serverName, new Request('http://x/_matrix/client/v3/account/whoami'));
    expect(r.status).toBe(403);
    await A.hs.stop();
    await B.hs.stop();
  });
});

describe('room-directory gossip over libp2p', () => {
  it('a public room one node lists reaches the other through the broadcast topic, signed and checked', async () => {
    const make = () => homeserverOverLibp2p({ peerDirectory: { refreshMs: 500 } });
    const A = await make();
    const B = await make();
    await waitFor(() => A.p2p.peers().some((p) => p.serverName === B.hs.serverName), 15_000, 'A to reach B');
    const alice = await new TestClient(A.hs).register('alice');
    const bob = await new TestClient(B.hs).register('bob');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat', visibility: 'public', name: 'Gossiped', topic: 'rooms found through peers', room_alias_name: 'gossip' })).body.room_id;
    const listed = async () => ((await bob.get('/_matrix/client/v3/publicRooms')).body.chunk as any[]).find((r) => r.room_id === roomId);
    await waitFor(listed, 15_000, "A's room in B's directory");
    const entry = await listed();
    expect(entry).toMatchObject({ name: 'Gossiped', topic: 'rooms found through peers', canonical_alias: `#gossip:${A.hs.serverName}`, 'org.matrix_p2p.servers': [A.hs.serverName] });
    expect(B.hs.peerDirectory.stats.rejected).toBe(0);
    await Promise.all([A.p2p.stop(), B.p2p.stop()]);
    await A.hs.stop();
    await B.hs.stop();
  });
});

describe('the broadcast topic', () => {
  it('carries messages to every node through the rendezvous, and refuses ones too big to be an announcement', async () => {
    const a = await node(41);
    const b = await node(42);
    const heard: number[] = [];
    b.on('broadcast', ({ message }) => heard.push(message.byteLength));
    await a.start();
    await b.start();
    await waitFor(() => a.rendezvousConnected() && b.rendezvousConnected(), 15_000, 'both on the rendezvous');
    // The mesh forms over a heartbeat or two: repeat a small message until it arrives.
    await waitFor(async () => (await a.broadcast(new Uint8Array(10)), heard.includes(10)), 15_000, 'a small broadcast to arrive');
    await a.broadcast(new Uint8Array(MAX_BROADCAST_BYTES + 1));
    await a.broadcast(new Uint8Array(11));
    await waitFor(() => heard.includes(11), 10_000, 'the next small broadcast');
    expect(heard).not.toContain(MAX_BROADCAST_BYTES + 1);
  });
});

