/**
 * The Node host's HTTP federation transport (src/federation.ts), in process over real HTTP:
 *  - a key object proves a name only with that name's key and its signature (`checkServerKey`), and a
 *    peer serving someone else's name signed with its own key is never learned;
 *  - a peer behind a link that goes down (a TCP proxy closed) keeps its name; what is sent meanwhile
 *    is queued, and all of it (100 messages) is delivered, in order, soon after the peer answers again
 *    (the transport probes it and tells the core it is reachable, which flushes the queue at once).
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeBase64, signJson, signingKeyFromSeed, serverNameOf, type JsonObject } from '@matrix-p2p/server-core';
import { checkServerKey, HttpFederationTransport, startNodeHost, type NodeHost } from '../src/index.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function keyObject(seedByte: number, claimName?: string): Promise<JsonObject> {
  const key = await signingKeyFromSeed(new Uint8Array(32).fill(seedByte), 'ed25519:p2p');
  const name = claimName ?? serverNameOf(key.publicKey);
  return signJson({ server_name: name, valid_until_ts: Date.now() + 1e6, verify_keys: { [key.keyId]: { key: encodeBase64(key.publicKey) } }, old_verify_keys: {} }, name, key);
}

describe('checkServerKey', () => {
  it('accepts a key object signed by the key its name stands for', async () => {
    expect(await checkServerKey(await keyObject(1))).toBeUndefined();
  });
  it('refuses a name that is not its key, a missing or wrong signature, and junk', async () => {
    const other = serverNameOf((await signingKeyFromSeed(new Uint8Array(32).fill(2))).publicKey);
    expect(await checkServerKey(await keyObject(1, other))).toMatch(/no verify key matches/);
    const ko = await keyObject(1);
    expect(await checkServerKey({ ...ko, signatures: {} })).toMatch(/not signed/);
    expect(await checkServerKey({ ...ko, valid_until_ts: 1 })).toMatch(/not signed/);
    expect(await checkServerKey({ ...ko, server_name: 'example.org' })).toMatch(/key-named/);
    for (const junk of [null, [], 'x', { server_name: other }]) expect(await checkServerKey(junk)).toBeTruthy();
  });
});

/** A TCP proxy to `target` that can be taken down (listener closed, connections cut) and brought back on its port. */
async function proxy(target: number): Promise<{ url: string; down(): Promise<void>; up(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const up = () =>
    new Promise<void>((res, rej) => {
      server = createServer((client) => {
        const upstream = connect(target, '127.0.0.1');
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => {});
        }
        client.pipe(upstream).pipe(client);
      });
      server.once('error', rej);
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as { port: number }).port;
        res();
      });
    });
  const down = () =>
    new Promise<void>((res) => {
      for (const s of sockets) s.destroy();
      server ? server.close(() => res()) : res();
      server = undefined;
    });
  await up();
  cleanups.push(down);
  return { url: `http://127.0.0.1:${port}`, up, down };
}

async function client(node: NodeHost, username: string) {
  const call = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await fetch(node.url + path, { method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as any };
  };
  const r = await call('POST', '/_matrix/client/v3/register', { username, password: 'correct horse battery', auth: { type: 'm.login.dummy' } });
  const token = r.body.access_token as string;
  return { userId: r.body.user_id as string, call: (m: string, p: string, b?: unknown) => call(m, p, b, token) };
}

describe('HttpFederationTransport between two node hosts', { timeout: 60_000 }, () => {
  it('never learns a peer that serves another server\'s name', async () => {
    const victim = await keyObject(3);
    const liar = await keyObject(4, victim.server_name as string);
    const fake: HttpServer = createHttpServer((_req, res) => res.end(JSON.stringify(liar)));
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => fake.close(() => r())));
    const lines: string[] = [];
    const t = new HttpFederationTransport([`http://127.0.0.1:${(fake.address() as { port: number }).port}`], { log: (l) => lines.push(l), retryMs: 20 });
    cleanups.push(() => t.stop());
    t.start();
    await waitFor('a refusal', () => lines.some((l) => l.includes('refused its key object')));
    expect(t.status()[0].name).toBeUndefined();
    await expect(t.fetch(victim.server_name as string, new Request('http://x/_matrix/federation/v1/version'))).rejects.toThrow(/no known peer/);
  });

  it('a peer whose link goes down while 100 messages are sent gets them all, in order, when it is back', async () => {
    const fast = { retryMs: 50, maxRetryMs: 250 };
    // B listens on its own port; A reaches it only through the proxy.
    const b0 = await startNodeHost({ port: 0, log: () => {} });
    const bPort = b0.port;
    await b0.close();
    const link = await proxy(bPort);
    const a = await startNodeHost({ peers: [link.url], federation: fast });
    cleanups.push(() => a.close());
    const b = await startNodeHost({ port: bPort, peers: [a.url], federation: fast });
    cleanups.push(() => b.close());
    expect(await a.federation!.ready(10_000)).toBe(true);
    expect(await b.federation!.ready(10_000)).toBe(true);
    expect(a.federation!.status()[0].name).toBe(b.hs.serverName);

    const alice = await client(a, 'alice');
    const bob = await client(b, 'bob');
    const roomId = (await alice.call('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' })).body.room_id as string;
    const j = await bob.call('POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?via=${a.hs.serverName}`);
    expect(j.status, JSON.stringify(j.body)).toBe(200);
    await waitFor('A sees bob', async () => (await a.hs.store.rooms.membership(roomId, bob.userId))?.membership === 'join');

    await link.down();
    for (let i = 0; i < 100; i++) {
      const r = await alice.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/m${i}`, { msgtype: 'm.text', body: `m${i}` });
      expect(r.status).toBe(200);
    }
    await waitFor('A to see B down', () => a.federation!.status()[0].up === false);
    await waitFor('100 queued', async () => (await a.hs.federation.queued(b.hs.serverName)) === 100);
    const onB = async () => (await b.hs.store.rooms.timeline(roomId, { dir: 'f', limit: 1000 })).filter((e) => e.type === 'm.room.message').map((e) => e.pdu.content.body);
    expect(await onB()).toEqual([]);

    const back = Date.now();
    await link.up();
    await waitFor('all 100 on B', async () => (await onB()).length === 100);
    // Within the transport's probe delay (≤ 250 ms here) and the delivery, not the core's backoff.
    expect(Date.now() - back).toBeLessThan(3000);
    expect(await onB()).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    expect(a.federation!.status()[0]).toMatchObject({ up: true, name: b.hs.serverName });
  });
});
