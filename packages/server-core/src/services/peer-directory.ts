/**
 * The peer directory (issue #7): in a network with no servers, a room stays findable through whoever
 * is in it. Each node announces the rooms of its own published directory, signed, to every node
 * (`transport.broadcast`: gossipsub in browsers) when it starts, whenever its directory changes, and
 * every `refreshMs`; each node keeps the newest announcement of every origin in memory (soft state)
 * and forgets an origin `expireMs` after it last received a new announcement of it (its own clock:
 * the origin's `ts` only orders the origin's own announcements). A node that comes online pulls the
 * announcements a peer holds (`GET /_matrix/federation/unstable/org.matrix_p2p/directory`) instead of
 * waiting for the next round.
 *
 * Anyone can make a key and announce anything about any room, so nothing an announcement claims is
 * taken on its word where it matters: aliases resolve only from the announcements of their own server
 * (signed by it), a room's description comes from our own state when we are in it, else from the node
 * holding its canonical alias, else from what most listing nodes say, and join candidates are ordered
 * by what we can check, never by a date the sender chose.
 *
 * It also drives auto-publishing: when a local user joins a public room that is listed (by us or by
 * another node), the room gets a local alias and a place in our directory, so it can be found and
 * joined through us; when our last user leaves, both go (services/directory.ts, `reconcileAutoPublish`).
 */
import {
  directoryAnnouncement, encodeAnnouncement, MAX_ANNOUNCED_ROOMS, MAX_ANNOUNCEMENT_BYTES, parseAnnouncement, parseAnnouncementBytes,
  sanitizeAnnouncedRoom, verifyAnnouncement, type AnnouncedRoom, type AnnouncementCheckOptions, type AnnouncementParse,
  type AnnouncementVerdict, type DirectoryAnnouncement,
} from '../kernel/directory-announcement.ts';
import { canonicalJsonBytes } from '../kernel/canonical-json.ts';
import { signJson } from '../kernel/signing.ts';
import type { JsonObject } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import { publicKeyOfServer } from '../federation/x-matrix.ts';
import { serverOf } from '../util/ids.ts';
import { localPublicRooms, reconcileAutoPublish, type PublicRoomsChunk } from './directory.ts';

/** State event types an announced room's description comes from (see `roomStateChanged`). */
const DESCRIBED_STATE = new Set([
  'm.room.member', 'm.room.name', 'm.room.topic', 'm.room.avatar', 'm.room.canonical_alias', 'm.room.join_rules',
  'm.room.history_visibility', 'm.room.guest_access', 'm.room.create',
]);

/** The pull endpoint (a matrix-p2p extension of the server-server API). */
export const PEER_DIRECTORY_PATH = '/_matrix/federation/unstable/org.matrix_p2p/directory';

export interface PeerDirectoryOptions {
  /** How often our announcement is broadcast again, in ms (default 5 000). */
  refreshMs?: number;
  /** An origin is forgotten this long after we last received a new announcement of it, in ms of our clock (default 20 000). */
  expireMs?: number;
  /** How far an announcement's `ts` may be from our clock, either way (clock skew), in ms (default 120 000). */
  maxSkewMs?: number;
  /** After a pull, peers becoming reachable do not trigger another one for this long, in ms (default `refreshMs`). */
  pullIntervalMs?: number;
  /** Most bytes of announcements (canonical JSON, as signed) held at once (default 4 MiB). */
  maxHeldBytes?: number;
}

/** Most announcements a pull answer carries, and most a pull takes in. */
const MAX_PULLED = 256;
const PULL_TIMEOUT_MS = 10_000;
/** Peers that became reachable during a pull, tried next if it fails (the most recent ones). */
const MAX_PULL_QUEUE = 16;
/** Forgotten origins whose last `ts` we remember, so that their last announcement replayed does not bring them back. */
const MAX_TOMBSTONES = 10_000;

