/** The status panel: the node's server name, the worker's state, storage use, and federation peers. */
import { workerStatus, type WorkerStatus } from '@matrix-p2p/sw-host/client';

export interface StatusElements {
  serverName: HTMLElement;
  workerState: HTMLElement;
  storage: HTMLElement;
  /** Federation peers (created next to `storage` when absent). */
  peers?: HTMLElement;
}

type Peer = NonNullable<WorkerStatus['peers']>[number];

/** One line per peer: who, and how (direct WebRTC, relayed through the rendezvous, or a direct socket). */
export function describePeers(peers: readonly Peer[] | undefined, transportHost: boolean | undefined): string {
  if (!transportHost) return 'not federating (no tab runs the node yet)';
  if (!peers || peers.length === 0) return 'none connected';
  const how = (p: Peer) => (p.kind === 'webrtc' ? 'direct (WebRTC)' : p.kind === 'relay' ? 'relayed' : 'direct');
  return peers.map((p) => `${p.serverName.slice(0, 12)}… ${how(p)}`).join('\n');
}

function peersElement(el: StatusElements): HTMLElement {
  if (el.peers) return el.peers;
  const existing = document.getElementById('peers');
  if (existing) return (el.peers = existing);
  const row = document.createElement('div');
  const dt = document.createElement('dt');
  dt.textContent = 'peers';
  const dd = document.createElement('dd');
  dd.id = 'peers';
  dd.style.whiteSpace = 'pre-line';
  row.append(dt, dd);
  (el.storage.parentElement?.parentElement ?? document.body).append(row);
  return (el.peers = dd);
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
      const pe = peersElement(el);
      pe.textContent = describePeers(s.peers, s.transportHost);
      pe.dataset.peers = JSON.stringify((s.peers ?? []).map((p) => ({ serverName: p.serverName, kind: p.kind, direct: p.direct })));
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
