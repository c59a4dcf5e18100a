/**
 * The homeserver: plain-object dependency injection and explicit start/stop (architecture practice 9).
 * `createHomeserver` wires a Store, a signing key and a clock into the services and the endpoint table,
 * and returns a `fetch`-style handler: web `Request` in, `Response` out. It keeps nothing in memory
 * that must survive a restart (typing notifications excepted: they are ephemeral by nature).
 */
import { encodeBase64 } from './kernel/base64.ts';
import { randomSeed } from './kernel/crypto.ts';
import { signingKeyFromSeed, type SigningKey } from './kernel/signing.ts';
import { decodeBase64 } from './kernel/base64.ts';
import { MemoryEngine } from './store/memory-engine.ts';
import { MIGRATIONS } from './store/schema.ts';
import { Store } from './store/store.ts';
import type { StorageEngine } from './store/engine.ts';
import { Mutex, Notifier } from './util/async.ts';
import { createApiRouter, jsonResponse, type Router } from './api/router.ts';
import type { AnyEndpoint } from './api/endpoint.ts';
import { AuthService } from './services/auth.ts';
import { RoomService } from './services/rooms.ts';
import { TypingService } from './services/typing.ts';
import { SyncService } from './services/sync.ts';
import { ENDPOINTS } from './endpoints.ts';
import { FederationService } from './federation/service.ts';
import { Ingester } from './federation/ingest.ts';
import { deviceListOutbox } from './federation/edus-out.ts';
import { PeerDirectory, type PeerDirectoryOptions } from './services/peer-directory.ts';
import type { FederationTransport, RemoteContext } from './federation/transport.ts';

export interface HomeserverOptions {
  /** The storage engine (memory for tests and the Node host; IndexedDB in browsers). */
  engine: StorageEngine;
  /** Milliseconds since the epoch; injectable for tests. */
  clock?: () => number;
  /** Anyone may register (the Node host and the browser node: the only user is the device's owner). */
  openRegistration?: boolean;
  /** Where internal errors go. */
  log?: (e: unknown) => void;
  /** Largest media upload, in bytes. */
  maxUploadBytes?: number;
  /** How this node reaches other servers; without one, the node does not federate. */
  transport?: FederationTransport;
  /** Timings of the directory of every active node (services/peer-directory.ts). */
  peerDirectory?: PeerDirectoryOptions;
}

/** A server name is the lowercase hex of its ed25519 public key (docs/ARCHITECTURE.md, Identity). */
export function serverNameOf(publicKey: Uint8Array): string {
  return Array.from(publicKey, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class Homeserver {
  readonly notifier = new Notifier();
  /** Serialises writes: stream positions, room extremities and state are computed and committed one write at a time. */
  readonly writeLock = new Mutex();
  readonly auth: AuthService;
  readonly rooms: RoomService;
  readonly typing: TypingService;
  readonly sync: SyncService;
  readonly router: Router;
  readonly federation: FederationService;
  readonly ingest: Ingester;
  readonly peerDirectory: PeerDirectory;
  readonly clock: () => number;
  readonly log: (e: unknown) => void;
  readonly openRegistration: boolean;
  readonly maxUploadBytes: number;

  constructor(
    readonly store: Store,
    readonly signingKey: SigningKey,
    readonly serverName: string,
    opts: HomeserverOptions,
    endpoints: readonly AnyEndpoint[] = ENDPOINTS,
  ) {
    this.clock = opts.clock ?? Date.now;
    this.log = opts.log ?? ((e) => console.error(e));
    this.openRegistration = opts.openRegistration ?? true;
    this.maxUploadBytes = opts.maxUploadBytes ?? 50 * 1024 * 1024;
    this.auth = new AuthService(this);
    this.rooms = new RoomService(this);
    this.typing = new TypingService(this);
    this.sync = new SyncService(this);
    this.federation = new FederationService(this, opts.transport);
    this.ingest = new Ingester(this);
    this.peerDirectory = new PeerDirectory(this, opts.peerDirectory);
    this.notifier.notify(store.stream);
    // Long-polls wake as soon as a batch is visible, not when it is durable: they compute their answer
    // while IndexedDB commits, and the router holds every answer until what it read is durable.
    store.onVisible = (position) => (position < this.notifier.position ? this.notifier.rewind(position) : this.notifier.notify(position));
    this.router = createApiRouter(this, endpoints, this.log);
  }

  /**
   * Answer one HTTP request. Never throws. `remote` marks a request that came from another server over
   * a transport (only federation, key and media endpoints answer those).
   */
  handle(request: Request, remote?: RemoteContext): Promise<Response> {
    // A stopped homeserver (its store closed) answers like a server that is going away, not with a 500.
    if (this.isStopped) return Promise.resolve(jsonResponse(503, { errcode: 'M_UNKNOWN', error: 'This homeserver has stopped' }, { 'retry-after': '1' }));
    return this.router.handle(request, remote);
  }
  private isStopped = false;
  /** Whether `stop()` was called (background work then ends quietly). */
  get stopped(): boolean {
    return this.isStopped;
  }

  /** Start background work that must resume after a restart (outbound federation queues, directory announcements). */
  async start(): Promise<void> {
    await this.federation.start();
    deviceListOutbox(this).start();
    this.peerDirectory.start();
  }

  /** A user id on this server. */
  userId(localpart: string): string {
    return `@${localpart}:${this.serverName}`;
  }
  isLocal(id: string): boolean {
    return id.endsWith(':' + this.serverName);
  }

  async stop(): Promise<void> {
    this.isStopped = true;
    this.federation.stop();
    this.peerDirectory.stop();
    deviceListOutbox(this).stop();
    this.typing.stop();
    this.notifier.wakeAll();
    await this.store.close();
  }
}

/**
 * Create (or re-open) a homeserver over a storage engine. The signing key is created on first start and
 * kept in the Store, so the server name is stable across restarts.
 */
export async function createHomeserver(opts: HomeserverOptions): Promise<Homeserver> {
  const store = await Store.open(opts.engine);
  let seedB64 = await store.getMeta<string>('signing_seed');
  if (!seedB64) {
    seedB64 = encodeBase64(randomSeed());
    await store.putMeta('signing_seed', seedB64);
  }
  const key = await signingKeyFromSeed(decodeBase64(seedB64), 'ed25519:p2p');
  const hs = new Homeserver(store, key, serverNameOf(key.publicKey), opts);
  await hs.start();
  return hs;
}

/** A homeserver over a fresh in-memory store (tests, the Node host). */
export function createMemoryHomeserver(opts: Omit<HomeserverOptions, 'engine'> = {}): Promise<Homeserver> {
  return createHomeserver({ ...opts, engine: new MemoryEngine(MIGRATIONS) });
}

/** A homeserver over a fresh memory store, attached to an in-process network (tests, benchmarks). */
export async function createNetworkedMemoryHomeserver(net: import('./federation/in-process.ts').InProcessNetwork, opts: Omit<HomeserverOptions, 'engine' | 'transport'> = {}): Promise<Homeserver> {
  let name = '';
  const hs = await createHomeserver({ ...opts, engine: new MemoryEngine(MIGRATIONS), transport: net.transportFor(() => name) });
  name = hs.serverName;
  net.attach(hs);
  return hs;
}