interface Held {
  origin: string;
  /** The origin's date of it: orders this origin's announcements, nothing else. */
  ts: number;
  /** The rooms, known fields only. */
  rooms: AnnouncedRoom[];
  /** Canonical JSON as signed, to pass on unchanged (pull answers). */
  bytes: Uint8Array;
  /** Our clock when we accepted it: freshness and expiry. */
  receivedAt: number;
}

/** A room of the aggregated directory: what the origins listing it say, merged. */
export interface DirectoryEntry extends PublicRoomsChunk {
  /** Every alias the listing origins publish for it (each signed by its own server). */
  aliases: string[];
  /**
   * The other nodes that list it, each one a node to join through, in the order of `serversFor`: the
   * canonical alias's server, the room id's server, then the others, the first seen first.
   */
  servers: string[];
}

export interface PeerDirectoryStats {
  /** Announcements taken in. */
  accepted: number;
  /** Announcements refused as invalid (shape, limits, age, signature). */
  rejected: number;
  lastRejection?: string;
  /** Announcements not newer than what we hold (or last held) of their origin: replays, echoes. */
  stale: number;
  /** Announcements of new origins refused because the held ones fill `maxHeldBytes`. */
  overBudget: number;
  /** Pulls that were answered. */
  pulls: number;
}

/** What taking an announcement in came to: the kernel's verdict, or a refusal that is no fault of the announcement. */
export type ReceiveVerdict = AnnouncementVerdict | { ok: false; reason: string; stale?: true };

/** One origin's listing of a room. */
interface Listing {
  origin: string;
  room: AnnouncedRoom;
}

export class PeerDirectory {
  readonly refreshMs: number;
  readonly expireMs: number;
  readonly maxSkewMs: number;
  readonly pullIntervalMs: number;
  readonly maxHeldBytes: number;
  readonly stats: PeerDirectoryStats = { accepted: 0, rejected: 0, stale: 0, overBudget: 0, pulls: 0 };

  /** The newest live announcement of each other origin, in the order we first saw the origins. */
  private held = new Map<string, Held>();
  private bytesHeld = 0;
  /** The last `ts` of origins we forgot (expired or evicted): only a newer announcement brings them back. */
  private tombstones = new Map<string, number>();
  private started = false;
  private isStopped = false;
  private timer?: ReturnType<typeof setInterval>;
  /** Our rooms as last announced, and what they were computed from. */
  private own?: { rooms: AnnouncedRoom[]; stream: number; changes: number };
  private changes = 0;
  /** The `ts` of our last announcement: the next one is later, even within a millisecond or if our clock went back. */
  private lastTs = 0;
  private announcing?: Promise<void>;
  private announceAgain = false;
  private lastPull = -Infinity;
  /** The pull in flight (one at a time). */
  private pull?: Promise<number>;
  private pullQueue = new Set<string>();
  /** Rooms whose local membership changed (false) or that got listed while we wait for it (true), to reconcile one at a time. */
  private toReconcile = new Map<string, boolean>();
  private reconciling?: Promise<void>;
  /** Public rooms our users are in that nobody lists yet: published as soon as some node lists them. */
  private waitingForListing = new Set<string>();

  constructor(private readonly hs: Homeserver, opts: PeerDirectoryOptions = {}) {
    this.refreshMs = opts.refreshMs ?? 5_000;
    this.expireMs = opts.expireMs ?? 20_000;
    this.maxSkewMs = opts.maxSkewMs ?? 120_000;
    this.pullIntervalMs = opts.pullIntervalMs ?? this.refreshMs;
    this.maxHeldBytes = opts.maxHeldBytes ?? 4 * 1024 * 1024;
    const t = hs.federation.transport;
    t?.onBroadcast?.((message) => void this.receive(message));
    t?.onPeerReachable?.((peer) => this.peerReachable(peer));
  }

  /** Whether the directory runs: the node federates, has started and has not stopped. */
  get active(): boolean {
    return this.started && !this.isStopped && this.hs.federation.enabled;
  }

  /** Bytes of the announcements held (canonical JSON), at most `maxHeldBytes`. */
  get heldBytes(): number {
    return this.bytesHeld;
  }

