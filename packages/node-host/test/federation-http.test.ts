/**
 * Two Node hosts federating over real HTTP, as a user runs them: two `npm run serve` processes, each
 * started with `--peer` pointing at the other (the first starts before the second exists, so it must
 * keep trying). Each learns the other's server name from its signed key; a user on B joins a room of
 * A by its alias (`#room:<A's name>`, resolved over federation), they chat both ways,
 * and when B goes away and comes back (a new process, so a new key and name) A learns it again.
 * (A peer that comes back with the same key, and the queue flushing then: federation-transport.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, kill, ready, serve, waitFor, type Served } from './serve-process.ts';

/** The ready line as name and URL. */
async function readyAt(s: Served): Promise<{ name: string; url: string }> {
  const m = await ready(s);
  return { name: m[1]!, url: m[2]! };
}

/** A minimal client-server API client over fetch. */
class Client {
  token = '';
  userId = '';
  constructor(readonly base: string) {}
  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(this.base + path, {
      method,
      headers: { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }
  async register(username: string): Promise<this> {
    const r = await this.call('POST', '/_matrix/client/v3/register', { username, password: 'correct horse battery', auth: { type: 'm.login.dummy' } });
    if (r.status !== 200) throw new Error(`register: ${JSON.stringify(r.body)}`);
    this.token = r.body.access_token;
    this.userId = r.body.user_id;
    return this;
  }
  async messages(roomId: string): Promise<string[]> {
    const r = await this.call('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=100`);
    if (r.status !== 200) return [];
    return (r.body.chunk as any[]).filter((e) => e.type === 'm.room.message').map((e) => e.content.body).reverse();
  }
  async say(roomId: string, body: string): Promise<void> {
    const r = await this.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${Date.now()}${Math.random()}`, { msgtype: 'm.text', body });
    if (r.status !== 200) throw new Error(`send: ${JSON.stringify(r.body)}`);
  }
}

describe('two `npm run serve` hosts federating over HTTP', { timeout: 120_000 }, () => {
  let a: Served;
  let b: Served | undefined;
  let b2: Served | undefined;
  let A: { name: string; url: string };
  let B: { name: string; url: string };
  let portB: number;

  beforeAll(async () => {
    const [portA, pB] = [await freePort(), await freePort()];
    portB = pB;
    // A first, pointing at a B that does not exist yet.
    a = serve(['--port', String(portA), '--peer', `http://127.0.0.1:${portB}`]);
    A = await readyAt(a);
    await waitFor('A to find B down', () => (a.stderr().includes(`peer http://127.0.0.1:${portB} not reachable yet`) ? true : undefined));
    b = serve(['--port', String(portB), '--peer', A.url]);
    B = await readyAt(b);
  }, 120_000);

  afterAll(async () => {
    for (const s of [a, b, b2]) kill(s);
  });

  it('each host learns the other\'s server name from its signed key (A by retrying)', async () => {
    await waitFor('A to learn B', () => (a.stderr().includes(`peer http://127.0.0.1:${portB} is ${B.name}`) ? true : undefined));
    await waitFor('B to learn A', () => (b!.stderr().includes(`peer ${A.url} is ${A.name}`) ? true : undefined));
    expect(a.stderr()).not.toMatch(/internal error/);
  });

  let alice: Client;
  let bob: Client;
  let roomId: string;

  it('a user on B joins #room:<A> (the alias resolved over federation) and they chat both ways', async () => {
    alice = await new Client(A.url).register('alice');
    bob = await new Client(B.url).register('bob');
    const created = await alice.call('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat', name: 'Over HTTP', room_alias_name: 'room' });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    roomId = created.body.room_id;
    const alias = `#room:${A.name}`;

    // By alias: B asks A's directory over federation (GET /query/directory), then joins through A.
    const joined = await bob.call('POST', `/_matrix/client/v3/join/${encodeURIComponent(alias)}`);
    expect(joined.status, JSON.stringify(joined.body)).toBe(200);
    expect(joined.body.room_id).toBe(roomId);
    const name = await bob.call('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.name`);
    expect(name.body).toEqual({ name: 'Over HTTP' });

    await alice.say(roomId, 'hello from A');
    await bob.say(roomId, 'hello from B');
    await waitFor('both messages on B', async () => ((await bob.messages(roomId)).length === 2 ? true : undefined), 15_000);
    await waitFor('both messages on A', async () => ((await alice.messages(roomId)).length === 2 ? true : undefined), 15_000);
    expect((await alice.messages(roomId)).sort()).toEqual(['hello from A', 'hello from B']);
    expect((await bob.messages(roomId)).sort()).toEqual(['hello from A', 'hello from B']);
    const members = await alice.call('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`);
    expect(Object.keys(members.body.joined).sort()).toEqual([alice.userId, bob.userId].sort());
  });

  it('a host that comes back on the same address (with a new key: its store is in memory) is learned again', async () => {
    // B goes away; A notices when its traffic for B fails.
    kill(b, 'SIGTERM');
    await b!.exited;
    await alice.say(roomId, 'while B was away');
    await waitFor('A to notice B is down', () => (a.stderr().includes(`peer http://127.0.0.1:${portB} (${B.name}) unreachable`) ? true : undefined), 15_000);
    // A new B on the same port: a fresh in-memory node with a new key. A re-learns the address.
    b2 = serve(['--port', String(portB), '--peer', A.url]);
    const B2 = await readyAt(b2);
    expect(B2.name).not.toBe(B.name);
    await waitFor('A to learn the new B', () => (a.stderr().includes(`peer http://127.0.0.1:${portB} is ${B2.name}`) ? true : undefined), 20_000);
    // The new B's user joins and chats: federation works with the re-learned name.
    const carol = await new Client(B2.url).register('carol');
    const j = await carol.call('POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?via=${A.name}`);
    expect(j.status, JSON.stringify(j.body)).toBe(200);
    await carol.say(roomId, 'hello from the new B');
    await waitFor('A has the new B\'s message', async () => ((await alice.messages(roomId)).includes('hello from the new B') ? true : undefined), 15_000);
    await alice.say(roomId, 'welcome, new B');
    await waitFor('the new B has A\'s answer', async () => ((await carol.messages(roomId)).includes('welcome, new B') ? true : undefined), 15_000);
  });
});
