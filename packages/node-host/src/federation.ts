/**
 * Federation between Node hosts over plain HTTP (`--peer <url>`): a FederationTransport that knows a
 * fixed list of peer base URLs and learns each one's server name from its signed key object
 * (`GET <url>/_matrix/key/v2/server`). A server name is the hex of the server's ed25519 public key
 * (docs/ARCHITECTURE.md, Identity), so the answer is trusted only when one of its `verify_keys` is that
 * name's key and the object carries that key's signature — a peer cannot claim another's name.
 *
 * Peers that do not answer are asked again with backoff; a peer whose requests start failing is
 * probed until it answers again. Either way, when a peer answers (again), `onPeerReachable` listeners
 * hear its name, so the outbound queues flush at once. A peer that restarts with a new key (the Node
 * host's store is in memory) is re-learned under its new name.
 *
 * Plain HTTP gives no authenticated peer: inbound requests reach `hs.handle(request)` without a
 * RemoteContext, and X-Matrix alone authenticates them.
 */
import { decodeBase64, parseJson, serverNameOf, verifyJson, type FederationTransport, type JsonObject } from '@matrix-p2p/server-core';

export interface HttpFederationOptions {
  /** Where errors and peer changes go (one line each); default: nowhere. */
  log?: (line: string) => void;
  /** First retry delay for a peer that does not answer; doubles up to `maxRetryMs`. Default 500 ms. */
  retryMs?: number;
  /** Longest delay between two attempts to reach a peer. Default 10 s. */
  maxRetryMs?: number;
  /** How long one key request may take. Default 5 s. */
  keyTimeoutMs?: number;
  /** The fetch to use (tests); default the global one. */
  fetch?: typeof fetch;
}

interface Peer {
  url: string;
  /** The server name last learned at this URL. */
  name?: string;
  /** Whether the last request (key or federation) reached it. */
  up: boolean;
  attempts: number;
  timer?: ReturnType<typeof setTimeout>;
  probing?: Promise<void>;
}

/** Why a key object was refused, or undefined when it proves `server_name`. */
export async function checkServerKey(body: unknown): Promise<string | undefined> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'not a JSON object';
  const o = body as JsonObject;
  const name = o.server_name;
  if (typeof name !== 'string' || !/^[0-9a-f]{64}$/.test(name)) return 'server_name is not a key-named server';
  const keys = o.verify_keys;
  if (!keys || typeof keys !== 'object' || Array.isArray(keys)) return 'no verify_keys';
  for (const [keyId, k] of Object.entries(keys as JsonObject)) {
    const b64 = (k as JsonObject | null)?.key;
    if (typeof b64 !== 'string' || !keyId.startsWith('ed25519:')) continue;
    let pub: Uint8Array;
    try {
      pub = decodeBase64(b64);
    } catch {
      continue;
    }
    if (pub.length !== 32 || serverNameOf(pub) !== name) continue;
    if (await verifyJson(o, name, keyId, pub)) return undefined;
    return `the key object is not signed by ${keyId}`;
  }
  return 'no verify key matches the server name';
}

export class HttpFederationTransport implements FederationTransport {
  private readonly peers: Peer[];
  private readonly byName = new Map<string, Peer>();
  private readonly listeners: ((serverName: string) => void)[] = [];
  private readonly log: (line: string) => void;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly keyTimeoutMs: number;
  private readonly doFetch: typeof fetch;
  private selfName?: string;
  private stopped = false;

  constructor(urls: readonly string[], opts: HttpFederationOptions = {}) {
    this.peers = [...new Set(urls.map(normaliseUrl))].map((url) => ({ url, up: false, attempts: 0 }));
    this.log = opts.log ?? (() => {});
    this.retryMs = opts.retryMs ?? 500;
    this.maxRetryMs = opts.maxRetryMs ?? 10_000;
    this.keyTimeoutMs = opts.keyTimeoutMs ?? 5_000;
    this.doFetch = opts.fetch ?? ((input, init) => fetch(input, init));
  }

  /** Start learning the peers' names (in the background; never rejects). `selfName` is skipped. */
  start(selfName?: string): void {
    this.selfName = selfName;
    for (const p of this.peers) void this.probe(p);
  }

