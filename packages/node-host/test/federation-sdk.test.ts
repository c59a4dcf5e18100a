/**
 * matrix-js-sdk clients on three federating homeservers: three in-process nodes on an InProcessNetwork,
 * each served over its own HTTP port (`startNodeHost({ hs })`), one SDK client per node with its own
 * sync loop. Rooms spanning the three nodes: joins by id through another node, messages every way,
 * a remote invite, a leave; then a partition (links cut with `setLink`) during which both sides talk
 * and change the topic and power levels, and, after healing, every client sees every message and the
 * same room state, and every node holds the identical state.
 *
 * No fixed sleeps: waits are on the SDK's model, re-checked when the client emits, bounded (15 s).
 */
import './shims.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as sdk from 'matrix-js-sdk';
import { ClientEvent, EventType, Preset, RoomEvent, RoomMemberEvent, RoomStateEvent, Visibility, type MatrixClient, type Room } from 'matrix-js-sdk';
import { logger as sdkLogger, type Logger } from 'matrix-js-sdk/lib/logger.js';
import { createNetworkedMemoryHomeserver, InProcessNetwork, type Homeserver } from '@matrix-p2p/server-core';
import { startNodeHost, type NodeHost } from '../src/index.ts';

const WAIT_MS = 15_000;
(sdkLogger as unknown as { setLevel(level: string): void }).setLevel('error');
function quietLogger(): Logger {
  const l: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error: (...a: unknown[]) => console.error('[matrix-js-sdk]', ...a), getChild: () => l };
  return l;
}

const WAKE = [ClientEvent.Sync, ClientEvent.Room, RoomEvent.Timeline, RoomEvent.MyMembership, RoomEvent.Name, RoomMemberEvent.Membership, RoomStateEvent.Events, RoomStateEvent.Members] as const;

function waitUntil<T>(client: MatrixClient, what: string, check: () => T | undefined | null | false, ms = WAIT_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const em = client as unknown as { on(e: string, f: () => void): void; off(e: string, f: () => void): void };
    const done = () => {
      clearTimeout(timer);
      clearInterval(poll);
      for (const e of WAKE) em.off(e, probe);
    };
    const probe = () => {
      let v: T | undefined | null | false;
      try {
        v = check();
      } catch (e) {
        done();
        reject(e);
        return;
      }
      if (v !== undefined && v !== null && v !== false) {
        done();
        resolve(v);
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${client.getUserId()}: timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    // Server-side changes that no client event announces (e.g. another node's store) are polled too.
    const poll = setInterval(probe, 50);
    for (const e of WAKE) em.on(e, probe);
    probe();
  });
}

function bodies(room: Room | null): string[] {
  return room ? room.getLiveTimeline().getEvents().filter((e) => e.getType() === EventType.RoomMessage && !e.status).map((e) => e.getContent().body as string) : [];
}

interface Node {
  hs: Homeserver;
  host: NodeHost;
  client: MatrixClient;
  userId: string;
}