  /** Announce our directory now and every `refreshMs` (no-op without federation). */
  start(): void {
    if (this.started || this.isStopped || !this.hs.federation.enabled) return;
    this.started = true;
    this.announce();
    this.timer = setInterval(() => this.tick(), this.refreshMs);
    // Do not keep a Node process alive for this (browsers have no `unref`).
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    this.isStopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Resolves when the announcements, the pull and the auto-publishing under way are done (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.announcing || this.reconciling || this.pull) await (this.reconciling ?? this.announcing ?? this.pull);
  }

  private checkOptions(): AnnouncementCheckOptions {
    return { now: this.hs.clock(), maxAgeMs: this.maxSkewMs, maxFutureMs: this.maxSkewMs, publicKeyOf: publicKeyOfServer };
  }

  // --- receiving ------------------------------------------------------------------------------------

  /** A broadcast message: checked, then kept if it is the newest of its origin. */
  async receive(message: Uint8Array): Promise<ReceiveVerdict | undefined> {
    if (!this.active) return undefined;
    return this.take(parseAnnouncementBytes(message, this.checkOptions()));
  }

  /** An announcement as a JSON value (from a pull): checked, then kept if it is the newest of its origin. */
  async receiveObject(raw: unknown): Promise<ReceiveVerdict> {
    const p = parseAnnouncement(raw, this.checkOptions());
    if (this.active) return this.take(p);
    return p.ok ? verifyAnnouncement(p) : p;
  }

  /**
   * Take in a parsed announcement: cheap refusals first (our own, not newer than what we hold of its
   * origin, a new origin when the budget is full), then the signature, then in it goes.
   */
  private async take(p: AnnouncementParse): Promise<ReceiveVerdict> {
    if (!p.ok) return this.rejected(p);
    const { origin, ts } = p.announcement;
    if (origin === this.hs.serverName) return { ok: false, reason: 'our own announcement', stale: true };
    const early = this.refusal(origin, ts, p.bytes.length);
    if (early) return early;
    const v = await verifyAnnouncement(p);
    if (!v.ok) return this.rejected(v);
    if (!this.active) return v;
    // Again: other announcements may have come in while the signature was checked.
    const late = this.refusal(origin, ts, p.bytes.length);
    if (late) return late;
    const cur = this.held.get(origin);
    let total = this.bytesHeld - (cur?.bytes.length ?? 0) + p.bytes.length;
    if (total > this.maxHeldBytes) {
      // A known origin grew: the origins seen most recently make room (never the ones held longer).
      for (const o of [...this.held.keys()].reverse()) {
        if (total <= this.maxHeldBytes) break;
        if (o === origin) continue;
        total -= this.held.get(o)!.bytes.length;
        this.forget(o);
      }
    }
    // (`set` on a held origin keeps its place: the order stays the order of first sight.)
    this.held.set(origin, { origin, ts, rooms: p.announcement.rooms, bytes: p.bytes, receivedAt: this.hs.clock() });
    this.bytesHeld += p.bytes.length - (cur?.bytes.length ?? 0);
    this.tombstones.delete(origin);
    this.stats.accepted++;
    // A room our users joined before anyone listed it (a race): publish it now.
    for (const r of p.announcement.rooms) if (this.waitingForListing.has(r.room_id)) this.reconcile(r.room_id, true);
    return v;
  }

  private rejected(v: { reason: string }): ReceiveVerdict {
    this.stats.rejected++;
    this.stats.lastRejection = v.reason;
    return { ok: false, reason: v.reason };
  }

  /** Why an announcement of `origin` dated `ts` is not taken, whatever its signature (undefined: it may be). */
  private refusal(origin: string, ts: number, size: number): ReceiveVerdict | undefined {
    const cur = this.held.get(origin);
    // Only the newest per origin counts: a replayed older one, or a forgotten origin's last one, changes nothing.
    const known = cur?.ts ?? this.tombstones.get(origin);
    if (known !== undefined && ts <= known) {
      this.stats.stale++;
      return { ok: false, reason: 'not newer than the announcement held', stale: true };
    }
    // (Full: drop the expired ones first, they may make room.)
    if (!cur && this.bytesHeld + size > this.maxHeldBytes && (this.liveHeld(), this.bytesHeld + size > this.maxHeldBytes)) {
      this.stats.overBudget++;
      return { ok: false, reason: 'the announcements held fill the budget' };
    }
    return undefined;
  }

