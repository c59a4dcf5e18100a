/** Shared fixtures for federation tests: in-process nodes (stopped after each test) and polling waits. */
import { afterEach } from 'vitest';
import { createHomeserver, createNetworkedMemoryHomeserver, InProcessNetwork, MemoryEngine, MIGRATIONS, type Homeserver } from '../../src/index.ts';
import { FederationError } from '../../src/federation/service.ts';

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
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The status a federation request gets: 200, or the FederationError's status and errcode. */
export async function federationStatus(p: Promise<unknown>): Promise<{ status: number; errcode: string }> {
  try {
    await p;
    return { status: 200, errcode: '' };
  } catch (e) {
    if (e instanceof FederationError) return { status: e.status, errcode: e.errcode };
    throw e;
  }
}

/**
 * A homeserver on `net` whose store outlives it, as IndexedDB does: `start()` opens one over the same store (the
 * same key and server name). The memory engine cannot be re-opened once closed, so a restart abandons the old
 * instance (stop its background work and detach it from `net` first) rather than stopping it.
 */
export function restartable(net: InProcessNetwork, log: (e: unknown) => void = (e) => console.error('restartable:', e)) {
  const engine = new MemoryEngine(MIGRATIONS);
  let name = '';
  return {
    async start(): Promise<Homeserver> {
      const hs = await createHomeserver({ engine, transport: net.transportFor(() => name), log });
      name = hs.serverName;
      net.attach(hs);
      return hs;
    },
  };
}

