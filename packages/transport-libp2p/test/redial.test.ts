/**
 * A peer that goes away and comes back (a browser closed, then reopened with the same profile: same key, same
 * PeerId) is dialled again as soon as it announces itself, not when the backoff built up by the failed dials
 * while it was away runs out. Real libp2p in Node through a real rendezvous, relayed connections.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startRendezvous, type Rendezvous } from '../../../rendezvous/src/index.ts';
import { createP2PNode, type P2PNode } from '../src/index.ts';

async function waitFor<T>(fn: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let dir: string;
let rv: Rendezvous;
const nodes: P2PNode[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rendezvous-redial-'));
  rv = await startRendezvous({ port: 0, keyFile: join(dir, 'key') });
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
  await rv?.stop();
  await rm(dir, { recursive: true, force: true });
});

it('a peer back after a silence is dialled at once, whatever the backoff of the failed dials', { timeout: 60_000 }, async () => {
  // Slow retries (3 s, 6 s, 12 s, …), and the larger peer would wait 30 s for the smaller one to dial.
  const opts = (seedByte: number, log?: (m: string) => void) =>
    createP2PNode({
      seed: new Uint8Array(32).fill(seedByte),
      rendezvousAddrs: rv.multiaddrs,
      announceIntervalMs: 500,
      webrtc: false,
      dial: { baseDelayMs: 3_000, maxDelayMs: 30_000, fallbackAfterMs: 30_000 },
      log: log ? (m) => log(m) : undefined,
    });
  const probe = [await opts(41), await opts(42)];
  const [small, large] = [...probe].sort((x, y) => (x.serverName < y.serverName ? -1 : 1));
  const largeSeed = large === probe[0] ? 41 : 42;
  const failures: string[] = [];
  const s = await opts(small === probe[0] ? 41 : 42, (m) => {
    if (m.startsWith('relayed dial to') && m.endsWith('failed')) failures.push(m);
  });
  let l = await opts(largeSeed);
  nodes.push(s, l);
  await s.start();
  await l.start();
  await waitFor(() => s.peers().some((p) => p.serverName === l.serverName), 15_000, 'the smaller peer to reach the larger');

  // The larger peer goes away; the smaller one's dials fail, twice: the next is some 6 s away.
  await l.stop();
  await waitFor(() => s.peers().length === 0, 10_000, 'the peer to be gone');
  await waitFor(() => failures.length >= 2, 20_000, 'two failed dials');

  // It comes back (same key): reached at once, not after the backoff (nor after the 30 s the larger peer waits).
  l = await opts(largeSeed);
  nodes.push(l);
  const t0 = Date.now();
  await l.start();
  await waitFor(() => s.peers().some((p) => p.serverName === l.serverName), 15_000, 'the peer to be reached again');
  expect(Date.now() - t0).toBeLessThan(3_000);
  const res = await s.request(l.serverName, new Request('http://x/_matrix/federation/v1/version'));
  expect(res.status).toBe(503); // reached (no handler: the transport answers for it)
});
