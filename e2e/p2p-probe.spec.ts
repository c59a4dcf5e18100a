import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);
import { test } from '@playwright/test';
import { openPeer, serveTestPage, startRendezvousProcess } from '../packages/transport-libp2p/test-page/harness.ts';
test('probe listener-side first requests', async () => {
  test.setTimeout(300_000);
  const server = await serveTestPage();
  const rv = await startRendezvousProcess();
  const a = await openPeer(`${server.url}/index.html`), b = await openPeer(`${server.url}/index.html`);
  for (const p of [a, b]) { await p.page.addInitScript(() => localStorage.setItem('debug', 'libp2p:webrtc*,libp2p:connection*,libp2p:connection-monitor*,libp2p:mss*')); await p.page.reload(); await p.page.waitForFunction(() => document.documentElement.dataset.ready === 'true'); }
  const logs: string[] = [];
  for (const [n, p] of [['a', a], ['b', b]] as const) p.page.on('console', (m) => { const t = m.text(); logs.push(`${Date.now()} ${n} ${t.slice(0, 400)}`); });
  const call = (p: any, fn: string, ...args: any[]) => p.page.evaluate(([fn, args]: any) => (window as any).p2pTest[fn](...args), [fn, args]);
  for (let round = 0; round < 15; round++) {
    const A = await call(a, 'start', { rendezvousAddrs: rv.multiaddrs }); const B = await call(b, 'start', { rendezvousAddrs: rv.multiaddrs });
    for (let i = 0; i < 200; i++) { const pa = await call(a, 'peers'); const pb = await call(b, 'peers'); if (pa[0]?.kind === 'webrtc' && pb[0]?.kind === 'webrtc') break; await new Promise((r) => setTimeout(r, 50)); }
    const listener = A.serverName < B.serverName ? b : a; const other = A.serverName < B.serverName ? A : B;
    const t0 = Date.now();
    const res = await Promise.allSettled([0, 1, 2].map((i) => call(listener, 'request', other.serverName, { path: `/_matrix/federation/v1/x${i}` })));
    console.log('round', round, 'ms', Date.now() - t0, res.map((r) => r.status === 'fulfilled' ? `ok ${r.value.ms.toFixed(0)}` : `ERR ${String(r.reason).slice(0, 200)}`));
    if (res.some((r) => r.status === 'rejected')) { require('node:fs').writeFileSync('/tmp/p2ptest/fail-log.txt', logs.join('\n')); console.log('FAILED, logs', logs.length); break; }
    logs.length = 0;
    await call(a, 'stop'); await call(b, 'stop');
  }
  await a.browser.close(); await b.browser.close(); await rv.kill(); await server.close();
});
