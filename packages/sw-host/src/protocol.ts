/**
 * The page ⇄ worker message protocol, kept tiny: a page posts `{ type }` with a MessagePort, the worker
 * answers once on that port. Shared by the worker (host.ts) and the page helper (client.ts).
 */

/** What a page may ask. */
export type WorkerRequest = { type: 'matrix-p2p/status' };

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
  /** `navigator.storage.estimate()` as seen by the worker (bytes), when the browser offers it. */
  storage?: { usage: number; quota: number };
}

export type WorkerReply = { ok: true; status: WorkerStatus } | { ok: false; error: string };

export const STATUS_REQUEST: WorkerRequest = { type: 'matrix-p2p/status' };

export function isWorkerRequest(data: unknown): data is WorkerRequest {
  return typeof data === 'object' && data !== null && (data as { type?: unknown }).type === 'matrix-p2p/status';
}
