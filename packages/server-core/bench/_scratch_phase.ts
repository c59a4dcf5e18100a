import { authEventTypes, computeEventId, createNetworkedMemoryHomeserver, hashAndSignEvent, InProcessNetwork, roomVersion, stateKey, type PDU } from '../src/index.ts';
import { verifyPdu } from '../src/federation/ingest.ts';
const N = 5000; const PROF = !!process.env.PROF;
const net = new InProcessNetwork();
const a = await createNetworkedMemoryHomeserver(net);
const e = await createNetworkedMemoryHomeserver(net);
const reg = async (hs: any, u: string) => (await (await hs.handle(new Request('http://l/_matrix/client/v3/register', { method: 'POST', body: JSON.stringify({ username: u, password: 'p', auth: { type: 'm.login.dummy' } }) }))).json()).access_token;
const at = await reg(a, 'alice'); const et = await reg(e, 'eve');
const roomId = (await (await a.handle(new Request('http://l/_matrix/client/v3/createRoom', { method: 'POST', headers: { authorization: `Bearer ${at}` }, body: JSON.stringify({ preset: 'public_chat' }) }))).json()).room_id;
await e.handle(new Request(`http://l/_matrix/client/v3/join/${encodeURIComponent(roomId)}?via=${a.serverName}`, { method: 'POST', headers: { authorization: `Bearer ${et}` }, body: '{}' }));
e.federation.stop();
const room = (await a.store.rooms.room(roomId))!; const rules = roomVersion(room.version)!; const state = await a.store.rooms.currentState(roomId);
let prev = [...room.extremities]; let depth = room.maxDepth; const pdus: PDU[] = [];
for (let i = 0; i < N; i++) { const d: PDU = { room_id: roomId, sender: `@eve:${e.serverName}`, type: 'm.room.message', content: { msgtype: 'm.text', body: `message ${i}: an ordinary chat message of ordinary length` }, origin_server_ts: Date.now(), depth: ++depth, prev_events: prev, auth_events: [] };
  d.auth_events = authEventTypes(d, rules).map(([t, k]) => state.get(stateKey(t, k))!).filter(Boolean); const s = await hashAndSignEvent(d, rules, e.serverName, e.signingKey); pdus.push(s); prev = [computeEventId(s, rules)]; }
for (let rep = 0; rep < (PROF ? 3 : 0); rep++) {
  let t0 = performance.now();
  for (let i = 0; i < N; i += 50) await Promise.all(pdus.slice(i, i + 50).map((p) => verifyPdu(p, rules)));
  const tv = performance.now() - t0;
  t0 = performance.now();
  for (let i = 0; i < N; i++) await verifyPdu(pdus[i], rules);
  const tvs = performance.now() - t0;
  console.log(`verify batched ${(N / tv * 1000).toFixed(0)}/s, sequential ${(N / tvs * 1000).toFixed(0)}/s`);
}
const { Session } = await import('node:inspector/promises'); const { writeFileSync } = await import('node:fs');
const session = new Session(); if (PROF) { session.connect(); await session.post('Profiler.enable'); await session.post('Profiler.start'); }
const cpu0 = process.cpuUsage(); const t0 = performance.now();
for (let i = 0; i < N; i += 50) await a.ingest.receivePdus(e.serverName, pdus.slice(i, i + 50));
if (PROF) { const { profile } = await session.post('Profiler.stop'); writeFileSync('/tmp/fedprof/phase.cpuprofile', JSON.stringify(profile)); }
const t = performance.now() - t0; const cpu = process.cpuUsage(cpu0);
console.log(`ingest ${(N / t * 1000).toFixed(0)}/s wall; cpu user+sys ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms for ${t.toFixed(0)} ms wall`);
process.exit(0);