  private forget(origin: string): void {
    const h = this.held.get(origin);
    if (!h) return;
    this.held.delete(origin);
    this.bytesHeld -= h.bytes.length;
    this.tombstones.delete(origin);
    this.tombstones.set(origin, h.ts);
    if (this.tombstones.size > MAX_TOMBSTONES) this.tombstones.delete(this.tombstones.keys().next().value!);
  }

  /** The live announcements of other origins, in the order we first saw them (expired ones are dropped here). */
  private liveHeld(): Held[] {
    const now = this.hs.clock();
    const out: Held[] = [];
    for (const h of [...this.held.values()]) {
      if (now - h.receivedAt > this.expireMs) this.forget(h.origin);
      else out.push(h);
    }
    return out;
  }

  /** The live announcements of other origins (expired ones are dropped here). */
  live(): DirectoryAnnouncement[] {
    return this.liveHeld().map((h) => directoryAnnouncement(h.origin, h.ts, h.rooms));
  }

  /** The origins with a live announcement. */
  origins(): string[] {
    return this.liveHeld().map((h) => h.origin);
  }

  // --- pulling ----------------------------------------------------------------------------------------

  private peerReachable(peer: string): void {
    if (!this.active || peer === this.hs.serverName) return;
    if (this.pull) {
      // One pull at a time: this peer is tried next if the one under way fails.
      this.pullQueue.delete(peer);
      this.pullQueue.add(peer);
      if (this.pullQueue.size > MAX_PULL_QUEUE) this.pullQueue.delete(this.pullQueue.values().next().value!);
      return;
    }
    if (this.hs.clock() - this.lastPull < this.pullIntervalMs) return;
    void this.pullFrom(peer);
  }

  /**
   * Pull the announcements `peer` holds and take in each (checked). Returns how many were accepted;
   * never throws. One pull at a time: while one is under way, this returns 0 at once.
   */
  pullFrom(peer: string): Promise<number> {
    if (!this.active || this.pull) return Promise.resolve(0);
    const previous = this.lastPull;
    this.lastPull = this.hs.clock();
    const pull = (async () => {
      let answered = false;
      try {
        // An answer larger than what we would hold is refused unread (a peer cannot make us read megabytes).
        const res = await this.hs.federation.request<JsonObject>(peer, 'GET', PEER_DIRECTORY_PATH, undefined, { timeoutMs: PULL_TIMEOUT_MS, maxBytes: 2 * this.maxHeldBytes + 64 * 1024 });
        answered = true;
        this.stats.pulls++;
        const list = Array.isArray(res.announcements) ? res.announcements.slice(0, MAX_PULLED) : [];
        const before = this.stats.accepted;
        for (const raw of list) {
          if (!this.active) break;
          await this.receiveObject(raw);
        }
        return this.stats.accepted - before;
      } catch {
        // Unreachable, or it does not speak this: the next peer, or the gossip, will do.
        return 0;
      } finally {
        this.pull = undefined;
        if (answered) this.pullQueue.clear();
        else {
          this.lastPull = previous;
          const next = this.pullQueue.values().next().value;
          if (next !== undefined) {
            this.pullQueue.delete(next);
            this.peerReachable(next);
          }
        }
      }
    })();
    this.pull = pull;
    return pull;
  }

