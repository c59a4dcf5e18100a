import { ensureWebBuild, buildTestPages } from '../scripts/build-web.mjs';
import { launchDetached } from './detached.ts';
import { startP2PEnv } from './p2p.ts';
ensureWebBuild({ quiet: true, force: true }); buildTestPages({ quiet: true });
const env = await startP2PEnv('probe');
const media = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];
for (let k = 0; k < Number(process.env.RUNS ?? 1); k++) {
  const a = launchDetached(`${env.url}/__e2e/p2p-bench.html?role=a&n=60`, media);
  const { serverName } = await a.report<{ serverName: string }>('MATRIX_P2P_BENCH_A');
  const b = launchDetached(`${env.url}/__e2e/p2p-bench.html?role=b&server=${serverName}&n=60`, media);
  const r = await b.report<{ latencies: number[] }>('MATRIX_P2P_BENCH', 240000);
  const xs = [...r.latencies].sort((p, q) => p - q);
  console.log('p50', xs[30].toFixed(2));
  console.log(/PROBE [^"]*/.exec((b as any).log)?.[0]);
  await b.close(); await a.close();
}
await env.close(); process.exit(0);
