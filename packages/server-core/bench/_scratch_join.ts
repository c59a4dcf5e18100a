import { authEventTypes, computeEventId, createNetworkedMemoryHomeserver, hashAndSignEvent, InProcessNetwork, roomVersion, stateKey, type PDU } from '../src/index.ts';
const M = Number(process.env.M ?? 10000); const PROF = !!process.env.PROF;
const net = new InProcessNetwork();
const a = await createNetworkedMemoryHomeserver(net);
const e = await createNetworkedMemoryHomeserver(net);
const reg = async (hs: any, u: string) => (await (await hs.handle(new Request('http://l/_matrix/client/v3/register', { method: 'POST', body: JSON.stringify({ username: u, password: 'p', auth: { type: 'm.login.dummy' } }) }))).json()).access_token;
const at = await reg(a, 'alice'); const et = await reg(e, 'eve');
const roomId = (await (await a.handle(new Request('http://l/_matrix/client/v3/createRoom', { method: 'POST', headers: { authorization: `Bearer ${at}` }, body: JSON.stringify({ preset: 'public_chat' }) }))).json()).room_id;
await e.handle(new Request(`http://l/_matrix/client/v3/join/${encodeURIComponent(roomId)}?via=${a.serverName}`, { method: 'POST', headers: { authorization: `Bearer ${et}` }, body: '{}' }));
e.federation.stop(); net.setOnline(e.serverName, false);
const room = (await a.store.rooms.room(roomId))!; const rules = roomVersion(room.version)!; const state = await a.store.rooms.currentState(roomId);
let prev = [...room.extremities]; let depth = room.maxDepth; const pdus: PDU[] = [];
for (let i = 0; i < M; i++) { const u = `@m${i}:${e.serverName}`; const d: PDU = { room_id: roomId, sender: u, state_key: u, type: 'm.room.member', content: { membership: 'join', displayname: `Member ${i}` }, origin_server_ts: Date.now(), depth: ++depth, prev_events: prev, auth_events: [] };
  d.auth_events = authEventTypes(d, rules).map(([t, k]) => state.get(stateKey(t, k))!).filter(Boolean); const s = await hashAndSignEvent(d, rules, e.serverName, e.signingKey); pdus.push(s); prev = [computeEventId(s, rules)]; }
let t0 = performance.now(); let c0 = process.cpuUsage();
for (let i = 0; i < M; i += 50) await a.ingest.receivePdus(e.serverName, pdus.slice(i, i + 50));
let c = process.cpuUsage(c0);
console.log(`setup ingest of ${M} joins: ${(performance.now() - t0).toFixed(0)} ms wall, ${((c.user + c.system) / 1000).toFixed(0)} ms cpu`);
const { Session } = await import('node:inspector/promises'); const { writeFileSync } = await import('node:fs');
for (let rep = 0; rep < 3; rep++) {
  const b = await createNetworkedMemoryHomeserver(net); const bt = await reg(b, 'bob');
  const session = new Session(); if (PROF && rep === 2) { session.connect(); await session.post('Profiler.enable'); await session.post('Profiler.start'); }
  t0 = performance.now(); c0 = process.cpuUsage();
  const r = await b.handle(new Request(`http://l/_matrix/client/v3/join/${encodeURIComponent(roomId)}?via=${a.serverName}`, { method: 'POST', headers: { authorization: `Bearer ${bt}` }, body: '{}' }));
  c = process.cpuUsage(c0);
  if (PROF && rep === 2) { const { profile } = await session.post('Profiler.stop'); writeFileSync('/tmp/fedprof/join.cpuprofile', JSON.stringify(profile)); }
  console.log(`join: ${r.status} ${(performance.now() - t0).toFixed(0)} ms wall, ${((c.user + c.system) / 1000).toFixed(0)} ms cpu; B state ${(await b.store.rooms.currentState(roomId)).size}`);
  net.setOnline(b.serverName, false);
}
process.exit(0);
