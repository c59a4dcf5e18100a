/** Loads the shared kernel fixtures (../shared/fixtures/kernel, see its README for the format). */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface KernelFixture {
  file: string;
  name: string;
  command: string;
  compare?: string;
  input?: unknown;
  input_text?: string;
  expect?: unknown;
  expect_text?: string;
  expect_exit?: number;
}

const here = dirname(fileURLToPath(import.meta.url));

/** The shared folder: $MATRIX_P2P_SHARED, or `shared/` beside the repository. */
export function sharedDir(): string {
  const candidates = [process.env.MATRIX_P2P_SHARED, resolve(here, '../../../../../shared')];
  for (const c of candidates) if (c && existsSync(join(c, 'fixtures/kernel'))) return c;
  throw new Error('cannot find shared/fixtures/kernel (set MATRIX_P2P_SHARED)');
}

export function loadKernelFixtures(folder?: string): KernelFixture[] {
  const root = join(sharedDir(), 'fixtures/kernel');
  const folders = folder ? [folder] : readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory() && d.name !== 'LICENSES').map((d) => d.name);
  const out: KernelFixture[] = [];
  for (const f of folders.sort()) {
    for (const file of readdirSync(join(root, f)).filter((n) => n.endsWith('.json')).sort()) {
      out.push({ file: `${f}/${file}`, ...JSON.parse(readFileSync(join(root, f, file), 'utf8')) });
    }
  }
  return out;
}

/** The stdin text of a fixture. */
export function stdinOf(fx: KernelFixture): string {
  return fx.input_text ?? JSON.stringify(fx.input);
}

/** Compares a command's stdout with the fixture's expectation; returns a message when they differ. */
export function mismatch(fx: KernelFixture, stdout: string): string | undefined {
  if (fx.expect_text !== undefined) {
    const got = stdout.endsWith('\n') ? stdout.slice(0, -1) : stdout;
    return got === fx.expect_text ? undefined : `stdout ${JSON.stringify(got)} != ${JSON.stringify(fx.expect_text)}`;
  }
  if (fx.expect !== undefined) {
    let got: unknown = JSON.parse(stdout);
    let want: unknown = fx.expect;
    if (fx.compare) {
      got = (got as Record<string, unknown>)[fx.compare];
      want = (want as Record<string, unknown>)[fx.compare];
    }
    return deepEqual(got, want) ? undefined : `got ${JSON.stringify(got)}\nwant ${JSON.stringify(want)}`;
  }
  return undefined;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
