/**
 * The Store: the homeserver's storage contract, as methods shaped by access patterns, written once
 * over a StorageEngine (memory or IndexedDB). Reads are one engine transaction each. Writes are built
 * as op lists ("compute, then commit", architecture practice 7) and committed with `commit`, which
 * also records the stream position; the caller (holding the homeserver's write lock) wakes `/sync`
 * afterwards.
 *
 * Area readers live beside this file (`rooms.ts`, `accounts.ts`, ...), each exposing reads and op
 * builders for its object stores.
 */
import { prefixRange, type StorageEngine, type WriteOp } from './engine.ts';
import { AccountsStore } from './accounts.ts';
import { RoomsStore } from './rooms.ts';
import { UserDataStore } from './user-data.ts';
import { KeysStore } from './keys.ts';

export class Store {
  readonly accounts: AccountsStore;
  readonly rooms: RoomsStore;
  readonly userData: UserDataStore;
  readonly keys: KeysStore;
  private streamPos = 0;
  private nextStateGroup = 1;
  /** Per room, what `storedDepthBound` knows: the bound, and its load from the store (once per run). */
  private depthBounds = new Map<string, { max: number; loaded?: Promise<void> }>();

  private constructor(readonly engine: StorageEngine) {
    this.accounts = new AccountsStore(engine);
    this.rooms = new RoomsStore(engine);
    this.userData = new UserDataStore(engine);
    this.keys = new KeysStore(engine);
  }

  /** Open a Store over an engine: loads the counters (cheap: two reads). */
  static async open(engine: StorageEngine): Promise<Store> {
    const s = new Store(engine);
    const [stream, group] = await engine.read(async (tx) => [
      await tx.get<{ value: number }>('meta', 'stream'),
      await tx.get<{ value: number }>('meta', 'state_group'),
    ]);
    s.streamPos = stream?.value ?? 0;
    s.nextStateGroup = (group?.value ?? 0) + 1;
    return s;
  }

  /** The latest committed stream position. */
  get stream(): number {
    return this.streamPos;
  }

  /**
   * A write under construction. Allocates stream positions and state group ids; `commit` writes its
   * ops and the counters atomically. Only one batch may be built at a time (the homeserver's write
   * lock guarantees it).
   */
  batch(): WriteBatch {
    return new WriteBatch(this);
  }

  /** @internal */ allocStream(pending: number): number {
    return Math.max(this.streamPos, pending) + 1;
  }
  /** @internal */ allocStateGroup(): number {
    return this.nextStateGroup++;
  }
  /**
   * Called with the stream position each time a batch becomes visible to reads (the homeserver wakes
   * `/sync` with it): with the CachingEngine, while the batch is still committing (see `durable`). If
   * that batch then fails, it is called again with the position before it (lower).
   */
  onVisible?: (position: number) => void;

  /** @internal */ async commitBatch(ops: WriteOp[], stream: number, lastGroup: number, onVisible?: () => void): Promise<void> {
    for (const op of ops) {
      if (op.op !== 'put' || op.store !== 'events') continue;
      const { roomId, depth } = op.value as { roomId?: unknown; depth?: unknown };
      if (typeof roomId !== 'string' || typeof depth !== 'number') continue;
      const b = this.depthBounds.get(roomId);
      if (b) b.max = Math.max(b.max, depth);
      else this.depthBounds.set(roomId, { max: depth });
    }
    const all = [...ops];
    if (stream > this.streamPos) all.push({ op: 'put', store: 'meta', value: { key: 'stream', value: stream } });
    // The counters go with the batch that moves them (a batch that moves none, a media upload say, writes only
    // its own rows: see CachingEngine.write). Ids a failed batch took are never referenced.
    if (lastGroup > 0) all.push({ op: 'put', store: 'meta', value: { key: 'state_group', value: Math.max(lastGroup, this.nextStateGroup - 1) } });
    const before = this.streamPos;
    let shown = false;
    const show = () => {
      if (shown) return;
      shown = true;
      if (stream > this.streamPos) this.streamPos = stream;
      this.onVisible?.(this.streamPos);
      onVisible?.();
    };
    try {
      await this.engine.write(all, { onVisible: show });
    } catch (err) {
      // Shown, then failed: the position goes back (the next batch takes it again; a token naming it was
      // never let out, see `durable`), and so does whoever was told of it.
      if (shown && this.streamPos === stream && stream > before) {
        this.streamPos = before;
        this.onVisible?.(before);
      }
      throw err;
    }
    show();
  }

  /**
   * At least the depth of every event of the room this store holds (timeline events, outliers, rejected
   * ones; -Infinity for none): an event deeper than this is certainly not stored, and whoever receives it
   * need not look it up. Read once per run from the `by_room_depth` index, then raised by each batch
   * that puts an event of the room, as the batch is committed (a batch that then fails leaves it high: the
   * bound only ever errs that way).
   */
  async storedDepthBound(roomId: string): Promise<number> {
    let b = this.depthBounds.get(roomId);
    if (!b) this.depthBounds.set(roomId, (b = { max: -Infinity }));
    const bound = b;
    bound.loaded ??= this.engine
      .read((tx) => tx.query<{ depth: number }>('events', { index: 'by_room_depth', range: prefixRange(roomId), direction: 'prev', limit: 1 }))
      .then(
        (rows) => void (bound.max = Math.max(bound.max, rows[0]?.depth ?? -Infinity)),
        (err) => {
          bound.loaded = undefined;
          throw err;
        },
      );
    await bound.loaded;
    return bound.max;
  }

  /** A mark to take before reading what `durable` will vouch for. */
  readMark(): number {
    return this.engine.failedVisibleWrites?.() ?? 0;
  }

  /**
   * Wait until everything reads could see is durable, before any of it leaves the node (a response, a
   * federation transaction). False when a write that reads could see failed since `mark` (taken before
   * reading): what was read may never have been stored, so it must be read again or refused.
   */
  async durable(mark: number): Promise<boolean> {
    if (!this.engine.settled) return true;
    await this.engine.settled();
    return this.readMark() === mark;
  }

  async getMeta<T>(key: string): Promise<T | undefined> {
    return (await this.engine.read((tx) => tx.get<{ value: T }>('meta', key)))?.value;
  }
  async putMeta(key: string, value: unknown): Promise<void> {
    await this.engine.write([{ op: 'put', store: 'meta', value: { key, value } }]);
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}

export class WriteBatch {
  readonly ops: WriteOp[] = [];
  private stream = 0;
  private lastGroup = 0;
  constructor(private readonly store: Store) {}

  /** A new stream position for one item of this batch (positions grow within and across batches). */
  nextStream(): number {
    this.stream = this.store.allocStream(this.stream);
    return this.stream;
  }
  /** The last position this batch allocated (or the store's current one). */
  get position(): number {
    return this.stream || this.store.stream;
  }
  newStateGroupId(): number {
    this.lastGroup = this.store.allocStateGroup();
    return this.lastGroup;
  }
  put(store: string, value: object): this {
    this.ops.push({ op: 'put', store, value });
    return this;
  }
  delete(store: string, key: import('./engine.ts').Key): this {
    this.ops.push({ op: 'delete', store, key });
    return this;
  }
  add(...ops: WriteOp[]): this {
    this.ops.push(...ops);
    return this;
  }
  /**
   * Write the batch; resolves with the stream position once it is durable. `onVisible` is called when reads
   * can see it, which may be before (see Store.durable).
   */
  async commit(onVisible?: () => void): Promise<number> {
    await this.store.commitBatch(this.ops, this.stream, this.lastGroup, onVisible);
    return this.store.stream;
  }
}
