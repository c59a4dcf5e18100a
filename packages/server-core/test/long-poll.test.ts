// A /sync long-poll that has to wait sends its head (200) at once and its body when there is news
// (router.ts, longPollAnswer); one with something to say at once answers whole, as every other request.
import { describe, expect, it } from 'vitest';
import { createMemoryHomeserver, jsonResponseText, lateBody, type Homeserver } from '../src/index.ts';
import { enc, TestClient } from './helpers/hs.ts';

const BASE = 'https://hs.test';
const tick = () => new Promise((r) => setTimeout(r, 5));

async function setup(): Promise<{ hs: Homeserver; alice: TestClient; roomId: string; since: string }> {
  const hs = await createMemoryHomeserver();
  const alice = await new TestClient(hs).register('alice');
  const roomId = (await alice.post('/_matrix/client/v3/createRoom', {})).body.room_id as string;
  const since = (await alice.get('/_matrix/client/v3/sync?timeout=0')).body.next_batch as string;
  return { hs, alice, roomId, since };
}

function syncRequest(alice: TestClient, query: string, init: RequestInit = {}): Request {
  return new Request(`${BASE}/_matrix/client/v3/sync?${query}`, { ...init, headers: { authorization: `Bearer ${alice.token}` } });
}

describe('long-poll /sync', () => {
  it('answers 200 before there is news when it has to wait, and sends the body with the news', async () => {
    const { hs, alice, roomId, since } = await setup();
    const res = await hs.handle(syncRequest(alice, `since=${enc(since)}&timeout=30000`));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const late = lateBody(res);
    expect(late).toBeInstanceOf(Promise);
    expect(jsonResponseText(res)).toBeUndefined();
    let settled = false;
    void late!.then(() => (settled = true));
    const body = res.json();
    await tick();
    expect(settled).toBe(false);
    expect((await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'news' })).status).toBe(200);
    const sync = (await body) as { next_batch: string; rooms: { join: Record<string, { timeline: { events: Array<{ content: { body?: string } }> } }> } };
    expect(sync.rooms.join[roomId]!.timeline.events.map((e) => e.content.body)).toEqual(['news']);
    expect(sync.next_batch).not.toBe(since);
    await late;
    expect(settled).toBe(true);
    await hs.stop();
  });

  it('answers whole when there is something to say at once, or nothing to wait for', async () => {
    const { hs, alice, roomId, since } = await setup();
    await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'already' });
    for (const query of [`since=${enc(since)}&timeout=30000`, 'timeout=30000', `since=${enc(since)}&timeout=0`]) {
      const res = await hs.handle(syncRequest(alice, query));
      expect(res.status).toBe(200);
      expect(lateBody(res)).toBeUndefined();
      const text = jsonResponseText(res);
      expect(text).toBeDefined();
      expect(JSON.parse(text!).next_batch).toEqual(expect.any(String));
    }
    await hs.stop();
  });

  it('still refuses bad requests with their error, before anything waits', async () => {
    const { hs, alice } = await setup();
    const bad = await hs.handle(syncRequest(alice, 'since=not-a-token&timeout=30000'));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ errcode: 'M_INVALID_PARAM' });
    const anon = await hs.handle(new Request(`${BASE}/_matrix/client/v3/sync?timeout=30000`));
    expect(anon.status).toBe(401);
    await hs.stop();
  });

  it('stops waiting when the client goes away (the body is cancelled, or the request aborted)', async () => {
    const { hs, alice, since } = await setup();
    // A minute's wait: the test's own timeout (5 s) fails unless going away ends it.
    const res = await hs.handle(syncRequest(alice, `since=${enc(since)}&timeout=60000`));
    await res.body!.cancel();
    await lateBody(res);

    const abort = new AbortController();
    const res2 = await hs.handle(syncRequest(alice, `since=${enc(since)}&timeout=60000`, { signal: abort.signal }));
    expect(lateBody(res2)).toBeInstanceOf(Promise);
    abort.abort();
    await lateBody(res2);
    await hs.stop();
  });

  it('answers an empty body at the timeout', async () => {
    const { hs, alice, since } = await setup();
    const res = await hs.handle(syncRequest(alice, `since=${enc(since)}&timeout=50`));
    expect(lateBody(res)).toBeInstanceOf(Promise);
    const body = (await res.json()) as { next_batch: string; rooms: { join: Record<string, unknown> } };
    expect(body.next_batch).toBe(since);
    expect(body.rooms.join).toEqual({});
    await hs.stop();
  });
});
