/**
 * The one place for runtime shims (shared/notes/browser-p2p.md, "Node 20 pitfalls"). Browsers need none of
 * them; Node 20 needs both. Every entry point that creates a libp2p node (createP2PNode, the rendezvous)
 * calls `installShims()` first.
 *
 * - libp2p 3.x calls `Promise.withResolvers` (Node 22+). Without it `createLibp2p` fails with "Promise.withResolvers
 *   is not a function", or a misleading "Pubsub is not started".
 * - `@libp2p/websockets` dials with the global `WebSocket` (Node 22+, or `--experimental-websocket` on 20). In
 *   Node without one, the `ws` package's client stands in (it follows the browser API closely enough).
 */

interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

/** Adds `Promise.withResolvers` where it is missing (Node 20). Synchronous and idempotent. */
export function installPromiseWithResolvers(): void {
  const P = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> };
  if (typeof P.withResolvers === 'function') return;
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>(): Resolvers<T> {
      let resolve!: Resolvers<T>['resolve'];
      let reject!: Resolvers<T>['reject'];
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

/** True in Node (and Deno/Bun's Node mode), false in browsers and workers. */
export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string' && typeof (globalThis as { window?: unknown }).window === 'undefined';
}

/** Makes sure a global `WebSocket` exists (Node 20 without `--experimental-websocket`: the `ws` client). */
export async function installWebSocket(): Promise<void> {
  if (typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function') return;
  if (!isNode()) return;
  // A computed specifier keeps bundlers from pulling `ws` into browser builds.
  const specifier = 'ws';
  const mod = (await import(/* @vite-ignore */ specifier)) as { WebSocket: unknown; default?: unknown };
  (globalThis as { WebSocket?: unknown }).WebSocket = mod.WebSocket ?? mod.default;
}

/** Everything above; call (and await) before creating a libp2p node. */
export async function installShims(): Promise<void> {
  installPromiseWithResolvers();
  await installWebSocket();
}

// Cheap and synchronous: applied on import too, so code that touches libp2p before awaiting installShims()
// (a module that creates a node at top level) still works.
installPromiseWithResolvers();
