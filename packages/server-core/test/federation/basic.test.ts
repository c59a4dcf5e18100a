import { describe, expect, it } from 'vitest';
import { createNetworkedMemoryHomeserver, InProcessNetwork } from '../../src/index.ts';
import { enc, TestClient } from '../helpers/hs.ts';

async function waitFor<T>(fn: () => Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('federation between two in-process nodes', () => {
  it('a user on B joins a room on A by id (via A) and they chat both ways', async () => {
    const net = new InProcessNetwork();
    const a = await createNetworkedMemoryHomeserver(net);
    const b = await createNetworkedMemoryHomeserver(net);
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat', name: 'Fed' })).body.room_id;
    const j = await bob.post(`/_matrix/client/v3/join/${enc(roomId)}?via=${a.serverName}`);
    expect(j.status, JSON.stringify(j.body)).toBe(200);
    // bob sees the room state
    expect((await bob.get(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.name`)).body).toEqual({ name: 'Fed' });
    // A learns of bob's join
    await waitFor(async () => (await a.store.rooms.membership(roomId, bob.userId!))?.membership === 'join');
    await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/1`, { msgtype: 'm.text', body: 'hi bob' });
    await bob.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/1`, { msgtype: 'm.text', body: 'hi alice' });
    const bodies = async (c: TestClient) => ((await c.get(`/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=50`)).body.chunk as any[]).filter((e) => e.type === 'm.room.message').map((e) => e.content.body).sort();
    await waitFor(async () => (await bodies(bob)).length === 2);
    await waitFor(async () => (await bodies(alice)).length === 2);
    expect(await bodies(alice)).toEqual(['hi alice', 'hi bob']);
    expect(await bodies(bob)).toEqual(['hi alice', 'hi bob']);
    expect(Object.fromEntries(await a.store.rooms.currentState(roomId))).toEqual(Object.fromEntries(await b.store.rooms.currentState(roomId)));
  });
});
