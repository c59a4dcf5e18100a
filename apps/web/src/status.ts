/** The status panel: the node's server name, the worker's state, and storage use. */
import { workerStatus } from '@matrix-p2p/sw-host/client';

export interface StatusElements {
  serverName: HTMLElement;
  workerState: HTMLElement;
  storage: HTMLElement;
}

const REFRESH_MS = 15_000;

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function startStatusPanel(el: StatusElements) {
  const setState = (text: string, state: string) => {
    el.workerState.textContent = text;
    el.workerState.dataset.state = state;
  };

  async function refresh(): Promise<void> {
    const sw = navigator.serviceWorker;
    const worker = sw?.controller;
    if (!worker) {
      setState('not controlling this page', 'error');
      return;
    }
    try {
      const s = await workerStatus(worker);
      el.serverName.textContent = s.serverName;
      el.serverName.title = `build ${s.version}; worker run ${s.startId}, store opened in ${s.startupMs.toFixed(1)} ms`;
      setState(`${worker.state}, ${s.requests} requests this run`, 'ok');
    } catch (e) {
      setState(`${worker.state}, not answering (${e instanceof Error ? e.message : String(e)})`, 'error');
    }
    const est = await navigator.storage?.estimate?.().catch(() => undefined);
    const persisted = await navigator.storage?.persisted?.().catch(() => false);
    el.storage.textContent = est
      ? `${formatBytes(est.usage ?? 0)} of ${formatBytes(est.quota ?? 0)}${persisted ? ', persistent' : ''}`
      : 'unknown';
  }

  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    watch(registration: ServiceWorkerRegistration): void {
      void refresh();
      timer ??= setInterval(() => void refresh(), REFRESH_MS);
      navigator.serviceWorker.addEventListener('controllerchange', () => void refresh());
      registration.addEventListener('updatefound', () => setState('updating', 'starting'));
      document.addEventListener('visibilitychange', () => {
        if (document.visibilityState === 'visible') void refresh();
      });
    },
    failed(message: string): void {
      setState(message, 'error');
      el.serverName.textContent = '—';
    },
    refresh,
  };
}
