/**
 * Browsers federate, three of them (issue 6): A, B and C are each a separate Chromium with the app (homeserver in
 * the Service Worker, libp2p node in the page), meeting through a real rendezvous process inside the suite's
 * loopback-only network namespace. C runs on a persistent profile, so closing its browser and launching it again
 * reopens the same homeserver (IndexedDB: its key, hence its server name, its accounts and rooms).
 *
 *  - A creates a public room with an alias; B and C join by alias;
 *  - C's browser is closed while A and B exchange 20 messages; C is launched again: same server name, and its
 *    /sync (from the token it had) and /messages hold all 20, in order, none twice;
 *  - invites across browsers: A invites C's user to a private room, C sees the invite in /sync, joins, and they
 *    talk both ways; a second invite is rejected and A sees the rejection;
 *  - B leaves: A and C see the leave, and B's homeserver no longer receives the room's messages;
 *  - every browser reloads its page: the history is all still there, and federation carries on.
 *
 * Figures are printed.
 */
import type { Page } from '@playwright/test';
import { join } from 'node:path';
import { arrives, p2pTest, transport, waitTransportHost, type AppBrowser } from './p2p.ts';
import { allMessages, createRoom, expect, messagesIn, mx, ok, register, send, sync, waitControlled, type Session } from './fixtures.ts';

p2pTest.describe.configure({ mode: 'serial' });

const enc = encodeURIComponent;
/** A /sync filter whose timelines hold every event of these short runs (the default limit is 10). */
const WHOLE_TIMELINE = { room: { timeline: { limit: 100 } } };

async function joinedMembers(page: Page, s: Session, roomId: string): Promise<string[]> {
  const r = await mx(page, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/joined_members`, { token: s.token });
  return r.status === 200 ? Object.keys(r.body.joined ?? {}).sort() : [`HTTP ${r.status}`];
}

/** A member's membership in a room as `page`'s homeserver has it (undefined if none). */
async function membership(page: Page, s: Session, roomId: string, userId: string): Promise<string | undefined> {
  const r = await mx(page, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.member/${enc(userId)}`, { token: s.token });
  return r.status === 200 ? r.body.membership : undefined;
}

/**
 * Long-poll `page`'s /sync from `since` until `count` messages whose body starts with `prefix` arrived in `roomId`.
 * Returns them in the order /sync gave them (bodies and event ids) and the next token. A timeline with a gap
 * (`limited`) fails; so does any further such message within a short while after (a duplicate).
 */
async function collect(page: Page, s: Session, roomId: string, prefix: string, count: number, since: string, timeout: number) {
  const bodies: string[] = [];
  const ids: string[] = [];
  let next = since;
  const take = (r: Record<string, any>) => {
    const timeline = r.rooms?.join?.[roomId]?.timeline;
    const mine = ((timeline?.events ?? []) as any[]).filter((e) => e.type === 'm.room.message' && String(e.content?.body).startsWith(prefix));
    if (mine.length) expect(timeline.limited, 'the timeline has a gap').not.toBe(true);
    for (const e of mine) (bodies.push(e.content.body), ids.push(e.event_id));
  };
  const deadline = Date.now() + timeout;
  while (bodies.length < count) {
    if (Date.now() > deadline) throw new Error(`${bodies.length} of ${count} "${prefix}…" arrived in ${timeout} ms: ${JSON.stringify(bodies)}`);
    const r = await sync(page, s, next, 2_000, WHOLE_TIMELINE);
    take(r);
    next = r.next_batch;
  }
  const settle = await sync(page, s, next, 1_500, WHOLE_TIMELINE);
  take(settle);
  return { bodies, ids, since: settle.next_batch as string };
}

/** Whether the homeserver of `page`'s origin has stored an event (reads its IndexedDB from the page). */
function stored(page: Page, eventId: string): Promise<boolean> {
  return page.evaluate(async (id) => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open('matrix-p2p');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    try {
      return await new Promise<boolean>((resolve, reject) => {
        const g = db.transaction('events').objectStore('events').get(id);
        g.onsuccess = () => resolve(!!g.result);
        g.onerror = () => reject(g.error);
      });
    } finally {
      db.close();
    }
  }, eventId);
}

