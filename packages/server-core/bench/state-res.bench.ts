/**
 * State resolution benchmark: the big conflicted room of shared/bench/gen-bigroom.mjs (room version 11,
 * by default 10,000 members and two forks of 200 conflicting state events). Prints the median time of
 * resolveState over several runs (JSON parsing and the event index excluded), checks that the result does
 * not depend on the order of the state sets, and times resolveDag over the whole room once.
 *
 *   npx tsx packages/server-core/bench/state-res.bench.ts [--n 10000] [--k 200] [--seed 1] [--runs 25] [--in file.json]
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolveDag, resolveState, roomVersion, stateKey, type PDU, type StateMap } from '../src/kernel/index.ts';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
};

function sharedDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const c of [process.env.MATRIX_P2P_SHARED, resolve(here, '../../../../shared')]) {
    if (c && existsSync(join(c, 'bench/gen-bigroom.mjs'))) return c;
  }
  throw new Error('cannot find shared/bench/gen-bigroom.mjs (set MATRIX_P2P_SHARED)');
}

interface ResolveInput {
  room_version: string;
  events: PDU[];
  state_sets: string[][];
}

async function loadInput(): Promise<{ text: string; label: string }> {
  const file = arg('--in', '');
  if (file) return { text: readFileSync(file, 'utf8'), label: file };
  const n = Number(arg('--n', '10000'));
  const k = Number(arg('--k', '200'));
  const seed = Number(arg('--seed', '1'));
  const gen = (await import(pathToFileURL(join(sharedDir(), 'bench/gen-bigroom.mjs')).href)) as {
    generate(p: { n: number; k: number; seed: number }): { input: ResolveInput };
  };
  // Through JSON text, so that the events are what a parser hands the kernel.
  return { text: JSON.stringify(gen.generate({ n, k, seed }).input), label: `gen-bigroom n=${n} k=${k} seed=${seed}` };
}

const ms = (x: number) => `${x.toFixed(2)} ms`;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sameState = (a: StateMap, b: StateMap) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

const { text, label } = await loadInput();
const input = JSON.parse(text) as ResolveInput;
const rules = roomVersion(input.room_version);
if (!rules) throw new Error(`unknown room version ${input.room_version}`);
const byId = new Map<string, PDU>();
for (const e of input.events) byId.set(e.event_id!, e);
const lookup = (id: string) => byId.get(id);
const stateSets: StateMap[] = input.state_sets.map((ids) => {
  const m: StateMap = new Map();
  for (const id of ids) {
    const e = byId.get(id)!;
    m.set(stateKey(e.type, e.state_key!), id);
  }
  return m;
});

console.log(`# state resolution benchmark (Node ${process.version})`);
console.log(`input: ${label}: ${input.events.length} events, state sets ${stateSets.map((s) => s.size).join(' / ')}, room version ${rules.id}`);

const runs = Number(arg('--runs', '25'));
const warmup = 5;
const times: number[] = [];
let result: StateMap | undefined;
for (let i = 0; i < warmup + runs; i++) {
  const t0 = performance.now();
  result = resolveState(stateSets, lookup, rules);
  const dt = performance.now() - t0;
  if (i >= warmup) times.push(dt);
}
const reversed = resolveState([...stateSets].reverse(), lookup, rules);
const changed = [...result!].filter(([k, v]) => stateSets[0].get(k) !== v || stateSets[1].get(k) !== v).length;
console.log(
  `resolveState: median ${ms(median(times))} over ${runs} runs (min ${ms(Math.min(...times))}, max ${ms(Math.max(...times))}); ` +
    `${result!.size} keys, ${changed} differ from a state set`,
);
console.log(`state sets in reverse order give the same state: ${sameState(result!, reversed) ? 'yes' : 'NO'}`);
if (!sameState(result!, reversed)) process.exitCode = 1;

const t0 = performance.now();
const dag = resolveDag(input.events, rules);
const dagMs = performance.now() - t0;
console.log(
  `resolveDag (whole room, once): ${ms(dagMs)}; ${dag.rejected.size} rejected; ` +
    `same state as resolveState: ${sameState(dag.state, result!) ? 'yes' : 'no'}`,
);
