/**
 * Homeserver core benchmark (issue: core on one node):
 *  - local echo over real HTTP: PUT send → the sender's pending long-poll /sync returns it; p50/p99;
 *  - events/s sustained through the whole send pipeline (sign, authorise, commit) into the memory store
 *    and into the IndexedDB store (fake-indexeddb in Node).
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { createHomeserver, MIGRATIONS, MemoryEngine, type Homeserver } from '@matrix-p2p/server-core';
import { openIdbEngine } from '@matrix-p2p/store-idb';
import { startNodeHost } from '../src/index.ts';

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

async function json(url: string, init: RequestInit & { token?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const r = await fetch(url, { ...init, headers });
  return r.json() as Promise<any>;
}

async function localEcho(n: number) {
  const host = await startNodeHost({ port: 0 });
  try {
    const reg = await json(`${host.url}/_matrix/client/v3/register`, { method: 'POST', body: JSON.stringify({ username: 'bench', password: 'pw', auth: { type: 'm.login.dummy' } }) });
    const token = reg.access_token;
    const { room_id } = await json(`${host.url}/_matrix/client/v3/createRoom`, { method: 'POST', token, body: '{}' });
    let since = (await json(`${host.url}/_matrix/client/v3/sync?timeout=0`, { token })).next_batch;
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const poll = json(`${host.url}/_matrix/client/v3/sync?since=${since}&timeout=10000`, { token });
      await new Promise((r) => setTimeout(r, 2)); // let the long-poll park
      const t0 = performance.now();
      await json(`${host.url}/_matrix/client/v3/rooms/${encodeURIComponent(room_id)}/send/m.room.message/t${i}`, { method: 'PUT', token, body: JSON.stringify({ msgtype: 'm.text', body: `echo ${i}` }) });
      const res = await poll;
      times.push(performance.now() - t0);
      if (!res.rooms?.join?.[room_id]) throw new Error('sync did not return the event');
      since = res.next_batch;
    }
    console.log(`local echo over HTTP (send → long-poll /sync returns it), n=${n}: p50 ${pct(times, 50).toFixed(2)} ms, p99 ${pct(times, 99).toFixed(2)} ms`);
  } finally {
    await host.close();
  }
}

async function ingest(label: string, hs: Homeserver, n: number) {
  const reg = await hs.auth.register('writer', 'pw', {});
  const roomId = await hs.rooms.createRoom(reg.user_id, {});
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await hs.rooms.send(reg.user_id, reg.device_id!, roomId, 'm.room.message', { msgtype: 'm.text', body: `message number ${i} `.repeat(8) }, `t${i}`);
  const s = (performance.now() - t0) / 1000;
  console.log(`events/s sustained into the ${label} store (sign + auth + commit, one at a time), n=${n}: ${Math.round(n / s)} /s`);
  await hs.stop();
}

console.log('# core benchmark (Node ' + process.version + ')');
await localEcho(200);
await ingest('memory', await createHomeserver({ engine: new MemoryEngine(MIGRATIONS) }), 3000);
await ingest('IndexedDB (fake-indexeddb)', await createHomeserver({ engine: await openIdbEngine({ name: 'bench', migrations: [...MIGRATIONS], indexedDB: new IDBFactory() }) }), 3000);
