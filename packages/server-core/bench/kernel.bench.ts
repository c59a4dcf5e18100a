/**
 * Kernel benchmark: ed25519 sign/verify per second (WebCrypto and the pure-JS fallback), SHA-256 and
 * canonical JSON throughput, event id computation. Prints figures; asserts nothing.
 */
import {
  canonicalJson, computeEventId, decodeBase64, hashAndSignEvent, parseJson, roomVersion, sha256, signingKeyFromSeed,
  signJson, useEd25519Backend, verifyJson, verifyEventSignature, type JsonObject, type PDU,
} from '../src/index.ts';

const seed = decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1');

async function rate(label: string, ms: number, fn: () => Promise<unknown> | unknown, batch = 1): Promise<number> {
  const end = performance.now() + ms;
  let n = 0;
  // warm up
  for (let i = 0; i < 20; i++) await fn();
  const t0 = performance.now();
  while (performance.now() < end) {
    const ps: unknown[] = [];
    for (let i = 0; i < batch; i++) ps.push(fn());
    await Promise.all(ps);
    n += batch;
  }
  const perSec = (n / (performance.now() - t0)) * 1000;
  console.log(`${label.padEnd(52)} ${Math.round(perSec).toLocaleString('en-US').padStart(10)} /s`);
  return perSec;
}

const event: PDU = {
  room_id: '!abcdefghijklmnop:example.org',
  sender: '@alice:example.org',
  type: 'm.room.message',
  content: { msgtype: 'm.text', body: 'Hello, this is a fairly ordinary chat message of ordinary length.' },
  origin_server_ts: 1_700_000_000_000,
  depth: 12345,
  prev_events: ['$Zq6xY4o0dM1m2dJg3W6wF2gkCdsO4Y1jY0t5c5l3tBs'],
  auth_events: ['$a1', '$a2', '$a3'].map((x) => x + 'Zq6xY4o0dM1m2dJg3W6wF2gkCdsO4Y1jY0t5c5l3'),
};

console.log('# kernel benchmark (Node ' + process.version + ')');
for (const backend of ['webcrypto', 'noble'] as const) {
  await useEd25519Backend(backend);
  const key = await signingKeyFromSeed(seed);
  const obj: JsonObject = { one: 1, two: 'Two', nested: { a: [1, 2, 3], b: 'x'.repeat(200) } };
  const signed = await signJson(obj, 'domain', key);
  const ms = backend === 'noble' ? 1000 : 1500;
  await rate(`ed25519 sign JSON (${backend}, sequential)`, ms, () => signJson(obj, 'domain', key));
  await rate(`ed25519 verify JSON (${backend}, sequential)`, ms, () => verifyJson(signed, 'domain', 'ed25519:1', key.publicKey));
  if (backend === 'webcrypto') {
    await rate(`ed25519 sign JSON (${backend}, 64 in flight)`, ms, () => signJson(obj, 'domain', key), 64);
    await rate(`ed25519 verify JSON (${backend}, 64 in flight)`, ms, () => verifyJson(signed, 'domain', 'ed25519:1', key.publicKey), 64);
    const v11 = roomVersion('11')!;
    const pdu = await hashAndSignEvent(event, v11, 'example.org', key);
    await rate('event: verify signature + id (v11, 64 in flight)', ms, async () => {
      computeEventId(pdu, v11);
      return verifyEventSignature(pdu, v11, 'example.org', 'ed25519:1', key.publicKey);
    }, 64);
  }
}
await useEd25519Backend('webcrypto');

// Canonical JSON throughput on a realistic mix: a large state-like document.
const doc: JsonObject = {};
for (let i = 0; i < 2000; i++) {
  doc[`@user${(i * 7919) % 2000}:server${i % 13}.example.org`] = {
    membership: i % 3 ? 'join' : 'leave', displayname: `User ${i} 日本語 🐈`, avatar_url: `mxc://server/${i}`, n: i * 1000003,
  };
}
const text = JSON.stringify(doc);
const bytes = new TextEncoder().encode(canonicalJson(doc)).length;
{
  const runs = 30;
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) canonicalJson(doc);
  const s = (performance.now() - t0) / 1000;
  console.log(`${'canonical JSON encode'.padEnd(52)} ${((bytes * runs) / s / 1e6).toFixed(1).padStart(10)} MB/s`);
  const t1 = performance.now();
  for (let i = 0; i < runs; i++) parseJson(text);
  const s1 = (performance.now() - t1) / 1000;
  console.log(`${'JSON parse with big-integer check'.padEnd(52)} ${((text.length * runs) / s1 / 1e6).toFixed(1).padStart(10)} MB/s`);
  const big = new TextEncoder().encode(text);
  const t2 = performance.now();
  for (let i = 0; i < runs; i++) sha256(big);
  const s2 = (performance.now() - t2) / 1000;
  console.log(`${'sha256'.padEnd(52)} ${((big.length * runs) / s2 / 1e6).toFixed(1).padStart(10)} MB/s`);
}
await rate('event id (v11 reference hash)', 1000, () => computeEventId(event, roomVersion('11')!));
