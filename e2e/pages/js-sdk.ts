/**
 * matrix-js-sdk (the SDK Element Web is built on) in a page controlled by the homeserver worker: two
 * users register, one creates a room and invites the other, both send, and each client's own sync loop
 * receives what the other sent. Every wait is bounded and driven by the SDK's own events.
 */
import { ClientEvent, MatrixError, Preset, RoomEvent, RoomMemberEvent, createClient, type MatrixClient, type MatrixEvent } from 'matrix-js-sdk';

const WAIT_MS = 15_000;
const log = (line: string) => {
  document.getElementById('out')!.textContent += line + '\n';
};

function until<T>(what: string, client: MatrixClient, events: string[], probe: () => T | undefined): Promise<T> {
  const emitter = client as unknown as { on(e: string, f: () => void): void; off(e: string, f: () => void): void };
  return new Promise((resolve, reject) => {
    const check = () => {
      let v: T | undefined;
      try {
        v = probe();
      } catch (e) {
        return done(e as Error);
      }
      if (v !== undefined && v !== null && (v as unknown) !== false) done(undefined, v);
    };
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}`)), WAIT_MS);
    const done = (err?: Error, v?: T) => {
      clearTimeout(timer);
      for (const e of events) emitter.off(e, check);
      if (err) reject(err);
      else resolve(v as T);
    };
    for (const e of events) emitter.on(e, check);
    check();
  });
}

async function register(baseUrl: string, username: string): Promise<MatrixClient> {
  const anon = createClient({ baseUrl });
  const password = 'correct horse battery staple';
  let res;
  try {
    res = await anon.registerRequest({ username, password, initial_device_display_name: 'js-sdk e2e' });
  } catch (e) {
    // The user-interactive auth dance: 401 with a session, then the dummy stage.
    if (!(e instanceof MatrixError) || e.httpStatus !== 401) throw e;
    const session = (e.data as { session?: string }).session;
    res = await anon.registerRequest({ username, password, auth: { type: 'm.login.dummy', session } });
  }
  anon.stopClient();
  const client = createClient({ baseUrl, userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id });
  await client.startClient({ initialSyncLimit: 20 });
  await until(`${username}'s first sync`, client, [ClientEvent.Sync], () => (client.isInitialSyncComplete() ? true : undefined));
  return client;
}

const bodies = (client: MatrixClient, roomId: string) =>
  (client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [])
    .filter((e: MatrixEvent) => e.getType() === 'm.room.message' && !e.status) // status null: the server's copy came back
    .map((e: MatrixEvent) => `${e.getSender()}: ${e.getContent().body}`);

export interface SdkScenarioResult {
  serverName: string;
  roomId: string;
  alice: string[];
  bob: string[];
  versions: string[];
}

async function scenario(baseUrl: string): Promise<SdkScenarioResult> {
  const suffix = Math.random().toString(36).slice(2, 8);
  const alice = await register(baseUrl, `alice${suffix}`);
  const bob = await register(baseUrl, `bob${suffix}`);
  log(`registered ${alice.getUserId()} and ${bob.getUserId()}`);
  const versions = (await alice.getVersions()).versions;

  const { room_id: roomId } = await alice.createRoom({ name: 'js-sdk room', preset: Preset.PrivateChat, invite: [bob.getUserId()!] });
  await until('the room in alice sync', alice, [ClientEvent.Room, RoomEvent.Timeline], () => alice.getRoom(roomId));
  await until('the invite in bob sync', bob, [ClientEvent.Room, RoomMemberEvent.Membership], () => bob.getRoom(roomId)?.getMyMembership() === 'invite');
  await bob.joinRoom(roomId);
  await until('bob joined, in alice sync', alice, [RoomMemberEvent.Membership, RoomEvent.Timeline], () =>
    alice.getRoom(roomId)?.getMember(bob.getUserId()!)?.membership === 'join');
  log(`room ${roomId}: both joined`);

  // A conversation: each line is sent once the previous one reached both clients through their syncs.
  const lines: Array<[MatrixClient, string]> = [[alice, 'hello from alice'], [bob, 'hello from bob'], [alice, 'how are you?']];
  const want: string[] = [];
  for (const [from, text] of lines) {
    await from.sendTextMessage(roomId, text);
    want.push(`${from.getUserId()}: ${text}`);
    for (const c of [alice, bob]) {
      await until(`"${text}" at ${c.getUserId()}`, c, [RoomEvent.Timeline, RoomEvent.LocalEchoUpdated], () =>
        want.every((w) => bodies(c, roomId).includes(w)) ? true : undefined);
    }
  }
  const result = { serverName: alice.getDomain()!, roomId, alice: bodies(alice, roomId), bob: bodies(bob, roomId), versions };
  alice.stopClient();
  bob.stopClient();
  log('done');
  return result;
}

declare global {
  interface Window {
    sdkScenario: (baseUrl: string) => Promise<SdkScenarioResult>;
  }
}
window.sdkScenario = scenario;