  /**
   * The answer to a pull, as the bytes of `{"announcements": [...]}`: our announcement, then the live
   * ones we hold (the most recently received first), each as signed.
   */
  async pullAnswer(): Promise<Uint8Array<ArrayBuffer>> {
    const ours = encodeAnnouncement(await this.ownAnnouncement());
    const others = this.liveHeld()
      .sort((x, y) => y.receivedAt - x.receivedAt)
      .slice(0, MAX_PULLED - 1)
      .map((h) => h.bytes);
    const enc = new TextEncoder();
    const parts = [enc.encode('{"announcements":['), ours];
    for (const b of others) parts.push(enc.encode(','), b);
    parts.push(enc.encode(']}'));
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) (out.set(p, at), (at += p.length));
    return out;
  }

  // --- announcing ---------------------------------------------------------------------------------------

  /** Our published directory changed (alias, visibility, auto-publish): announce it now. */
  localDirectoryChanged(): void {
    this.changes++;
    this.announce();
  }

  /**
   * State that an announcement describes (members, name, topic, aliases, join rule...) changed in a room,
   * locally or through federation, after commit: if we announce that room, announce again now rather than at
   * the next round, so the directory's member counts and names follow the room.
   */
  roomStateChanged(roomId: string, type: string): void {
    if (!this.active || !DESCRIBED_STATE.has(type) || !this.own?.rooms.some((r) => r.room_id === roomId)) return;
    this.localDirectoryChanged();
  }

  private tick(): void {
    if (!this.active) return;
    this.liveHeld();
    // A tombstone outlives its use once its `ts` is too old to be accepted anyway.
    const now = this.hs.clock();
    for (const [origin, ts] of this.tombstones) if (now - ts > this.maxSkewMs) this.tombstones.delete(origin);
    this.announce();
  }

  /** Broadcast our announcement (coalesced: one at a time, once more if asked meanwhile). */
  announce(): void {
    if (!this.active || !this.hs.federation.transport?.broadcast) return;
    if (this.announcing) {
      this.announceAgain = true;
      return;
    }
    this.announcing = (async () => {
      try {
        do {
          this.announceAgain = false;
          const a = await this.ownAnnouncement();
          if (!this.active) break;
          await this.hs.federation.transport!.broadcast!(encodeAnnouncement(a));
        } while (this.announceAgain && this.active);
      } catch (e) {
        // After stop, the store may be closed under us: nothing to report.
        if (!this.isStopped) this.hs.log(e);
      } finally {
        this.announcing = undefined;
      }
    })();
  }

  /**
   * Our signed announcement, dated now, and later than the previous one (receivers keep only the
   * newest of each origin); rooms recomputed when the store or our directory changed.
   */
  async ownAnnouncement(): Promise<DirectoryAnnouncement> {
    const hs = this.hs;
    if (!this.own || this.own.stream !== hs.store.stream || this.own.changes !== this.changes) {
      const stream = hs.store.stream;
      const changes = this.changes;
      this.own = { rooms: await this.ownRooms(), stream, changes };
    }
    this.lastTs = Math.max(hs.clock(), this.lastTs + 1);
    const unsigned = directoryAnnouncement(hs.serverName, this.lastTs, this.own.rooms) as unknown as JsonObject;
    return (await signJson(unsigned, hs.serverName, hs.signingKey)) as unknown as DirectoryAnnouncement;
  }

  /**
   * The rooms of our published directory that we are in (only those can be joined through us), each
   * as receivers accept it (`sanitizeAnnouncedRoom`: a room that cannot be announced is left out, so
   * it does not get the whole announcement refused), within the limits.
   */
  private async ownRooms(): Promise<AnnouncedRoom[]> {
    const hs = this.hs;
    const { chunk } = await localPublicRooms(hs);
    const out: AnnouncedRoom[] = [];
    for (const e of chunk) {
      if (out.length >= MAX_ANNOUNCED_ROOMS) break;
      const members = await hs.store.rooms.membersOfRoom(e.room_id, 'join');
      if (!members.some((m) => hs.isLocal(m.userId))) continue;
      const aliases = (await hs.store.rooms.aliasesOfRoom(e.room_id)).map((a) => a.alias).sort();
      const r = sanitizeAnnouncedRoom(asAnnounced(e, aliases), hs.serverName);
      if (r) out.push(r);
    }
    // Largest rooms first (localPublicRooms' order): the smallest go when the message would be too big.
    const base = canonicalJsonBytes({ ...directoryAnnouncement(hs.serverName, hs.clock(), []), signatures: { [hs.serverName]: { [hs.signingKey.keyId]: 'x'.repeat(86) } } }).length;
    let size = base;
    for (let i = 0; i < out.length; i++) {
      size += canonicalJsonBytes(out[i]).length + 1;
      if (size > MAX_ANNOUNCEMENT_BYTES) return out.slice(0, i);
    }
    return out;
  }

  // --- the aggregated directory -------------------------------------------------------------------------

  /** The live listings of each room, the origins in the order we first saw them. */
  private listings(only?: string): Map<string, Listing[]> {
    const out = new Map<string, Listing[]>();
    for (const h of this.liveHeld()) {
      for (const room of h.rooms) {
        if (only !== undefined && room.room_id !== only) continue;
        let l = out.get(room.room_id);
        if (!l) out.set(room.room_id, (l = []));
        l.push({ origin: h.origin, room });
      }
    }
    return out;
  }

  /**
   * Other nodes' rooms, merged by room (see `merge`): aliases united, `servers` ordered by evidence,
   * the member count the median, the descriptive fields those of the node holding the room's
   * canonical alias, else the most common.
   */
  remoteEntries(): Map<string, DirectoryEntry> {
    const out = new Map<string, DirectoryEntry>();
    for (const [roomId, ls] of this.listings()) out.set(roomId, merge(roomId, ls));
    return out;
  }

  /** Whether another node lists the room. */
  listedByPeers(roomId: string): boolean {
    return this.liveHeld().some((h) => h.rooms.some((r) => r.room_id === roomId));
  }

  /**
   * The nodes that list a room, servers to join it through, ordered by what we can check: the server of
   * the room's canonical alias if it lists the room, then the room id's server if it does, then the
   * others, the one we first saw first. Never by an announcement's `ts`: its sender chooses it.
   */
  serversFor(roomId: string): string[] {
    if (!this.active) return [];
    const ls = this.listings(roomId).get(roomId);
    return ls ? merge(roomId, ls).servers : [];
  }

  /**
   * An alias from the aggregated directory, for when its server cannot be asked: the room that the
   * alias's own server announced it for (announced aliases are signed by that server; a room's
   * `canonical_alias` is only a claim of whoever lists it, so it is never used for this). Servers: the
   * nodes listing the room (`serversFor`).
   */
  resolveAlias(alias: string): { room_id: string; servers: string[] } | undefined {
    if (!this.active) return undefined;
    const h = this.liveHeld().find((x) => x.origin === serverOf(alias));
    const room = h?.rooms.find((r) => r.aliases.includes(alias));
    return room ? { room_id: room.room_id, servers: this.serversFor(room.room_id) } : undefined;
  }

  // --- auto-publishing --------------------------------------------------------------------------------

  /**
   * A local user's membership in a room changed (called after the change is committed): publish or
   * unpublish the room in the background when local joined-ness changed (some local user joined ⇄ none).
   * Never throws; errors are logged.
   */
  membershipChanged(roomId: string): void {
    this.reconcile(roomId, false);
  }

  /** Reconcile a room in the background; `listed`: it was waiting for a listing and got one. */
  private reconcile(roomId: string, listed: boolean): void {
    if (!this.active) return;
    this.toReconcile.set(roomId, listed || (this.toReconcile.get(roomId) ?? false));
    if (this.reconciling) return;
    this.reconciling = (async () => {
      let changed = false;
      try {
        while (this.toReconcile.size && this.active) {
          const [id, retry] = this.toReconcile.entries().next().value!;
          this.toReconcile.delete(id);
          try {
            const r = await reconcileAutoPublish(this.hs, id, (rid) => this.listedByPeers(rid), { listed: retry });
            if (r.waiting) this.waitingForListing.add(id);
            else this.waitingForListing.delete(id);
            if (r.changed || r.listed) changed = true;
          } catch (e) {
            if (!this.isStopped) this.hs.log(e);
          }
        }
      } finally {
        this.reconciling = undefined;
      }
      if (changed) this.localDirectoryChanged();
    })();
  }
}

