/**
 * Which addresses the node may dial. The browser default of libp2p refuses loopback, private addresses and
 * insecure websockets, which rules out a rendezvous on 127.0.0.1 (development, tests) or on a LAN. Allowing
 * everything instead would let any peer that announces addresses make every browser open connections into
 * its intranet. So:
 *   - a rendezvous address (as configured) is always allowed, whatever its host;
 *   - circuit addresses are allowed only through a configured rendezvous (by peer id or address);
 *   - WebRTC addresses with no relay part (already-negotiated peers) are allowed;
 *   - anything else must be a public address, unless `allowPrivate` (headless Node peers on a LAN, tests).
 */
import type { ConnectionGater } from '@libp2p/interface';
import { isPrivate } from '@libp2p/utils';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';

/** `ma` without its trailing /p2p/<id>, as a string. */
function transportPart(ma: Multiaddr): string {
  const comps = ma.getComponents();
  while (comps.length > 0 && comps[comps.length - 1]!.name === 'p2p') comps.pop();
  return comps.map((c) => `/${c.name}${c.value !== undefined ? `/${c.value}` : ''}`).join('');
}

export function createGater(rendezvous: Multiaddr[], opts: { allowPrivate?: boolean } = {}): ConnectionGater {
  const ids = new Set(rendezvous.map((r) => r.getComponents().findLast((c) => c.name === 'p2p')?.value).filter((x): x is string => !!x));
  const addrs = new Set(rendezvous.map(transportPart));

  const isRendezvous = (ma: Multiaddr): boolean => {
    const comps = ma.getComponents();
    const id = comps.findLast((c) => c.name === 'p2p')?.value;
    if (id !== undefined && ids.has(id)) return true;
    return addrs.has(transportPart(ma));
  };

  function allowed(ma: Multiaddr): boolean {
    const comps = ma.getComponents();
    const circuit = comps.findIndex((c) => c.name === 'p2p-circuit');
    if (circuit >= 0) {
      const relay = comps.slice(0, circuit);
      if (relay.length === 0) return true; // a bare /p2p-circuit/...: libp2p picks a relay we are connected to
      return isRendezvous(multiaddr(relay.map((c) => `/${c.name}${c.value !== undefined ? `/${c.value}` : ''}`).join('')));
    }
    if (comps[0]?.name === 'webrtc' || (comps[0]?.name === 'p2p' && comps.length === 1)) return true;
    if (isRendezvous(ma)) return true;
    return opts.allowPrivate === true || !isPrivate(ma);
  }

  return {
    denyDialMultiaddr: (ma) => !allowed(ma),
  };
}