  stop(): void {
    this.stopped = true;
    for (const p of this.peers) if (p.timer) clearTimeout(p.timer);
  }

  /** The peers and what is known of them (status, tests). */
  status(): { url: string; name?: string; up: boolean }[] {
    return this.peers.map((p) => ({ url: p.url, name: p.name, up: p.up }));
  }

  /** Resolves once every peer's name is known (or after `ms`): tests and scripts. */
  async ready(ms = 30_000): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (this.peers.every((p) => p.name && p.up)) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  }

  onPeerReachable(listener: (serverName: string) => void): void {
    this.listeners.push(listener);
  }

  async fetch(destination: string, request: Request): Promise<Response> {
    const peer = this.byName.get(destination);
    if (!peer) throw new TypeError(`no known peer is ${destination}`);
    const url = new URL(request.url);
    const body = request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.arrayBuffer();
    let res: Response;
    try {
      res = await this.doFetch(peer.url + url.pathname + url.search, { method: request.method, headers: request.headers, body, signal: request.signal, redirect: 'manual' });
    } catch (e) {
      this.markDown(peer, e);
      throw e;
    }
    if (!peer.up) {
      // It answered: it is back (a later probe would have said so too).
      peer.up = true;
      peer.attempts = 0;
      this.announce(peer);
    }
    return res;
  }

  private markDown(peer: Peer, why: unknown): void {
    if (!peer.up || this.stopped) return;
    peer.up = false;
    this.log(`peer ${peer.url} (${peer.name}) unreachable: ${describe(why)}`);
    this.schedule(peer);
  }

  private schedule(peer: Peer): void {
    if (this.stopped || peer.timer) return;
    const delay = Math.min(this.maxRetryMs, this.retryMs * 2 ** Math.min(peer.attempts, 16));
    peer.attempts++;
    peer.timer = setTimeout(() => {
      peer.timer = undefined;
      void this.probe(peer);
    }, delay);
    peer.timer.unref?.();
  }

  /** Ask a peer for its key; on success, learn its name and announce it; on failure, try again later. */
  private probe(peer: Peer): Promise<void> {
    peer.probing ??= (async () => {
      try {
        const res = await this.doFetch(`${peer.url}/_matrix/key/v2/server`, { signal: AbortSignal.timeout(this.keyTimeoutMs), redirect: 'manual' });
        const text = await res.text();
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const body = parseJson(text, { rejectFloats: false });
        const refused = await checkServerKey(body);
        if (refused) throw new Error(`refused its key object: ${refused}`);
        const name = (body as JsonObject).server_name as string;
        if (name === this.selfName) {
          this.log(`peer ${peer.url} is this server itself; ignored`);
          return;
        }
        if (peer.name !== name) {
          if (peer.name && this.byName.get(peer.name) === peer) this.byName.delete(peer.name);
          const other = this.byName.get(name);
          if (other && other !== peer) this.log(`peers ${other.url} and ${peer.url} are the same server ${name}; using ${peer.url}`);
          peer.name = name;
          this.byName.set(name, peer);
          this.log(`peer ${peer.url} is ${name}`);
        }
        peer.up = true;
        peer.attempts = 0;
        this.announce(peer);
      } catch (e) {
        if (peer.attempts === 0 || peer.up) this.log(`peer ${peer.url} not reachable yet: ${describe(e)}`);
        peer.up = false;
        this.schedule(peer);
      } finally {
        peer.probing = undefined;
      }
    })();
    return peer.probing;
  }

  private announce(peer: Peer): void {
    if (!peer.name || this.stopped) return;
    for (const l of this.listeners) {
      try {
        l(peer.name);
      } catch (e) {
        this.log(`onPeerReachable listener failed: ${describe(e)}`);
      }
    }
  }
}

function normaliseUrl(u: string): string {
  const url = new URL(u);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`not an http(s) URL: ${u}`);
  return url.origin + url.pathname.replace(/\/+$/, '');
}

function describe(e: unknown): string {
  const err = e as { message?: string; cause?: { code?: string; message?: string } };
  return [err?.message ?? String(e), err?.cause?.code ?? err?.cause?.message].filter(Boolean).join(': ');
}
