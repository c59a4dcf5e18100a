/**
 * The page: registers the homeserver worker (`/sw.js`), waits until it controls this page, shows the
 * status panel, and mounts the chat client against the in-browser homeserver (base URL = this origin).
 */
import { registerHomeserver } from '@matrix-p2p/sw-host/client';
import { mountChat } from './chat/index.ts';
import { startStatusPanel } from './status.ts';
import { startTransportHost } from './transport-host.ts';

const byId = (id: string): HTMLElement => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from index.html`);
  return el;
};

async function main(): Promise<void> {
  const panel = startStatusPanel({ serverName: byId('server-name'), workerState: byId('worker-state'), storage: byId('storage') });
  let registration: ServiceWorkerRegistration;
  try {
    registration = await registerHomeserver('/sw.js');
  } catch (e) {
    panel.failed(e instanceof Error ? e.message : String(e));
    return;
  }
  panel.watch(registration);
  // Ask the browser not to evict the node's IndexedDB under storage pressure (it may say no).
  void navigator.storage?.persist?.().catch(() => false);
  document.documentElement.dataset.homeserver = 'ready';
  // Federation: one tab per origin runs the libp2p node for the worker (elected with Web Locks).
  const transport = startTransportHost(registration, () => void panel.refresh());
  (window as unknown as { matrixP2pTransport?: unknown }).matrixP2pTransport = transport;
  mountChat(byId('chat'), { baseUrl: location.origin });
}

void main();
