/** Shared fixtures for federation tests: in-process nodes (stopped after each test) and polling waits. */
import { afterEach } from 'vitest';
import { createNetworkedMemoryHomeserver, InProcessNetwork, type Homeserver } from '../../src/index.ts';

const running: Homeserver[] = [];
afterEach(async () => {
  for (const n of running.splice(0)) await n.stop().catch(() => {});
});

/** Stop this homeserver after the current test. */
export function stopAfterTest(...hss: Homeserver[]): void {
  running.push(...hss);
}

/** `n` homeservers on one in-process network; internal errors are collected in `errors`. */
export async function nodes(n: number, opts: { clock?: () => number } = {}) {
  const net = new InProcessNetwork();
  const errors: unknown[] = [];
  const hss: Homeserver[] = [];
  for (let i = 0; i < n; i++) hss.push(await createNetworkedMemoryHomeserver(net, { ...opts, log: (e) => errors.push(e) }));
  running.push(...hss);
  return { net, hss, errors };
}

/** Poll `fn` until it returns something truthy, or fail after `ms`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
