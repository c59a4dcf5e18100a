// Writes are shown before they are durable (the CachingEngine shows a batch while IndexedDB commits it, so
// that a waiting /sync works meanwhile); nothing read of one may leave the node before it is durable, and
// a write that fails after being shown leaves no trace.
import { describe, expect, it, vi } from 'vitest';
import { CachingEngine, createHomeserver, createNetworkedMemoryHomeserver, InProcessNetwork, MemoryEngine, type Homeserver } from '../src/index.ts';
import type { ReadTx, StorageEngine, WriteOp } from '../src/store/engine.ts';
import { MIGRATIONS } from '../src/store/schema.ts';
import { Store } from '../src/store/store.ts';
import { enc, TestClient } from './helpers/hs.ts';
import { stopAfterTest, waitFor } from './federation/helpers.ts';

/** An engine whose writes can be held (as an IndexedDB commit in flight) and then made to fail. */
class HeldEngine implements StorageEngine {
  readonly inner = new MemoryEngine(MIGRATIONS);
  private held?: { promise: Promise<void>; release: () => void };
  private failNext = false;
  read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    return this.inner.read(fn);
  }
  async write(ops: WriteOp[]): Promise<void> {
    if (this.held) await this.held.promise;
    if (this.failNext) {
      this.failNext = false;
      const e = new Error('the commit was aborted');
      e.name = 'AbortError';
      throw e;
    }
    await this.inner.write(ops);
  }
  hold(): void {
    let release!: () => void;
    const promise = new Promise<void>((r) => (release = r));
    this.held = { promise, release };
  }
  release({ fail = false } = {}): void {
    this.failNext = fail;
    const h = this.held;
    this.held = undefined;
    h?.release();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const tick = () => new Promise((r) => setTimeout(r, 5));

async function setup(): Promise<{ hs: Homeserver; held: HeldEngine; alice: TestClient; roomId: string; since: string }> {
  const held = new HeldEngine();
  const hs = await createHomeserver({ engine: new CachingEngine(held, { migrations: MIGRATIONS }), log: () => {} });
  const alice = await new TestClient(hs).register('alice');
  const roomId = (await alice.post('/_matrix/client/v3/createRoom', {})).body.room_id as string;
  const since = (await alice.get('/_matrix/client/v3/sync?timeout=0')).body.next_batch as string;
  return { hs, held, alice, roomId, since };
}

function texts(sync: { rooms?: { join?: Record<string, { timeline: { events: Array<{ content: { body?: string } }> } }> } }, roomId: string): string[] {
  return (sync.rooms?.join?.[roomId]?.timeline.events ?? []).map((e) => e.content.body ?? '').filter(Boolean);
}

describe('writes shown before they are durable', () => {
  it('Store: a batch is shown (its position announced) before its write resolves; a failed one takes its position back', async () => {
    const held = new HeldEngine();
    const store = await Store.open(new CachingEngine(held, { migrations: MIGRATIONS }));
    const seen: number[] = [];
    store.onVisible = (p) => seen.push(p);
    held.hold();
    const b = store.batch();
    const pos = b.nextStream();
    b.put('account_data', { userId: '@a:x', roomId: '', type: 't', content: {}, stream: pos });
    let done = false;
    const commit = b.commit().then(() => (done = true));
    await tick();
    expect(seen).toEqual([pos]);
    expect(store.stream).toBe(pos);
    expect(done).toBe(false);
    held.release();
    await commit;
    expect(store.stream).toBe(pos);

    held.hold();
    const bad = store.batch();
    const next = bad.nextStream();
    bad.put('account_data', { userId: '@a:x', roomId: '', type: 'u', content: {}, stream: next });
    const failing = bad.commit().then(() => 'ok', (e: Error) => e.name);
    await tick();
    expect(store.stream).toBe(next);
    held.release({ fail: true });
    expect(await failing).toBe('AbortError');
    expect(store.stream).toBe(pos);
    expect(seen).toEqual([pos, next, pos]);
    expect(await store.durable(0)).toBe(false); // a shown write failed since mark 0
    expect(await store.durable(store.readMark())).toBe(true);
    await store.close();
  });

  it('a long-poll /sync woken by a send answers only once the send is durable, with the event', async () => {
    const { hs, held, alice, roomId, since } = await setup();
    const poll = alice.get(`/_matrix/client/v3/sync?timeout=10000&since=${enc(since)}`);
    let polled = false;
    void poll.then(() => (polled = true));
    await tick();
    const computes = vi.spyOn(hs.sync as unknown as { compute: () => unknown }, 'compute');
    held.hold();
    const send = alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'one' });
    let sent = false;
    void send.then(() => (sent = true));
    await tick();
    await tick();
    // Shown, so the long-poll has woken and computed its answer; not durable, so nothing is out yet.
    expect(computes).toHaveBeenCalledTimes(1);
    expect([polled, sent]).toEqual([false, false]);
    held.release();
    expect((await send).status).toBe(200);
    const r = await poll;
    expect(r.status).toBe(200);
    expect(texts(r.body, roomId)).toEqual(['one']);
    await hs.stop();
  });

  it('a send whose write fails after being shown: the woken /sync is cut off, the event never appears, the next send does', async () => {
    const { hs, held, alice, roomId, since } = await setup();
    const streamBefore = hs.store.stream;
    const poll = alice.get(`/_matrix/client/v3/sync?timeout=10000&since=${enc(since)}`);
    await tick();
    held.hold();
    const send = alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'lost' });
    await tick();
    held.release({ fail: true });
    // The long-poll was waiting, so its head (200) went out at once (router.ts, longPollAnswer): its body fails,
    // as a dropped connection would, and nothing of the lost event is in it.
    const [s, p] = await Promise.allSettled([send, poll]);
    expect(s.status === 'fulfilled' && s.value.status).toBeGreaterThanOrEqual(500);
    expect(p.status).toBe('rejected');
    expect(String((p as PromiseRejectedResult).reason)).toMatch(/write failed/);
    expect(hs.store.stream).toBe(streamBefore);
    // The client retries with the same token: the next send comes, the failed one never does.
    const retry = alice.get(`/_matrix/client/v3/sync?timeout=10000&since=${enc(since)}`);
    await tick();
    expect((await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t2`, { msgtype: 'm.text', body: 'two' })).status).toBe(200);
    const r = await retry;
    expect(r.status).toBe(200);
    expect(texts(r.body, roomId)).toEqual(['two']);
    const messages = await alice.get(`/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=10`);
    expect(messages.body.chunk.map((e: { content: { body?: string } }) => e.content.body).filter(Boolean)).toEqual(['two']);
    await hs.stop();
  });

  it('federation: the queue is sent only once durable; a send whose write fails after being shown never reaches the peer', async () => {
    const net = new InProcessNetwork();
    const held = new HeldEngine();
    let name = '';
    const a = await createHomeserver({ engine: new CachingEngine(held, { migrations: MIGRATIONS }), transport: net.transportFor(() => name), log: () => {} });
    name = a.serverName;
    net.attach(a);
    const b = await createNetworkedMemoryHomeserver(net, { log: () => {} });
    stopAfterTest(a, b);
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' })).body.room_id as string;
    expect((await bob.post(`/_matrix/client/v3/join/${enc(roomId)}?server_name=${a.serverName}`)).status).toBe(200);
    // B's own store (an API call at B could ask A for history, and A holds every answer while a write is held).
    const bodiesAtB = async () => (await b.store.rooms.timeline(roomId, { dir: 'b', limit: 20 }))
      .map((e) => (e.pdu.content as { body?: string }).body).filter(Boolean);
    // Held: shown (so the queue is kicked and the transaction signed) but not durable: nothing goes.
    held.hold();
    const sendHeld = alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'held' });
    await tick();
    await tick();
    expect(await bodiesAtB()).toEqual([]);
    held.release();
    expect((await sendHeld).status).toBe(200);
    await waitFor('"held" at B', async () => (await bodiesAtB()).includes('held'));
    // Shown, then failed: never sent.
    held.hold();
    const sendLost = alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t2`, { msgtype: 'm.text', body: 'lost' });
    await tick();
    held.release({ fail: true });
    expect((await sendLost).status).toBeGreaterThanOrEqual(500);
    expect((await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t3`, { msgtype: 'm.text', body: 'after' })).status).toBe(200);
    await waitFor('"after" at B', async () => (await bodiesAtB()).includes('after'));
    expect(await bodiesAtB()).toEqual(['after', 'held']);
  });
});
