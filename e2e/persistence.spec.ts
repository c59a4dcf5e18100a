/** The homeserver's state lives in IndexedDB: it outlives reloads, and every tab shares the one node. */
import { allMessages, createRoom, expect, messagesIn, mx, ok, register, send, sync, test, waitControlled, workerStatus } from './fixtures.ts';

test('register, create a room and send through fetch; after a reload everything is still there', async ({ app }) => {
  const page = await app();
  const alice = await register(page, 'alice');
  expect(alice.userId).toMatch(/^@alice:[0-9a-f]{64}$/);
  const roomId = await createRoom(page, alice, { name: 'persisted', topic: 'kept in IndexedDB' });
  const sent = ['one', 'two', 'three'];
  for (const m of sent) await send(page, alice, roomId, m);
  const first = await sync(page, alice);
  expect(messagesIn(first, roomId)).toEqual(sent);
  const name = (await workerStatus(page)).serverName;

  await page.reload();
  await waitControlled(page);

  // Same node, same account (its token still works), same room and messages.
  expect((await workerStatus(page)).serverName).toBe(name);
  expect((await ok(mx(page, 'GET', '/_matrix/client/v3/account/whoami', { token: alice.token }))).user_id).toBe(alice.userId);
  const again = await sync(page, alice);
  expect(messagesIn(again, roomId)).toEqual(sent);
  const joined = again.rooms.join[roomId];
  const nameEvent = [...joined.state.events, ...joined.timeline.events].find((e: any) => e.type === 'm.room.name');
  expect(nameEvent?.content.name).toBe('persisted');
  expect(await allMessages(page, alice, roomId)).toEqual(sent);
  const taken = await mx(page, 'POST', '/_matrix/client/v3/register', { body: { username: 'alice', password: 'x', auth: { type: 'm.login.dummy' } } });
  expect(taken.body.errcode).toBe('M_USER_IN_USE');

  // Incremental sync from before the reload: nothing new; then a new message arrives.
  const incremental = await sync(page, alice, again.next_batch);
  expect(messagesIn(incremental, roomId)).toEqual([]);
  await send(page, alice, roomId, 'four');
  expect(messagesIn(await sync(page, alice, again.next_batch), roomId)).toEqual(['four']);

  // A password login on the restarted node.
  const login = await ok(mx(page, 'POST', '/_matrix/client/v3/login', {
    body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'correct horse battery staple' },
  }));
  expect(login.user_id).toBe(alice.userId);
});

test('two tabs share one homeserver: writes from both, both see everything', async ({ app, context }) => {
  const tab1 = await app(context);
  const tab2 = await app(context);
  const [s1, s2] = await Promise.all([workerStatus(tab1), workerStatus(tab2)]);
  expect(s2.serverName).toBe(s1.serverName);
  expect(s2.startId).toBe(s1.startId); // one worker run serves both tabs

  const alice = await register(tab1, 'alice');
  const bob = await register(tab2, 'bob');
  const roomId = await createRoom(tab1, alice, { preset: 'public_chat', name: 'shared' });
  await ok(mx(tab2, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, { token: bob.token, body: {} }));

  // Interleaved and concurrent writes from both tabs.
  const expected: string[] = [];
  for (let i = 0; i < 3; i++) {
    await send(tab1, alice, roomId, `alice ${i}`);
    await send(tab2, bob, roomId, `bob ${i}`);
    expected.push(`alice ${i}`, `bob ${i}`);
  }
  await Promise.all([send(tab1, alice, roomId, 'alice together'), send(tab2, bob, roomId, 'bob together')]);

  // Each tab, as each user, sees everything: via sync and via /messages.
  for (const [tab, who] of [[tab1, alice], [tab2, bob], [tab2, alice], [tab1, bob]] as const) {
    const seen = messagesIn(await sync(tab, who), roomId);
    expect(seen.slice(0, 6)).toEqual(expected);
    expect(seen.slice(6).sort()).toEqual(['alice together', 'bob together']);
    expect((await allMessages(tab, who, roomId)).length).toBe(8);
  }

  // A long-poll in one tab is woken by a write in the other.
  const first = await sync(tab2, bob);
  const pending = sync(tab2, bob, first.next_batch, 20_000);
  await tab1.waitForTimeout(200);
  await send(tab1, alice, roomId, 'wake up, bob');
  expect(messagesIn(await pending, roomId)).toEqual(['wake up, bob']);
});
