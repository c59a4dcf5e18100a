/**
 * Browsers federate: the transport half. Real Chromium pages (one browser each) start libp2p nodes
 * (@matrix-p2p/transport-libp2p, bundled with esbuild into a test page), meet through a real rendezvous
 * process, upgrade to direct WebRTC, and carry HTTP over libp2p streams both ways; the WebRTC links outlive
 * the rendezvous. Runs inside the suite's loopback-only network namespace (scripts/netns.sh). Figures are
 * printed and written to .test-results/p2p-figures.json.
 */
import { expect, test, type Browser, type Page } from '@playwright/test';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { StaticServer } from '../scripts/static-server.mjs';
import { openPeer, quantile, ROOT, serveTestPage, startRendezvousProcess, type RendezvousProcess } from '../packages/transport-libp2p/test-page/harness.ts';

test.describe.configure({ mode: 'serial' });

let server: StaticServer;
const browsers: Browser[] = [];
let rendezvous: RendezvousProcess | undefined;

test.beforeAll(async () => {
  server = await serveTestPage();
});
test.afterAll(async () => {
  await server?.close();
});
test.afterEach(async () => {
  await Promise.all(browsers.splice(0).map((b) => b.close().catch(() => {})));
  await rendezvous?.kill();
  rendezvous = undefined;
});

type Api = {
  start(o: { rendezvousAddrs: string[] }): Promise<{ serverName: string; peerId: string }>;
  peers(): { serverName: string; kind: string; direct: boolean; remoteAddr: string }[];
  rendezvousConnected(): boolean;
  connections(s: string): { remoteAddr: string; direct: boolean; limited: boolean; status: string; multiplexer?: string; encryption?: string }[];
  request(s: string, o: { method?: string; path: string; bodySize?: number; salt?: number }): Promise<{ status: number; ms: number; remote: string; method: string; path: string; bytes: number; same: boolean; text: string }>;
  bench(s: string, n: number): Promise<{ n: number; p50: number; p90: number; p99: number; max: number }>;
  benchRelayed(s: string, rv: string, n: number): Promise<{ remoteAddr: string; limited: boolean; n: number; p50: number; p90: number; p99: number; max: number }>;
  stats(): { webrtcDialsMs: number[]; webrtcDialFailures: number; relayDials: number };
  events(): string[];
};
const call = <K extends keyof Api>(page: Page, fn: K, ...args: Parameters<Api[K]>): Promise<Awaited<ReturnType<Api[K]>>> =>
  page.evaluate(([fn, args]) => ((window as any).p2pTest[fn] as Function)(...args), [fn, args] as const) as never;

async function peer(): Promise<Page> {
  const { browser, page } = await openPeer(`${server.url}/index.html`);
  browsers.push(browser);
  return page;
}

/** Wait until `page` reaches each of `names` over direct WebRTC. */
async function waitDirect(page: Page, names: string[], timeout = 45_000): Promise<void> {
  await expect
    .poll(async () => {
      const peers = await call(page, 'peers');
      return names.every((n) => peers.some((p) => p.serverName === n && p.kind === 'webrtc'));
    }, { timeout, intervals: [100] })
    .toBe(true);
}

