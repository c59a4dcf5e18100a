/**
 * A tiny describe / it / expect harness for suites that take their test functions as parameters
 * (server-core's `engineConformance`, `storeConformance`). The same registration runs twice: in Node,
 * to learn the test names (Playwright declares one test per name), and in the browser page, to run them.
 * No DOM or Node APIs here.
 */

export interface Matchers {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  not: Matchers;
}

export interface HarnessResult {
  name: string;
  ok: boolean;
  error?: string;
  ms: number;
}

interface Case {
  name: string;
  fn: () => Promise<void>;
}

/** Names are `describe › describe › it`, as Playwright shows them. */
export const SEPARATOR = ' › ';

function show(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? `Uint8Array(${Array.from(x).join(',')})` : typeof x === 'bigint' ? `${x}n` : x));
  } catch {
    return String(v);
  }
}

/** Deep equality as `toEqual` means it: own enumerable keys, undefined-valued keys ignored. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    if (!ArrayBuffer.isView(a) || !ArrayBuffer.isView(b) || a.constructor !== b.constructor) return false;
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map && b instanceof Map) || a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !deepEqual(v, b.get(k))) return false;
    return true;
  }
  if (a instanceof Set || b instanceof Set) {
    if (!(a instanceof Set && b instanceof Set) || a.size !== b.size) return false;
    for (const v of a) if (!b.has(v)) return false;
    return true;
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(rb, k) && deepEqual(ra[k], rb[k]));
}

function matchers(actual: unknown, negate: boolean): Matchers {
  const check = (pass: boolean, what: string, expected: unknown) => {
    if (pass === negate) throw new Error(`expected ${show(actual)} ${negate ? 'not ' : ''}${what} ${show(expected)}`);
  };
  const m: Matchers = {
    toBe: (expected) => check(Object.is(actual, expected), 'to be', expected),
    toEqual: (expected) => check(deepEqual(actual, expected), 'to equal', expected),
    get not() {
      return matchers(actual, !negate);
    },
  };
  return m;
}

export function createHarness(opts: { timeoutMs?: number } = {}) {
  const cases: Case[] = [];
  const path: string[] = [];
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return {
    describe(name: string, fn: () => void): void {
      path.push(name);
      try {
        fn();
      } finally {
        path.pop();
      }
    },
    it(name: string, fn: () => Promise<void>): void {
      const full = [...path, name].join(SEPARATOR);
      if (cases.some((c) => c.name === full)) throw new Error(`duplicate test name: ${full}`);
      cases.push({ name: full, fn });
    },
    expect(actual: unknown): Matchers {
      return matchers(actual, false);
    },
    names(): string[] {
      return cases.map((c) => c.name);
    },
    /** Run every case in order; `onResult` sees each as it ends. */
    async run(onResult?: (r: HarnessResult) => void): Promise<HarnessResult[]> {
      const results: HarnessResult[] = [];
      for (const c of cases) {
        const t0 = performance.now();
        let error: string | undefined;
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          await Promise.race([
            c.fn(),
            new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs))),
          ]);
        } catch (e) {
          error = e instanceof Error ? `${e.name}: ${e.message}${e.stack ? `\n${e.stack}` : ''}` : String(e);
        } finally {
          clearTimeout(timer);
        }
        const r: HarnessResult = { name: c.name, ok: error === undefined, ms: performance.now() - t0 };
        if (error !== undefined) r.error = error;
        results.push(r);
        onResult?.(r);
      }
      return results;
    },
  };
}

export type Harness = ReturnType<typeof createHarness>;
