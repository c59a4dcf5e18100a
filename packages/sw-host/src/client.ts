/**
 * Page-side helpers (import `@matrix-p2p/sw-host/client`): register the worker, wait until it controls
 * the page, and ask it for its status. No homeserver code: this is what the page bundle carries.
 */
import { STATUS_REQUEST, type AnyWorkerReply, type WorkerReply, type WorkerStatus } from './protocol.ts';

export type { WorkerStatus, AnyWorkerReply } from './protocol.ts';

/**
 * Register `scriptUrl` (a classic script, scope `/`) and resolve once this page is controlled by an
 * active worker. The worker calls `clients.claim()` on activation, so a first visit is controlled
 * without a reload; `reloadIfNeeded` reloads once as a last resort (e.g. after a hard reload, which
 * bypasses the worker for that page load).
 */
export async function registerHomeserver(
  scriptUrl = '/sw.js',
  opts: { scope?: string; timeoutMs?: number; reloadIfNeeded?: boolean } = {},
): Promise<ServiceWorkerRegistration> {
  const sw = navigator.serviceWorker;
  if (!sw) throw new Error('Service Workers are not available here (they need https:// or http://localhost)');
  let registration: ServiceWorkerRegistration;
  try {
    registration = await sw.register(scriptUrl, { scope: opts.scope ?? '/', updateViaCache: 'none' });
  } catch (e) {
    // Offline with the server gone, an update check can fail; a worker already in charge still serves.
    if (!sw.controller) throw e;
    registration = await sw.ready;
  }
  await sw.ready;
  if (!sw.controller) {
    const controlled = await Promise.race([
      new Promise<boolean>((resolve) => sw.addEventListener('controllerchange', () => resolve(true), { once: true })),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(!!sw.controller), opts.timeoutMs ?? 3000)),
    ]);
    if (!controlled && opts.reloadIfNeeded !== false) {
      const key = 'matrix-p2p:reloaded-for-worker';
      if (!sessionStorage.getItem(key)) {
        sessionStorage.setItem(key, '1');
        location.reload();
        await new Promise(() => {}); // the page is going away
      }
    }
    if (!sw.controller) throw new Error('the homeserver worker does not control this page');
  }
  sessionStorage.removeItem('matrix-p2p:reloaded-for-worker');
  return registration;
}

/**
 * Post `msg` to `worker` with a reply port (plus `transfer`) and resolve with its one answer; rejects after
 * `timeoutMs`. The worker answers every `WorkerRequest` this way (host.ts).
 */
export function askWorker<R = AnyWorkerReply>(worker: ServiceWorker, msg: unknown, transfer: Transferable[] = [], timeoutMs = 60_000): Promise<R> {
  return new Promise((resolve, reject) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => {
      channel.port1.close();
      reject(new Error('the worker did not answer'));
    }, timeoutMs);
    channel.port1.onmessage = (e: MessageEvent<R>) => {
      clearTimeout(timer);
      channel.port1.close();
      resolve(e.data);
    };
    worker.postMessage(msg, [channel.port2, ...transfer]);
  });
}

/** Ask the controlling worker (or `worker`) for its status; rejects after `timeoutMs`. */
export async function workerStatus(worker?: ServiceWorker | null, timeoutMs = 5000): Promise<WorkerStatus> {
  const target = worker ?? navigator.serviceWorker?.controller;
  if (!target) throw new Error('no worker controls this page');
  const reply = await askWorker<WorkerReply>(target, STATUS_REQUEST, [], timeoutMs);
  if (!reply.ok) throw new Error(reply.error);
  return reply.status;
}
