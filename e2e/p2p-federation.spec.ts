/**
 * Browsers federate (issue 6): two real Chromiums, each with the app (homeserver in the Service Worker, the
 * libp2p node in the page elected as transport host), meet through a real rendezvous process, go direct over
 * WebRTC, and carry Matrix federation: A creates a room with an alias, B joins `#alias:<A>`, messages flow both
 * ways into each side's /sync, and keep flowing once the rendezvous is gone. Inside the suite's loopback-only
 * network namespace. Figures are printed.
 */
import { arrives, p2pTest, transport, waitDirect } from './p2p.ts';
import { createRoom, expect, messagesIn, mx, ok, register, send, stopWorkers, sync, workerStatus } from './fixtures.ts';

p2pTest.describe.configure({ mode: 'serial' });

p2pTest('two browsers federate over direct WebRTC: join by alias, chat both ways, and keep chatting without the rendezvous', async ({ p2p: env }) => {
  p2pTest.setTimeout(180_000);
  const { rendezvous, apps } = env;

  const t0 = Date.now();
  const [a, b] = (await Promise.all([apps.launch(env.url), apps.launch(env.url)])).map((x) => x.page);
  const [A, B] = await Promise.all([transport.serverName(a), transport.serverName(b)]);
  expect(A).toMatch(/^[0-9a-f]{64}$/);
  expect(B).not.toBe(A);
  // The node's identity is the homeserver's: the worker reports the same server name.
  const statusA = await a.evaluate(() => document.getElementById('server-name')?.textContent);
  expect([A, '…']).toContain(statusA);

  // Direct WebRTC on both sides.
  for (const [page, other] of [[a, B], [b, A]] as const) {
    await waitDirect(page, other);
  }
  const directMs = Date.now() - t0;

  const [alice, bob] = await Promise.all([register(a, 'alice'), register(b, 'bob')]);
  const roomId = await createRoom(a, alice, { room_alias_name: 'lobby', preset: 'public_chat', name: 'Lobby' });
  const joined = await ok(mx(b, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(`#lobby:${A}`)}`, { token: bob.token, body: {} }));
  expect(joined.room_id).toBe(roomId);

  let sinceA = (await sync(a, alice)).next_batch as string;
  let sinceB = (await sync(b, bob)).next_batch as string;
  await send(b, bob, roomId, 'hello from B');
  sinceA = await arrives(a, alice, roomId, 'hello from B', sinceA);
  await send(a, alice, roomId, 'hello from A');
  sinceB = await arrives(b, bob, roomId, 'hello from A', sinceB);

  // The status panel shows the peer, direct.
  await expect.poll(() => a.evaluate(() => document.getElementById('peers')?.textContent ?? ''), { timeout: 30_000 }).toContain('direct (WebRTC)');

  // Latency: send in A → visible in B's /sync, over direct WebRTC.
  const lat: number[] = [];
  for (let i = 0; i < 10; i++) {
    const body = `ping ${i}`;
    const t = Date.now();
    await send(a, alice, roomId, body);
    sinceB = await arrives(b, bob, roomId, body, sinceB);
    lat.push(Date.now() - t);
  }

  // The rendezvous goes away: chat continues over the WebRTC link.
  await rendezvous.kill();
  await expect.poll(() => transport.rendezvous(a), { timeout: 20_000 }).toBe(false);
  await send(b, bob, roomId, 'after the rendezvous, from B');
  sinceA = await arrives(a, alice, roomId, 'after the rendezvous, from B', sinceA);
  await send(a, alice, roomId, 'after the rendezvous, from A');
  sinceB = await arrives(b, bob, roomId, 'after the rendezvous, from A', sinceB);
  expect((await transport.peers(a)).find((p) => p.serverName === B)).toMatchObject({ kind: 'webrtc', direct: true });

  // B's worker is stopped mid-conversation: A's messages arrive over libp2p in B's page, which posts them to
  // the stopped worker (that wakes it); nothing is lost, and the restarted worker gets its transport host back.
  const runB = (await workerStatus(b)).startId;
  await stopWorkers(b);
  for (let i = 0; i < 3; i++) await send(a, alice, roomId, `while B's worker was stopped ${i}`);
  await expect.poll(async () => (await workerStatus(b)).startId, { timeout: 10_000 }).not.toBe(runB);
  const seenB: string[] = [];
  const deadline = Date.now() + 30_000;
  while (seenB.filter((m) => m.startsWith("while B's worker")).length < 3 && Date.now() < deadline) {
    const r = await sync(b, bob, sinceB, 2_000);
    seenB.push(...messagesIn(r, roomId));
    sinceB = r.next_batch;
  }
  expect(seenB.filter((m) => m.startsWith("while B's worker"))).toEqual([0, 1, 2].map((i) => `while B's worker was stopped ${i}`));
  await send(b, bob, roomId, 'B is back');
  sinceA = await arrives(a, alice, roomId, 'B is back', sinceA);

  lat.sort((x, y) => x - y);
  console.log(`[p2p-federation] start → direct WebRTC both sides: ${directMs} ms; send in A → in B's /sync (n=${lat.length}): p50 ${lat[Math.floor(lat.length / 2)]} ms, max ${lat[lat.length - 1]} ms`);
});