describe('matrix-js-sdk clients on three federating homeservers', { timeout: 120_000 }, () => {
  const net = new InProcessNetwork();
  const nodes: Node[] = [];
  let A: Node;
  let B: Node;
  let C: Node;

  beforeAll(async () => {
    for (const name of ['alice', 'bob', 'carol']) {
      const hs = await createNetworkedMemoryHomeserver(net, { log: (e) => console.error(`${name}'s node:`, e) });
      const host = await startNodeHost({ hs });
      const anon = sdk.createClient({ baseUrl: host.url, logger: quietLogger() });
      const reg = await anon.register(name, 'correct horse battery staple', null, { type: 'm.login.dummy' });
      const client = sdk.createClient({ baseUrl: host.url, userId: reg.user_id, accessToken: reg.access_token, deviceId: reg.device_id, store: new sdk.MemoryStore(), timelineSupport: true, logger: quietLogger() });
      await client.startClient({ initialSyncLimit: 50 });
      await waitUntil(client, 'the first sync', () => client.getSyncState() === sdk.SyncState.Prepared || client.getSyncState() === sdk.SyncState.Syncing);
      nodes.push({ hs, host, client, userId: reg.user_id });
    }
    [A, B, C] = nodes;
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) n.client.stopClient();
    for (const n of nodes) await n.host.close();
  });

  let roomId: string;

  it('B and C join A\'s room by id through other nodes; messages go every way', async () => {
    ({ room_id: roomId } = await A.client.createRoom({ name: 'Three servers', preset: Preset.PublicChat, visibility: Visibility.Private, topic: 'first topic' }));
    // B joins through A; C joins through B (which is itself a joined-over-federation node).
    await B.client.joinRoom(roomId, { viaServers: [A.hs.serverName] });
    await waitUntil(B.client, 'B to see the room joined', () => B.client.getRoom(roomId)?.getMyMembership() === 'join');
    await C.client.joinRoom(roomId, { viaServers: [B.hs.serverName] });
    // Every server says all three are in (GET /joined_members through each client).
    const everyone = nodes.map((n) => n.userId).sort();
    for (const n of nodes) {
      const deadline = Date.now() + WAIT_MS;
      let joined: string[] = [];
      while (Date.now() < deadline && JSON.stringify((joined = Object.keys((await n.client.getJoinedRoomMembers(roomId)).joined).sort())) !== JSON.stringify(everyone)) await new Promise((r) => setTimeout(r, 25));
      expect(joined).toEqual(everyone);
    }
    expect((await C.client.getStateEvent(roomId, EventType.RoomTopic, '')).topic).toBe('first topic');

    for (const n of nodes) await n.client.sendTextMessage(roomId, `hello from ${n.userId}`);
    const expected = nodes.map((n) => `hello from ${n.userId}`).sort();
    for (const n of nodes) await waitUntil(n.client, 'the three greetings', () => expected.every((b) => bodies(n.client.getRoom(roomId)).includes(b)));
  });

  it('the SDK of a user who joined over federation knows the room from /sync: its name, topic and members', async () => {
    for (const n of [B, C]) {
      await waitUntil(n.client, 'the room\'s members in the SDK', () => {
        const r = n.client.getRoom(roomId);
        return r && nodes.every((m) => r.getMember(m.userId)?.membership === 'join');
      }, 5_000);
      const room = n.client.getRoom(roomId)!;
      expect(room.name).toBe('Three servers');
      expect(room.currentState.getStateEvents(EventType.RoomTopic, '')?.getContent().topic).toBe('first topic');
    }
  });

  it('an invite across servers, and a leave seen everywhere', async () => {
    const { room_id: dm } = await B.client.createRoom({ preset: Preset.PrivateChat, visibility: Visibility.Private, invite: [C.userId], name: 'B and C' });
    await waitUntil(C.client, 'the invite from B', () => C.client.getRoom(dm)?.getMyMembership() === 'invite');
    expect(C.client.getRoom(dm)!.name).toBe('B and C');
    await C.client.joinRoom(dm);
    await waitUntil(B.client, 'C joined the DM', () => B.client.getRoom(dm)?.getMember(C.userId)?.membership === 'join');
    await C.client.sendTextMessage(dm, 'thanks for the invite');
    await waitUntil(B.client, 'C\'s message in the DM', () => bodies(B.client.getRoom(dm)).includes('thanks for the invite'));

    await C.client.leave(dm);
    await waitUntil(B.client, 'C left the DM', () => B.client.getRoom(dm)?.getMember(C.userId)?.membership === 'leave');
  });

  it('a partition: both sides talk and change the topic and power levels; after healing all agree', async () => {
    // Bob gets power to change state, so that both sides can.
    const pl = A.client.getRoom(roomId)!.currentState.getStateEvents(EventType.RoomPowerLevels, '')!.getContent();
    await A.client.sendStateEvent(roomId, EventType.RoomPowerLevels, { ...pl, users: { ...pl.users, [B.userId]: 100 } }, '');
    await waitUntil(B.client, 'Bob at 100', () => B.client.getRoom(roomId)?.currentState.getStateEvents(EventType.RoomPowerLevels, '')?.getContent().users?.[B.userId] === 100);

    // A on one side; B and C on the other.
    net.setLink(A.hs.serverName, B.hs.serverName, false);
    net.setLink(A.hs.serverName, C.hs.serverName, false);
    await A.client.setRoomTopic(roomId, 'topic from A');
    const plA = A.client.getRoom(roomId)!.currentState.getStateEvents(EventType.RoomPowerLevels, '')!.getContent();
    await A.client.sendStateEvent(roomId, EventType.RoomPowerLevels, { ...plA, users: { ...plA.users, [C.userId]: 50 } }, '');
    await A.client.sendTextMessage(roomId, 'A, alone');
    await B.client.setRoomTopic(roomId, 'topic from B');
    const plB = B.client.getRoom(roomId)!.currentState.getStateEvents(EventType.RoomPowerLevels, '')!.getContent();
    await B.client.sendStateEvent(roomId, EventType.RoomPowerLevels, { ...plB, state_default: 40 }, '');
    await B.client.sendTextMessage(roomId, 'B, with C');
    await C.client.sendTextMessage(roomId, 'C, with B');
    await waitUntil(C.client, 'B\'s topic at C', () => C.client.getRoom(roomId)?.currentState.getStateEvents(EventType.RoomTopic, '')?.getContent().topic === 'topic from B');
    expect(bodies(A.client.getRoom(roomId))).not.toContain('B, with C');

    net.setLink(A.hs.serverName, B.hs.serverName, true);
    net.setLink(A.hs.serverName, C.hs.serverName, true);
    const split = ['A, alone', 'B, with C', 'C, with B'];
    for (const n of nodes) await waitUntil(n.client, 'every message of the split', () => split.every((b) => bodies(n.client.getRoom(roomId)).includes(b)));
    // Each node speaks once after the heal (merging the forks), waiting for it to arrive everywhere.
    for (const n of nodes) {
      const body = `healed: ${n.userId}`;
      await n.client.sendTextMessage(roomId, body);
      for (const m of nodes) await waitUntil(m.client, `"${body}" everywhere`, () => bodies(m.client.getRoom(roomId)).includes(body));
    }
    // Every node holds the same state, and every client shows it.
    const states = await Promise.all(nodes.map(async (n) => JSON.stringify([...(await n.hs.store.rooms.currentState(roomId))].sort())));
    expect(states[1]).toBe(states[0]);
    expect(states[2]).toBe(states[0]);
    // The resolved state, asked of each server by its client (GET /state): the same everywhere. (The
    // SDK's own room model may still show the topic last seen in its timeline: /sync's `state` only
    // carries changes before the timeline, so a resolution that keeps an earlier event is not sent.)
    const topics = await Promise.all(nodes.map(async (n) => (await n.client.getStateEvent(roomId, EventType.RoomTopic, '')).topic));
    expect(['topic from A', 'topic from B']).toContain(topics[0]);
    expect(topics).toEqual([topics[0], topics[0], topics[0]]);
    const pls = await Promise.all(nodes.map(async (n) => JSON.stringify(await n.client.getStateEvent(roomId, EventType.RoomPowerLevels, ''))));
    expect(new Set(pls).size).toBe(1);
    const all = nodes.map((n) => bodies(n.client.getRoom(roomId)).sort());
    expect(all[1]).toEqual(all[0]);
    expect(all[2]).toEqual(all[0]);
  });
});
