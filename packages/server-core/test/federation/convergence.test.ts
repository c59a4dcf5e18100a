/**
 * N homeservers in one process over the in-process transport: rooms spanning three and four nodes,
 * joins, leaves and messages across them, and partitions (links cut with `setLink`) during which both
 * sides make conflicting state changes (power levels, topic, kicks). After healing, every node must
 * hold the identical room state (`store.rooms.currentState`) and the same set of messages.
 */
import { describe, expect, it } from 'vitest';
import { createNetworkedMemoryHomeserver, InProcessNetwork, type Homeserver } from '../../src/index.ts';
import { enc, TestClient } from '../helpers/hs.ts';
import { stopAfterTest, waitFor } from './helpers.ts';


async function network(n: number): Promise<{ net: InProcessNetwork; hs: Homeserver[] }> {
  const net = new InProcessNetwork();
  const hs: Homeserver[] = [];
  for (let i = 0; i < n; i++) {
    const h = await createNetworkedMemoryHomeserver(net, { log: (e) => console.error(`node ${i}:`, e) });
    stopAfterTest(h);
    hs.push(h);
  }
  return { net, hs };
}

/** Ids of the room's messages in a node's timeline (what its clients see), sorted. */
async function messageIds(hs: Homeserver, roomId: string): Promise<string[]> {
  const evs = await hs.store.rooms.timeline(roomId, { dir: 'f', limit: 100_000 });
  return evs.filter((e) => e.type === 'm.room.message').map((e) => e.eventId).sort();
}
async function messageBodies(hs: Homeserver, roomId: string): Promise<string[]> {
  const evs = await hs.store.rooms.timeline(roomId, { dir: 'f', limit: 100_000 });
  return evs.filter((e) => e.type === 'm.room.message').map((e) => String(e.pdu.content.body)).sort();
}
async function stateOf(hs: Homeserver, roomId: string): Promise<Record<string, string>> {
  return Object.fromEntries([...(await hs.store.rooms.currentState(roomId))].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
async function queuesEmpty(hs: Homeserver[]): Promise<boolean> {
  for (const h of hs) for (const o of hs) if (o !== h && (await h.federation.queued(o.serverName)) > 0) return false;
  return true;
}

/** Wait until every node holds the same current state and the same messages; returns the state. */
async function converged(hs: Homeserver[], roomId: string, what = 'convergence'): Promise<Record<string, string>> {
  let last = '';
  try {
    return await waitFor(what, async () => {
      if (!(await queuesEmpty(hs))) return false;
      const states = await Promise.all(hs.map((h) => stateOf(h, roomId)));
      const msgs = await Promise.all(hs.map((h) => messageIds(h, roomId)));
      last = JSON.stringify({ states, msgs: msgs.map((m) => m.length) });
      const s0 = JSON.stringify(states[0]);
      const m0 = JSON.stringify(msgs[0]);
      return states.every((s) => JSON.stringify(s) === s0) && msgs.every((m) => JSON.stringify(m) === m0) ? states[0] : false;
    });
  } catch (e) {
    throw new Error(`${(e as Error).message}: ${last}`);
  }
}

const send = async (c: TestClient, roomId: string, body: string) => {
  const r = await c.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${enc(body)}${Math.random()}`, { msgtype: 'm.text', body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.event_id as string;
};
const putState = async (c: TestClient, roomId: string, type: string, content: object, key = '') => {
  const r = await c.put(`/_matrix/client/v3/rooms/${enc(roomId)}/state/${type}/${enc(key)}`, content);
  expect(r.status, `${type}: ${JSON.stringify(r.body)}`).toBe(200);
  return r.body.event_id as string;
};
const getState = async (c: TestClient, roomId: string, type: string, key = '') => (await c.get(`/_matrix/client/v3/rooms/${enc(roomId)}/state/${type}/${enc(key)}`)).body;
const membershipOn = async (hs: Homeserver, roomId: string, userId: string) => (await hs.store.rooms.membership(roomId, userId))?.membership;

async function joinVia(c: TestClient, roomId: string, via: Homeserver): Promise<void> {
  const r = await c.post(`/_matrix/client/v3/join/${enc(roomId)}?via=${via.serverName}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

describe('three and more nodes in one process', { timeout: 60_000 }, () => {
  it('create, join, chat, leave and rejoin across three nodes; every node agrees', async () => {
    const { hs } = await network(3);
    const [a, b, c] = hs;
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const carol = await new TestClient(c).register('carol');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat', name: 'Three' })).body.room_id as string;

    await joinVia(bob, roomId, a);
    // Carol joins through B, which joined over federation itself.
    await joinVia(carol, roomId, b);
    for (const h of hs) for (const u of [alice, bob, carol]) await waitFor(`${u.userId} joined on every node`, async () => (await membershipOn(h, roomId, u.userId!)) === 'join');
    expect(await getState(carol, roomId, 'm.room.name')).toEqual({ name: 'Three' });

    await send(alice, roomId, 'hello from A');
    await send(bob, roomId, 'hello from B');
    await send(carol, roomId, 'hello from C');
    await converged(hs, roomId);
    for (const h of hs) expect(await messageBodies(h, roomId)).toEqual(['hello from A', 'hello from B', 'hello from C']);

    // Carol leaves: every node sees it; C keeps no joined member and stops getting the room's events.
    expect((await carol.post(`/_matrix/client/v3/rooms/${enc(roomId)}/leave`)).status).toBe(200);
    for (const h of hs) await waitFor('the leave everywhere', async () => (await membershipOn(h, roomId, carol.userId!)) === 'leave');
    await send(alice, roomId, 'after carol left');
    await waitFor('B has the message', async () => (await messageBodies(b, roomId)).includes('after carol left'));
    expect(await queuesEmpty(hs)).toBe(true);
    expect(await messageBodies(c, roomId)).not.toContain('after carol left');
    expect(await stateOf(a, roomId)).toEqual(await stateOf(b, roomId));

    // And rejoins through A: C catches up with the state, and new messages flow again.
    await joinVia(carol, roomId, a);
    await send(carol, roomId, 'carol is back');
    // B sends to the servers it knows are in the room: it must have heard of the rejoin first (else C gets the
    // message only when a later event refers to it).
    await waitFor('B knows carol is back', async () => (await membershipOn(b, roomId, carol.userId!)) === 'join');
    await send(bob, roomId, 'welcome back');
    const state = await converged(hs.filter((h) => h !== c), roomId);
    await waitFor('C has the new messages', async () => (await messageBodies(c, roomId)).includes('welcome back'));
    expect(await stateOf(c, roomId)).toEqual(state);
    for (const u of [alice, bob, carol]) expect(await membershipOn(c, roomId, u.userId!)).toBe('join');
  });

  it('a user who joined over federation gets the room\'s state in /sync (initial and incremental)', async () => {
    const { hs } = await network(2);
    const [a, b] = hs;
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat', name: 'Synced', topic: 'state please' })).body.room_id as string;
    const since = (await bob.get('/_matrix/client/v3/sync?timeout=0')).body.next_batch;
    await joinVia(bob, roomId, a);
    const summary = (room: any) => {
      const events = [...(room?.state?.events ?? []), ...(room?.timeline?.events ?? [])];
      return {
        name: events.find((e: any) => e.type === 'm.room.name')?.content.name,
        topic: events.find((e: any) => e.type === 'm.room.topic')?.content.topic,
        create: events.some((e: any) => e.type === 'm.room.create'),
        members: events.filter((e: any) => e.type === 'm.room.member' && e.content.membership === 'join').map((e: any) => e.state_key).sort(),
      };
    };
    const want = { name: 'Synced', topic: 'state please', create: true, members: [alice.userId, bob.userId].sort() };
    const incremental = (await bob.get(`/_matrix/client/v3/sync?timeout=0&since=${since}`)).body.rooms?.join?.[roomId];
    expect(summary(incremental)).toEqual(want);
    const initial = (await bob.get('/_matrix/client/v3/sync?timeout=0')).body.rooms?.join?.[roomId];
    expect(summary(initial)).toEqual(want);
  });

  it('four nodes: 40 messages sent concurrently from every node arrive everywhere, in one DAG', async () => {
    const { hs } = await network(4);
    const users = await Promise.all(hs.map((h, i) => new TestClient(h).register(`user${i}`)));
    const roomId = (await users[0].post('/_matrix/client/v3/createRoom', { preset: 'public_chat' })).body.room_id as string;
    for (const u of users.slice(1)) await joinVia(u, roomId, hs[0]);
    for (const h of hs) for (const u of users) await waitFor('joined everywhere', async () => (await membershipOn(h, roomId, u.userId!)) === 'join');
    await Promise.all(users.map(async (u, i) => {
      for (let k = 0; k < 10; k++) await send(u, roomId, `m${i}-${k}`);
    }));
    await converged(hs, roomId);
    const expected = users.flatMap((_, i) => Array.from({ length: 10 }, (_, k) => `m${i}-${k}`)).sort();
    for (const h of hs) expect(await messageBodies(h, roomId)).toEqual(expected);
    // Concurrent sends fork the DAG; one more message from each node merges it again.
    for (const u of users) {
      await send(u, roomId, `merge-${u.userId}`);
      await converged(hs, roomId);
    }
    for (const h of hs) expect((await h.store.rooms.room(roomId))!.extremities).toHaveLength(1);
  });
});

describe('partitions and conflicting state', { timeout: 60_000 }, () => {
  /** Alice (A, PL 100) created the room; Bob (B) was raised to `bobLevel`; Carol and Dave (C) are members at 0. */
  async function setup(bobLevel = 100) {
    const { net, hs } = await network(3);
    const [a, b, c] = hs;
    const alice = await new TestClient(a).register('alice');
    const bob = await new TestClient(b).register('bob');
    const carol = await new TestClient(c).register('carol');
    const dave = await new TestClient(c).register('dave');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat', name: 'Split' })).body.room_id as string;
    await joinVia(bob, roomId, a);
    await joinVia(carol, roomId, a);
    await joinVia(dave, roomId, b);
    for (const h of hs) for (const u of [alice, bob, carol, dave]) await waitFor('joined everywhere', async () => (await membershipOn(h, roomId, u.userId!)) === 'join');
    const pl = await getState(alice, roomId, 'm.room.power_levels');
    await putState(alice, roomId, 'm.room.power_levels', { ...pl, users: { ...pl.users, [bob.userId!]: bobLevel }, events: { ...pl.events, 'm.room.power_levels': bobLevel } });
    await converged(hs, roomId);
    return { net, hs, a, b, c, alice, bob, carol, dave, roomId };
  }

  it('A alone vs B+C: both sides change power levels and the topic, A kicks; after healing all agree', async () => {
    const { net, hs, a, b, c, alice, bob, carol, dave, roomId } = await setup();
    net.setLink(a.serverName, b.serverName, false);
    net.setLink(a.serverName, c.serverName, false);

    // Side A: alice raises carol to 50, sets the topic, kicks dave, and talks.
    let pl = await getState(alice, roomId, 'm.room.power_levels');
    await putState(alice, roomId, 'm.room.power_levels', { ...pl, users: { ...pl.users, [carol.userId!]: 50 } });
    await putState(alice, roomId, 'm.room.topic', { topic: 'topic from A' });
    expect((await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/kick`, { user_id: dave.userId, reason: 'partition' })).status).toBe(200);
    await send(alice, roomId, 'A during the split');
    // Side B+C: bob lowers the state default and raises carol to 20, sets another topic; carol talks.
    pl = await getState(bob, roomId, 'm.room.power_levels');
    await putState(bob, roomId, 'm.room.power_levels', { ...pl, state_default: 40, users: { ...pl.users, [carol.userId!]: 20 } });
    await putState(bob, roomId, 'm.room.topic', { topic: 'topic from B' });
    await send(bob, roomId, 'B during the split');
    await send(carol, roomId, 'C during the split');
    await waitFor('C has B\'s topic', async () => (await getState(carol, roomId, 'm.room.topic')).topic === 'topic from B');
    expect((await getState(alice, roomId, 'm.room.topic')).topic).toBe('topic from A');

    net.setLink(a.serverName, b.serverName, true);
    net.setLink(a.serverName, c.serverName, true);
    // Each node speaks once after the heal (merging the forks), then every node must agree.
    await converged(hs, roomId, 'queues flushed after the heal');
    for (const u of [alice, bob, carol]) {
      await send(u, roomId, `after the heal: ${u.userId}`);
      await converged(hs, roomId);
    }
    const state = await converged(hs, roomId);
    for (const h of hs) expect(await stateOf(h, roomId)).toEqual(state);
    const msgs = await messageBodies(a, roomId);
    for (const m of ['A during the split', 'B during the split', 'C during the split']) expect(msgs).toContain(m);
    for (const h of hs) expect(await messageBodies(h, roomId)).toEqual(msgs);
    // The kick holds everywhere.
    for (const h of hs) expect(await membershipOn(h, roomId, dave.userId!)).toBe('leave');
    expect(typeof (await getState(carol, roomId, 'm.room.topic')).topic).toBe('string');
  });

  it('A demotes B while B promotes C and kicks; after healing all agree, B\'s later acts follow the resolved power', async () => {
    const { net, hs, a, b, alice, bob, carol, dave, roomId } = await setup(90);
    net.setLink(a.serverName, b.serverName, false);
    net.setLink(a.serverName, hs[2].serverName, false);

    let pl = await getState(alice, roomId, 'm.room.power_levels');
    await putState(alice, roomId, 'm.room.power_levels', { ...pl, users: { ...pl.users, [bob.userId!]: 0 } });
    await putState(alice, roomId, 'm.room.topic', { topic: 'A says' });
    await send(alice, roomId, 'A alone');
    pl = await getState(bob, roomId, 'm.room.power_levels');
    await putState(bob, roomId, 'm.room.power_levels', { ...pl, users: { ...pl.users, [carol.userId!]: 90 } });
    await putState(bob, roomId, 'm.room.topic', { topic: 'B says' });
    expect((await bob.post(`/_matrix/client/v3/rooms/${enc(roomId)}/kick`, { user_id: dave.userId })).status).toBe(200);
    await send(bob, roomId, 'B with C');
    await send(carol, roomId, 'C with B');

    net.setLink(a.serverName, b.serverName, true);
    net.setLink(a.serverName, hs[2].serverName, true);
    await converged(hs, roomId, 'queues flushed after the heal');
    for (const u of [alice, carol, bob]) {
      await send(u, roomId, `healed: ${u.userId}`);
      await converged(hs, roomId);
    }
    const state = await converged(hs, roomId);
    for (const h of hs) expect(await stateOf(h, roomId)).toEqual(state);
    for (const m of ['A alone', 'B with C', 'C with B']) expect(await messageBodies(a, roomId)).toContain(m);
    // Whatever the resolution chose, every node applies the same power levels to what comes next.
    const plNow = await getState(alice, roomId, 'm.room.power_levels');
    const bobLevel = plNow.users?.[bob.userId!] ?? plNow.users_default ?? 0;
    const r = await bob.put(`/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.topic/`, { topic: 'B again' });
    expect(r.status).toBe(bobLevel >= (plNow.events?.['m.room.topic'] ?? plNow.state_default ?? 50) ? 200 : 403);
    await converged(hs, roomId);
  });

  it('messages of a user kicked on the other side are soft-failed there; the DAG and the state still converge', async () => {
    const { net, hs, a, b, c, alice, bob, dave, roomId } = await setup();
    net.setLink(a.serverName, b.serverName, false);
    net.setLink(a.serverName, c.serverName, false);
    expect((await alice.post(`/_matrix/client/v3/rooms/${enc(roomId)}/kick`, { user_id: dave.userId })).status).toBe(200);
    const daves = [await send(dave, roomId, 'dave, unaware'), await send(dave, roomId, 'dave again')];
    await send(bob, roomId, 'bob meanwhile');
    await waitFor('B has dave\'s messages', async () => (await messageBodies(b, roomId)).includes('dave again'));
    await waitFor('C has bob\'s message', async () => (await messageBodies(c, roomId)).includes('bob meanwhile'));
    net.setLink(a.serverName, b.serverName, true);
    net.setLink(a.serverName, c.serverName, true);
    await waitFor('queues flushed', () => queuesEmpty(hs));
    for (const u of [alice, bob]) await send(u, roomId, `healed ${u.userId}`);
    await waitFor('queues flushed', () => queuesEmpty(hs));
    await send(alice, roomId, 'last word');
    await waitFor('C has the last word', async () => (await messageBodies(c, roomId)).includes('last word'));
    // A got dave's messages after it had kicked him: kept in the DAG, never shown (spec: soft failure).
    for (const id of daves) {
      const e = await a.store.rooms.event(id);
      expect(e?.softFailed, `dave's message on A: ${JSON.stringify(e && { stream: e.stream, soft: e.softFailed, rej: e.rejected })}`).toBe(true);
      expect(e?.stream).toBeUndefined();
      const onB = await b.store.rooms.event(id);
      expect(onB?.stream, `on B: ${JSON.stringify(onB && { stream: onB.stream, soft: onB.softFailed, rej: onB.rejected })}`).toBeDefined();
    }
    expect(await messageBodies(a, roomId)).not.toContain('dave, unaware');
    expect(await messageBodies(c, roomId)).toContain('dave, unaware');
    // Everything else agrees: the state everywhere, and the messages but dave's.
    const state = await stateOf(a, roomId);
    for (const h of [b, c]) expect(await stateOf(h, roomId)).toEqual(state);
    for (const h of hs) expect(await membershipOn(h, roomId, dave.userId!)).toBe('leave');
    const others = async (h: Homeserver) => (await messageBodies(h, roomId)).filter((m) => !m.startsWith('dave'));
    for (const h of [b, c]) expect(await others(h)).toEqual(await others(a));
  });

  it('a three-way partition with every side changing the topic and power levels converges after healing', async () => {
    const { net, hs, alice, bob, carol, roomId } = await setup();
    const [a, b, c] = hs;
    const pl = await getState(alice, roomId, 'm.room.power_levels');
    await putState(alice, roomId, 'm.room.power_levels', { ...pl, users: { ...pl.users, [carol.userId!]: 100 } });
    await converged(hs, roomId);
    for (const [x, y] of [[a, b], [a, c], [b, c]]) net.setLink(x.serverName, y.serverName, false);
    for (const [i, u] of [alice, bob, carol].entries()) {
      const cur = await getState(u, roomId, 'm.room.power_levels');
      await putState(u, roomId, 'm.room.power_levels', { ...cur, events_default: i, state_default: 50 + i });
      await putState(u, roomId, 'm.room.topic', { topic: `side ${i}` });
      await putState(u, roomId, 'm.room.name', { name: `name ${i}` });
      for (let k = 0; k < 5; k++) await send(u, roomId, `side ${i} #${k}`);
    }
    // Heal one link at a time.
    net.setLink(a.serverName, b.serverName, true);
    await converged([a, b], roomId, 'A and B flushed');
    net.setLink(b.serverName, c.serverName, true);
    net.setLink(a.serverName, c.serverName, true);
    await converged(hs, roomId, 'all flushed');
    for (const u of [alice, bob, carol]) {
      await send(u, roomId, `healed ${u.userId}`);
      await converged(hs, roomId);
    }
    const state = await converged(hs, roomId);
    for (const h of hs) expect(await stateOf(h, roomId)).toEqual(state);
    expect((await messageBodies(a, roomId)).filter((m) => m.startsWith('side '))).toHaveLength(15);
    const topic = await getState(alice, roomId, 'm.room.topic');
    for (const u of [bob, carol]) expect(await getState(u, roomId, 'm.room.topic')).toEqual(topic);
  });
});