/** A room of our directory as a candidate for our announcement (made acceptable by `sanitizeAnnouncedRoom`). */
function asAnnounced(e: PublicRoomsChunk, aliases: string[]): AnnouncedRoom {
  const r: AnnouncedRoom = {
    room_id: e.room_id,
    aliases,
    num_joined_members: e.num_joined_members,
    // Spec (PublishedRoomsChunk): "When not present, the room is assumed to be `public`."
    join_rule: e.join_rule ?? 'public',
    guest_can_join: e.guest_can_join,
    world_readable: e.world_readable,
  };
  for (const k of ['canonical_alias', 'name', 'topic', 'avatar_url', 'room_type'] as const) if (e[k] !== undefined) r[k] = e[k];
  return r;
}

/** The value most listings give (`key` of each), the earliest seen winning a tie. */
function mostCommon<T>(ls: readonly Listing[], key: (r: AnnouncedRoom) => T): T {
  const counts = new Map<T, number>();
  for (const l of ls) counts.set(key(l.room), (counts.get(key(l.room)) ?? 0) + 1);
  let best = key(ls[0].room);
  // Map iteration follows first insertion: the earliest seen value comes first, and wins ties.
  for (const [v, n] of counts) if (n > counts.get(best)!) best = v;
  return best;
}

