/**
 * Rooms are found through the peers (issue 7), with three real Chromiums (each its own homeserver in its
 * Service Worker, its libp2p node in the page) inside the suite's loopback-only namespace:
 *
 *   A creates a public room; B joins it and publishes `#lobby:<B>` on itself, automatically; A closes;
 *   C opens, finds the room in its aggregated directory (pulled from B, gossiped after), searches it by a
 *   word of its topic, joins it through B, and chats with B; A's listing disappears after the timeout.
 */
import { createRoom, expect, mx, ok, register, send, sync, type Session } from './fixtures.ts';
import { arrives, p2pTest, transport } from './p2p.ts';
import type { Page } from '@playwright/test';

p2pTest.describe.configure({ mode: 'serial' });

type Chunk = { room_id: string; name?: string; topic?: string; canonical_alias?: string; num_joined_members: number; 'org.matrix_p2p.servers'?: string[]; 'org.matrix_p2p.aliases'?: string[] };

async function publicRooms(page: Page, s: Session, body: Record<string, unknown> = {}): Promise<{ chunk: Chunk[]; total_room_count_estimate?: number }> {
  return ok(mx(page, 'POST', '/_matrix/client/v3/publicRooms', { token: s.token, body })) as never;
}

p2pTest('a room stays findable and joinable through whoever is in it: auto-published aliases and the peer directory', async ({ p2p: env }) => {
  p2pTest.setTimeout(180_000);
  const browsers = env.apps;
  const [a, b] = await Promise.all([browsers.launch(env.url), browsers.launch(env.url)]);
  const [A, B] = await Promise.all([transport.serverName(a.page), transport.serverName(b.page)]);
  const [alice, bob] = await Promise.all([register(a.page, 'alice'), register(b.page, 'bob')]);

  const roomId = await createRoom(a.page, alice, {
    preset: 'public_chat', visibility: 'public', room_alias_name: 'lobby', name: 'Lobby', topic: 'a room for gardeners and their tomatoes',
  });
  // B sees A's room in its own directory (gossip or a pull), listed by A.
  await expect.poll(async () => (await publicRooms(b.page, bob)).chunk.find((c) => c.room_id === roomId)?.['org.matrix_p2p.servers'], { timeout: 30_000 }).toEqual([A]);

  // B joins by A's alias, and publishes a local alias for the room on itself, automatically.
  const joined = await ok(mx(b.page, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(`#lobby:${A}`)}`, { token: bob.token, body: {} }));
  expect(joined.room_id).toBe(roomId);
  await expect.poll(async () => (await mx(b.page, 'GET', `/_matrix/client/v3/directory/room/${encodeURIComponent(`#lobby:${B}`)}`)).body.room_id, { timeout: 15_000 }).toBe(roomId);
  // ... and lists it in its own directory (what `publicRooms?server=B` answers, here asked from A over federation).
  await expect.poll(async () => (await ok(mx(a.page, 'GET', `/_matrix/client/v3/publicRooms?server=${B}`, { token: alice.token }))).chunk.map((c: Chunk) => c.room_id), { timeout: 15_000 }).toContain(roomId);
  await send(b.page, bob, roomId, 'B was here before C');

  // A goes away; C opens afterwards and has never seen A.
  await a.close();
  const closedAt = Date.now();
  const c = await browsers.launch(env.url);
  const C = await transport.serverName(c.page);
  const carol = await register(c.page, 'carol');
  const t0 = Date.now();
  await expect.poll(async () => (await publicRooms(c.page, carol)).chunk.some((x) => x.room_id === roomId), { timeout: 20_000, intervals: [100, 250, 500] }).toBe(true);
  const foundMs = Date.now() - t0;
  const entry = (await publicRooms(c.page, carol)).chunk.find((x) => x.room_id === roomId)!;
  expect(entry).toMatchObject({ name: 'Lobby', topic: 'a room for gardeners and their tomatoes', canonical_alias: `#lobby:${A}`, num_joined_members: 2 });
  expect(entry['org.matrix_p2p.servers']).toContain(B);
  expect(entry['org.matrix_p2p.aliases']).toContain(`#lobby:${B}`);

  // Search by a word of the topic; a word that is nowhere finds nothing.
  const byTopic = await publicRooms(c.page, carol, { filter: { generic_search_term: 'TOMATOES' } });
  expect(byTopic.chunk.map((x) => x.room_id)).toEqual([roomId]);
  expect((await publicRooms(c.page, carol, { filter: { generic_search_term: 'cucumbers' } })).chunk).toEqual([]);

  // C joins through B (A is gone), and C and B chat.
  let sinceB = (await sync(b.page, bob)).next_batch as string;
  const viaB = await ok(mx(c.page, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(`#lobby:${B}`)}`, { token: carol.token, body: {} }));
  expect(viaB.room_id).toBe(roomId);
  let sinceC = (await sync(c.page, carol)).next_batch as string;
  await send(c.page, carol, roomId, 'hello B, from C');
  sinceB = await arrives(b.page, bob, roomId, 'hello B, from C', sinceB);
  await send(b.page, bob, roomId, 'hello C, from B');
  sinceC = await arrives(c.page, carol, roomId, 'hello C, from B', sinceC);
  // C has the history from before it joined, too (backfilled through B).
  const history = await ok(mx(c.page, 'GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`, { token: carol.token }));
  expect((history.chunk as any[]).filter((e) => e.type === 'm.room.message').map((e) => e.content.body)).toContain('B was here before C');

  // A's alias still resolves for C while A is away: through the directory, with the nodes that list the room.
  const viaDirectory = await ok(mx(c.page, 'GET', `/_matrix/client/v3/directory/room/${encodeURIComponent(`#lobby:${A}`)}`));
  expect(viaDirectory.room_id).toBe(roomId);
  expect(viaDirectory.servers).toContain(B);

  // A node that went away drops out of the directory after the timeout (20 s after its last announcement).
  await expect.poll(async () => (await publicRooms(c.page, carol)).chunk.find((x) => x.room_id === roomId)?.['org.matrix_p2p.servers'] ?? [], { timeout: 45_000, intervals: [1_000] }).not.toContain(A);
  const goneMs = Date.now() - closedAt;
  // ... while the room stays listed by the nodes in it (B, and C, which published its own alias on joining).
  await expect.poll(async () => [...((await publicRooms(b.page, bob)).chunk.find((x) => x.room_id === roomId)?.['org.matrix_p2p.servers'] ?? [])].sort(), { timeout: 20_000 }).toEqual([B, C].sort());
  console.log(`[p2p-directory] C found the room in its directory ${foundMs} ms after registering; A left the directory ${goneMs} ms after closing`);
});