function record(figures: Record<string, unknown>): void {
  const dir = join(ROOT, '.test-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'p2p-figures.json');
  const all = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  writeFileSync(file, JSON.stringify({ ...all, ...figures }, null, 2) + '\n');
}

const fmt = (n: number) => `${n.toFixed(1)} ms`;

test('two browsers meet through the rendezvous, go direct over WebRTC, exchange HTTP both ways, and keep working without the rendezvous', async () => {
  test.setTimeout(150_000);
  rendezvous = await startRendezvousProcess();
  const [a, b] = await Promise.all([peer(), peer()]);
  const t0 = Date.now();
  const [A, B] = await Promise.all([call(a, 'start', { rendezvousAddrs: rendezvous.multiaddrs }), call(b, 'start', { rendezvousAddrs: rendezvous.multiaddrs })]);
  expect(A.serverName).toMatch(/^[0-9a-f]{64}$/);

  // Discovery through the rendezvous, then a direct WebRTC connection on both sides.
  await Promise.all([waitDirect(a, [B.serverName]), waitDirect(b, [A.serverName])]);
  const meetMs = Date.now() - t0;
  for (const [page, other] of [[a, B], [b, A]] as const) {
    const [p] = await call(page, 'peers');
    expect(p).toMatchObject({ serverName: other.serverName, kind: 'webrtc', direct: true });
    // The libp2p connection itself: a WebRTC transport, not limited by a relay.
    const conns = await call(page, 'connections', other.serverName);
    const webrtc = conns.filter((c) => c.status === 'open' && /\/webrtc(\/|$)/.test(c.remoteAddr));
    expect(webrtc.length, JSON.stringify(conns)).toBeGreaterThanOrEqual(1);
    expect(webrtc[0]!.limited).toBe(false);
    expect(webrtc[0]!.direct).toBe(true);
  }
  // One side dialled: the smaller server name (the other dials only if that fails for a while).
  const [sa, sb] = [await call(a, 'stats'), await call(b, 'stats')];
  const dialer = A.serverName < B.serverName ? sa : sb;
  const listener = A.serverName < B.serverName ? sb : sa;
  expect(dialer.webrtcDialsMs.length).toBeGreaterThanOrEqual(1);
  if (dialer.webrtcDialFailures === 0) expect(listener.webrtcDialsMs.length).toBe(0);

  // HTTP over libp2p streams, both ways: a POST with a 100 KB body, echoed byte for byte; the responder
  // sees the requester's server name.
  for (const [from, to, fromName] of [[a, B.serverName, A.serverName], [b, A.serverName, B.serverName]] as const) {
    const r = await call(from, 'request', to, { method: 'POST', path: '/_matrix/federation/v1/echo?x=1', bodySize: 100_000, salt: 7 });
    expect(r).toMatchObject({ status: 200, remote: fromName, method: 'POST', path: '/_matrix/federation/v1/echo?x=1', bytes: 100_000, same: true });
    const forbidden = await call(from, 'request', to, { path: '/_matrix/client/v3/sync' });
    expect(forbidden.status).toBe(403);
  }

  // Figures: round trips over direct WebRTC, and over a relayed connection through the rendezvous.
  const direct = await call(a, 'bench', B.serverName, 200);
  const relayed = await call(a, 'benchRelayed', B.serverName, rendezvous.multiaddrs[0]!, 100);
  expect(relayed.remoteAddr).toContain('/p2p-circuit/');
  expect(relayed.remoteAddr).not.toContain('/webrtc');
  const big = await call(a, 'request', B.serverName, { method: 'PUT', path: '/_matrix/media/v3/upload', bodySize: 4 * 1024 * 1024, salt: 3 });
  expect(big).toMatchObject({ status: 200, same: true });
  const throughput = (2 * 4) / (big.ms / 1000); // MiB/s, echo counts both directions

  // The rendezvous goes away: the WebRTC link stays, and requests keep flowing both ways.
  await rendezvous.kill();
  await expect.poll(() => call(a, 'rendezvousConnected'), { timeout: 15_000 }).toBe(false);
  await expect.poll(() => call(b, 'rendezvousConnected'), { timeout: 15_000 }).toBe(false);
  await new Promise((r) => setTimeout(r, 3_000));
  for (const [from, to, fromName] of [[a, B.serverName, A.serverName], [b, A.serverName, B.serverName]] as const) {
    expect((await call(from, 'peers'))[0]).toMatchObject({ serverName: to, kind: 'webrtc' });
    const r = await call(from, 'request', to, { method: 'POST', path: '/_matrix/federation/v1/after', bodySize: 100_000, salt: 9 });
    expect(r).toMatchObject({ status: 200, remote: fromName, bytes: 100_000, same: true });
  }
  const after = await call(b, 'bench', A.serverName, 50);

  const figures = {
    'two-browsers': {
      discoveryToDirectMs: meetMs,
      webrtcDialThroughRelayMs: dialer.webrtcDialsMs,
      webrtcDialFailures: dialer.webrtcDialFailures,
      directWebRTC: direct,
      relayed,
      directAfterRendezvousGone: after,
      echo4MiB: { ms: big.ms, mibPerSecond: throughput },
    },
  };
  record(figures);
  console.log(
    `[p2p] start → direct WebRTC on both sides: ${meetMs} ms; WebRTC dial through the relay: ${dialer.webrtcDialsMs.map(fmt).join(', ')} (failed attempts retried: ${dialer.webrtcDialFailures})` +
      `\n[p2p] HTTP round trip over direct WebRTC (n=${direct.n}): p50 ${fmt(direct.p50)}, p99 ${fmt(direct.p99)}` +
      `\n[p2p] HTTP round trip over the relay (n=${relayed.n}): p50 ${fmt(relayed.p50)}, p99 ${fmt(relayed.p99)}` +
      `\n[p2p] after the rendezvous was killed (n=${after.n}): p50 ${fmt(after.p50)}, p99 ${fmt(after.p99)}` +
      `\n[p2p] 4 MiB echo over WebRTC: ${fmt(big.ms)} (${throughput.toFixed(1)} MiB/s both ways)`,
  );
});

test('three browsers discover each other and every pair goes direct', async () => {
  test.setTimeout(150_000);
  rendezvous = await startRendezvousProcess();
  const pages = await Promise.all([peer(), peer(), peer()]);
  const t0 = Date.now();
  const ids = await Promise.all(pages.map((p) => call(p, 'start', { rendezvousAddrs: rendezvous!.multiaddrs })));
  const names = ids.map((i) => i.serverName);
  await Promise.all(pages.map((p, i) => waitDirect(p, names.filter((_, j) => j !== i), 90_000)));
  const allDirectMs = Date.now() - t0;
  // Every node can reach every other, with the right identity.
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      if (i === j) continue;
      const r = await call(pages[i]!, 'request', names[j]!, { method: 'PUT', path: `/_matrix/federation/v1/send/${i}-${j}`, bodySize: 1000, salt: i * 3 + j });
      expect(r).toMatchObject({ status: 200, remote: names[i], same: true });
    }
  }
  const stats = await Promise.all(pages.map((p) => call(p, 'stats')));
  const dials = stats.flatMap((s) => s.webrtcDialsMs);
  const failures = stats.reduce((n, s) => n + s.webrtcDialFailures, 0);
  expect(dials.length).toBeGreaterThanOrEqual(3);
  record({ 'three-browsers': { allPairsDirectMs: allDirectMs, webrtcDialsMs: dials, webrtcDialFailures: failures } });
  console.log(
    `[p2p] 3 browsers: all pairs direct after ${allDirectMs} ms; WebRTC dials ${dials.map(fmt).join(', ')} (median ${fmt(quantile(dials, 0.5))}); failed attempts retried: ${failures}`,
  );
});