/**
 * One room of the aggregated directory from its listings (origins in the order we first saw them).
 *
 * - Canonical alias: the one the room id's server announces as its own (it announces the alias,
 *   signed, and names it canonical), else the most common claim (no canonical alias counts as a claim).
 * - Descriptive fields: those of the origin authoritative for that alias (its server, announcing it),
 *   else the most common value of each. Member count: the median (lower), never the largest claim.
 * - Servers: the canonical alias's server, then the room id's server (each if it lists the room), then
 *   the others, the first seen first.
 */
function merge(roomId: string, ls: readonly Listing[]): DirectoryEntry {
  const idServer = serverOf(roomId);
  /** Whether `l`'s origin holds `alias` for the room and says it is the canonical one. */
  const holds = (l: Listing, alias: string | undefined) => alias !== undefined && l.origin === serverOf(alias) && l.room.canonical_alias === alias && l.room.aliases.includes(alias);
  const byIdServer = ls.find((l) => l.origin === idServer && holds(l, l.room.canonical_alias));
  const canonical = byIdServer ? byIdServer.room.canonical_alias : mostCommon(ls, (r) => r.canonical_alias);
  const authority = ls.find((l) => holds(l, canonical));
  const pick = <K extends keyof AnnouncedRoom>(k: K): AnnouncedRoom[K] => (authority ? authority.room[k] : mostCommon(ls, (r) => r[k]));
  const counts = ls.map((l) => l.room.num_joined_members).sort((x, y) => x - y);
  const entry: DirectoryEntry = {
    room_id: roomId,
    num_joined_members: counts[Math.floor((counts.length - 1) / 2)],
    world_readable: pick('world_readable'),
    guest_can_join: pick('guest_can_join'),
    join_rule: pick('join_rule'),
    aliases: [],
    servers: [],
  };
  if (canonical !== undefined) entry.canonical_alias = canonical;
  for (const k of ['name', 'topic', 'avatar_url', 'room_type'] as const) {
    const v = pick(k);
    if (v !== undefined) entry[k] = v;
  }
  const listing = new Set(ls.map((l) => l.origin));
  const first = [canonical !== undefined ? serverOf(canonical) : '', idServer].filter((s) => s !== '' && listing.has(s));
  entry.servers = [...new Set([...first, ...ls.map((l) => l.origin)])];
  const byOrigin = new Map(ls.map((l) => [l.origin, l.room]));
  entry.aliases = [...new Set(entry.servers.flatMap((s) => byOrigin.get(s)!.aliases))];
  return entry;
}