p2pTest('three browsers: one closed and reopened catches up in order, invites across browsers, leave, reload keeps history', async ({ p2p }) => {
  p2pTest.setTimeout(150_000);
  const e = p2p;
  const apps = p2p.apps;
  const profileC = join(e.dir, 'profile-c');
  const t0 = Date.now();
  const lap = (() => {
    let last = t0;
    return () => {
      const now = Date.now();
      const d = now - last;
      last = now;
      return d;
    };
  })();
  const [appA, appB] = await Promise.all([apps.launch(e.url), apps.launch(e.url)]);
  let appC: AppBrowser = await apps.launch(e.url, { profile: profileC });
  const a = appA.page;
  const b = appB.page;
  let c = appC.page;
  const [A, B, C] = await Promise.all([a, b, c].map((p) => transport.serverName(p)));
  expect(new Set([A, B, C]).size).toBe(3);
  for (const n of [A, B, C]) expect(n).toMatch(/^[0-9a-f]{64}$/);

  // Each reaches the two others (relayed or direct).
  const reaches = async (page: Page, names: string[], timeout = 60_000) =>
    expect.poll(async () => {
      const peers = await transport.peers(page);
      return names.every((n) => peers.some((p) => p.serverName === n));
    }, { timeout, intervals: [200] }).toBe(true);
  await Promise.all([reaches(a, [B, C]), reaches(b, [A, C]), reaches(c, [A, B])]);
  const meshMs = lap();

  const [alice, bob, carol] = await Promise.all([register(a, 'alice'), register(b, 'bob'), register(c, 'carol')]);
  const lobby = await createRoom(a, alice, { room_alias_name: 'lobby', preset: 'public_chat', name: 'Lobby' });
  for (const [page, s] of [[b, bob], [c, carol]] as const) {
    const joined = await ok(mx(page, 'POST', `/_matrix/client/v3/join/${enc(`#lobby:${A}`)}`, { token: s.token, body: {} }));
    expect(joined.room_id).toBe(lobby);
  }
  const everyone = [alice.userId, bob.userId, carol.userId].sort();
  for (const [page, s] of [[a, alice], [b, bob], [c, carol]] as const) {
    await expect.poll(() => joinedMembers(page, s, lobby), { timeout: 30_000 }).toEqual(everyone);
  }
  const joinMs = lap();

  let sinceA = (await sync(a, alice)).next_batch as string;
  let sinceB = (await sync(b, bob)).next_batch as string;
  let sinceC = (await sync(c, carol)).next_batch as string;
  await send(c, carol, lobby, 'hello from C');
  [sinceA, sinceB] = await Promise.all([arrives(a, alice, lobby, 'hello from C', sinceA), arrives(b, bob, lobby, 'hello from C', sinceB)]);
  await send(b, bob, lobby, 'hello from B');
  sinceC = await arrives(c, carol, lobby, 'hello from B', sinceC);

  // --- C's browser is closed; A and B talk; C comes back ------------------------------------------------
  sinceC = (await sync(c, carol, sinceC)).next_batch;
  await appC.close();
  lap();
  const away: string[] = [];
  for (let i = 0; i < 20; i++) {
    const body = `while C was away ${i}`;
    away.push(body);
    if (i % 2 === 0) {
      await send(a, alice, lobby, body);
      sinceB = await arrives(b, bob, lobby, body, sinceB);
    } else {
      await send(b, bob, lobby, body);
      sinceA = await arrives(a, alice, lobby, body, sinceA);
    }
  }
  const talkMs = lap();

  appC = await apps.launch(e.url, { profile: profileC });
  c = appC.page;
  const reopenMs = lap();
  expect(await transport.serverName(c)).toBe(C);
  const caught = await collect(c, carol, lobby, 'while C was away', 20, sinceC, 60_000);
  const catchUpMs = lap();
  expect(caught.bodies).toEqual(away);
  expect(new Set(caught.ids).size).toBe(20);
  sinceC = caught.since;
  expect((await allMessages(c, carol, lobby)).filter((m) => m.startsWith('while C was away'))).toEqual(away);
  // C talks again, and both others hear it.
  await send(c, carol, lobby, 'C is back');
  [sinceA, sinceB] = await Promise.all([arrives(a, alice, lobby, 'C is back', sinceA), arrives(b, bob, lobby, 'C is back', sinceB)]);

  // --- invites across browsers ---------------------------------------------------------------------------
  const secret = await createRoom(a, alice, { preset: 'private_chat', name: 'Secret' });
  const declined = await createRoom(a, alice, { preset: 'private_chat', name: 'Not for C' });
  for (const roomId of [secret, declined]) await ok(mx(a, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { token: alice.token, body: { user_id: carol.userId } }));
  {
    const deadline = Date.now() + 30_000;
    const invited = new Set<string>();
    while (!(invited.has(secret) && invited.has(declined))) {
      if (Date.now() > deadline) throw new Error(`invites not seen in C's /sync: ${[...invited]}`);
      const r = await sync(c, carol, sinceC, 2_000);
      for (const [roomId, room] of Object.entries((r.rooms?.invite ?? {}) as Record<string, any>)) {
        const events = room.invite_state?.events ?? [];
        expect(events.some((ev: any) => ev.type === 'm.room.member' && ev.state_key === carol.userId && ev.content?.membership === 'invite')).toBe(true);
        invited.add(roomId);
      }
      sinceC = r.next_batch;
    }
  }
  expect((await ok(mx(c, 'POST', `/_matrix/client/v3/rooms/${enc(secret)}/join`, { token: carol.token, body: {} }))).room_id).toBe(secret);
  await ok(mx(c, 'POST', `/_matrix/client/v3/rooms/${enc(declined)}/leave`, { token: carol.token, body: {} }));
  await expect.poll(() => joinedMembers(a, alice, secret), { timeout: 30_000 }).toEqual([alice.userId, carol.userId].sort());
  await expect.poll(() => membership(a, alice, declined, carol.userId), { timeout: 30_000 }).toBe('leave');
  await send(a, alice, secret, 'secret from A');
  sinceC = await arrives(c, carol, secret, 'secret from A', sinceC);
  await send(c, carol, secret, 'secret from C');
  sinceA = await arrives(a, alice, secret, 'secret from C', sinceA);
  // B was never invited: it has nothing of the private room.
  expect((await mx(b, 'GET', `/_matrix/client/v3/rooms/${enc(secret)}/messages?dir=b`, { token: bob.token })).status).toBe(403);
  const inviteMs = lap();

  // --- B leaves the lobby -------------------------------------------------------------------------------
  const lastForB = await send(a, alice, lobby, 'last one B sees');
  sinceB = await arrives(b, bob, lobby, 'last one B sees', sinceB);
  await ok(mx(b, 'POST', `/_matrix/client/v3/rooms/${enc(lobby)}/leave`, { token: bob.token, body: {} }));
  for (const [page, s] of [[a, alice], [c, carol]] as const) {
    await expect.poll(() => membership(page, s, lobby, bob.userId), { timeout: 30_000 }).toBe('leave');
    await expect.poll(() => joinedMembers(page, s, lobby), { timeout: 5_000 }).toEqual([alice.userId, carol.userId].sort());
  }
  const afterLeave = await send(a, alice, lobby, 'after B left');
  sinceC = await arrives(c, carol, lobby, 'after B left', sinceC);
  await send(c, carol, lobby, 'after B left, from C');
  sinceA = await arrives(a, alice, lobby, 'after B left, from C', sinceA);
  // B's homeserver got neither (it is no longer in the room), though it has what came before its leave.
  const rB = await sync(b, bob, sinceB, 1_000);
  expect(messagesIn(rB, lobby)).toEqual([]);
  expect(await stored(b, lastForB)).toBe(true);
  expect(await stored(b, afterLeave)).toBe(false);
  expect(await stored(c, afterLeave)).toBe(true);
  const leaveMs = lap();

  // --- every page reloads: the history is all there, and federation carries on ---------------------------
  const before = await Promise.all([allMessages(a, alice, lobby), allMessages(b, bob, lobby), allMessages(c, carol, lobby), allMessages(c, carol, secret)]);
  expect(before[0]).toEqual(before[2]);
  expect(before[0]).toEqual(expect.arrayContaining([...away, 'hello from B', 'hello from C', 'C is back', 'after B left', 'after B left, from C']));
  expect(before[1].at(-1)).toBe('last one B sees');
  expect(before[3]).toEqual(['secret from A', 'secret from C']);
  await Promise.all(
    [a, b, c].map(async (p) => {
      await p.reload();
      await waitControlled(p);
      await waitTransportHost(p);
    }),
  );
  const after = await Promise.all([allMessages(a, alice, lobby), allMessages(b, bob, lobby), allMessages(c, carol, lobby), allMessages(c, carol, secret)]);
  expect(after).toEqual(before);
  await send(a, alice, lobby, 'after the reloads');
  sinceC = await arrives(c, carol, lobby, 'after the reloads', sinceC, 45_000);
  await send(c, carol, secret, 'after the reloads, from C');
  sinceA = await arrives(a, alice, secret, 'after the reloads, from C', sinceA, 45_000);
  const reloadMs = lap();

  console.log(
    `[p2p-three] all three reachable ${meshMs} ms; register + create + 2 joins by alias ${joinMs} ms; 20 messages A⇄B with C closed ${talkMs} ms; ` +
      `C relaunched ${reopenMs} ms, then all 20 in its /sync ${catchUpMs} ms; invites ${inviteMs} ms; leave ${leaveMs} ms; reloads + a message each way ${reloadMs} ms; total ${Date.now() - t0} ms`,
  );
});
