// Temporary (not committed): inner transactions per send / per incremental sync through CachingEngine.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { CachingEngine, createHomeserver, MemoryEngine, MIGRATIONS, type Homeserver, type StorageEngine, type ReadTx, type WriteOp } from '../src/index.ts';
import { openIdbEngine } from '../../store-idb/src/index.ts';

class Counting implements StorageEngine {
  read = 0; write = 0;
  constructor(readonly inner: StorageEngine) {}
  readTx<T>(fn: (tx: ReadTx) => Promise<T>) { return this.inner.read(fn); }
}
function counting(inner: StorageEngine) {
  const counts = { read: 0, write: 0 };
  const e: StorageEngine = {
    read: (fn) => { counts.read++; return inner.read(fn); },
    write: (ops: WriteOp[]) => { counts.write++; return inner.write(ops); },
    close: () => inner.close(),
  };
  return { e, counts };
}
async function call(hs: Homeserver, method: string, path: string, token?: string, body?: unknown): Promise<any> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await hs.handle(new Request(`http://localhost${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }));
  return r.json();
}
for (const kind of ['idb', 'cached-idb']) {
  const idb = await openIdbEngine({ name: 'x', migrations: MIGRATIONS, indexedDB: new IDBFactory() });
  const { e: inner, counts } = counting(idb);
  const engine = kind === 'idb' ? inner : new CachingEngine(inner, { migrations: MIGRATIONS });
  const hs = await createHomeserver({ engine, log: () => {} });
  const first = await call(hs, 'POST', '/_matrix/client/v3/register', undefined, { username: 'u', password: 'p' });
  const reg = await call(hs, 'POST', '/_matrix/client/v3/register', undefined, { username: 'u', password: 'p', auth: { type: 'm.login.dummy', session: first.session } });
  const token = reg.access_token as string;
  const { room_id: roomId } = await call(hs, 'POST', '/_matrix/client/v3/createRoom', token, {});
  let since = (await call(hs, 'GET', '/_matrix/client/v3/sync?timeout=0', token)).next_batch as string;
  const n = 50;
  const perSend = { read: 0, write: 0 }, perSync = { read: 0, write: 0 };
  let tSend = 0, tSync = 0;
  for (let i = 0; i < n; i++) {
    const c0 = { ...counts };
    let t = performance.now();
    await call(hs, 'PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/s${i}`, token, { msgtype: 'm.text', body: `sync ${i}` });
    tSend += performance.now() - t;
    const c1 = { ...counts };
    t = performance.now();
    since = (await call(hs, 'GET', `/_matrix/client/v3/sync?since=${since}&timeout=0`, token)).next_batch;
    tSync += performance.now() - t;
    perSend.read += c1.read - c0.read; perSend.write += c1.write - c0.write;
    perSync.read += counts.read - c1.read; perSync.write += counts.write - c1.write;
  }
  console.log(kind, `send: ${perSend.read / n} read + ${perSend.write / n} write, ${(tSend / n).toFixed(2)} ms; sync: ${perSync.read / n} read + ${perSync.write / n} write, ${(tSync / n).toFixed(2)} ms`, kind === 'cached-idb' ? (engine as CachingEngine).stats : '');
  await hs.stop();
}
