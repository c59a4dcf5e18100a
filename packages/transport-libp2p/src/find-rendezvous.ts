/**
 * Finding the rendezvous without configuration. The rendezvous answers `GET /rendezvous.json` (and
 * `GET /multiaddr`) on its websocket port; `npm start` also serves the same JSON on the app's own origin.
 * The page tries, in order: an explicit list, `/rendezvous.json` on its own origin, then the default port on
 * its own host.
 */
import { DEFAULT_RENDEZVOUS_PORT, type RendezvousInfo } from './constants.ts';

export function defaultRendezvousUrls(location: { origin: string; protocol: string; hostname: string } = globalThis.location): string[] {
  const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
  return [`${location.origin}/rendezvous.json`, `${location.protocol}//${host}:${DEFAULT_RENDEZVOUS_PORT}/rendezvous.json`];
}

function isInfo(x: unknown): x is RendezvousInfo {
  const i = x as RendezvousInfo | null;
  return !!i && typeof i.peerId === 'string' && Array.isArray(i.multiaddrs) && i.multiaddrs.every((m) => typeof m === 'string');
}

/** The multiaddrs of the first rendezvous that answers (rejects if none does). */
export async function findRendezvous(urls: string[] = defaultRendezvousUrls(), timeoutMs = 3_000): Promise<string[]> {
  const errors: string[] = [];
  for (const url of urls) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const info: unknown = await r.json();
      if (!isInfo(info) || info.multiaddrs.length === 0) throw new Error('not a rendezvous description');
      return info.multiaddrs;
    } catch (e) {
      errors.push(`${url}: ${(e as Error).message}`);
    }
  }
  throw new Error(`no rendezvous found (${errors.join('; ')})`);
}
