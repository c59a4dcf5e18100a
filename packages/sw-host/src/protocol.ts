/**
 * The page ⇄ worker message protocol, kept tiny: a page posts `{ type }` with a MessagePort, the worker
 * answers once on that port. Shared by the worker (host.ts) and the page helper (client.ts).
 */

import type { PeerStatus, WireRequest, WireResponse } from '@matrix-p2p/transport-libp2p';

/** What a page may ask. */
export type WorkerRequest =
  | { type: 'matrix-p2p/status' }
  /** The transport host asks for the node's seed (base64 of the ed25519 seed) to start its libp2p node. */
  | { type: 'matrix-p2p/node-seed' }
  /**
   * The transport host (the tab that runs the libp2p node) attaches itself: `ports[1]` serves its
   * TransportHostApi with comlink (transport-libp2p's `exposeHost` / `wrapHost`); on `ports[2]`, if given, the
   * worker serves inbound requests (`exposeInbound` / `wrapInbound`); the answer goes on `ports[0]`.
   */
  | { type: 'matrix-p2p/transport-host'; peers: string[] }
  /** An inbound federation request from `peer`, posted to the registration's active worker (wakes it). */
  | { type: 'matrix-p2p/inbound'; peer: string; request: WireRequest }
  /** A message the transport host received on the broadcast topic (room-directory gossip). */
  | { type: 'matrix-p2p/broadcast'; message: ArrayBuffer };

/** Worker → any page (clients.matchAll): the worker runs without a transport host (e.g. it was restarted). */
export const NEED_HOST = 'matrix-p2p/need-host';

/** The status panel's figures. */
export interface WorkerStatus {
  /** The node's Matrix server name (hex of its ed25519 public key). */
  serverName: string;
  /** The build of the worker script (its cache version). */
  version: string;
  /** A random id for this run of the worker: it changes whenever the browser restarts the worker. */
  startId: string;
  /** When this run of the worker started (ms since the epoch). */
  startedAt: number;
  /** Milliseconds from the worker's start (its time origin) until its script had run (load + compile + evaluate). */
  scriptMs: number;
  /** Of which evaluating the script's top level (the build marks where it began; 0 if unknown). */
  evalMs: number;
  /** How long the homeserver took to open its IndexedDB store on this run (ms). */
  startupMs: number;
  /** `/_matrix` requests answered by this run. */
  requests: number;
  /** Federation peers as the transport host sees them (absent when no tab runs the libp2p node). */
  peers?: PeerStatus[];
  /** Whether a tab runs the libp2p node for this worker. */
  transportHost?: boolean;
  /** `navigator.storage.estimate()` as seen by the worker (bytes), when the browser offers it. */
  storage?: { usage: number; quota: number };
}

/** The answer to a status request. */
export type WorkerReply = { ok: true; status: WorkerStatus } | { ok: false; error: string };
/** The answer to any request (status, node seed, transport host, inbound). */
export type AnyWorkerReply =
  | WorkerReply
  | { ok: true; seed: string; serverName: string }
  | { ok: true; response: WireResponse }
  | { ok: true; attached: true }
  | { ok: true; delivered: true };

export const STATUS_REQUEST: WorkerRequest = { type: 'matrix-p2p/status' };

export function isWorkerRequest(data: unknown): data is WorkerRequest {
  const t = typeof data === 'object' && data !== null ? (data as { type?: unknown }).type : undefined;
  return t === 'matrix-p2p/status' || t === 'matrix-p2p/node-seed' || t === 'matrix-p2p/transport-host' || t === 'matrix-p2p/inbound' || t === 'matrix-p2p/broadcast';
}
