/**
 * The peer directory (issue #7): in a network with no servers, a room stays findable through whoever
 * is in it. Each node announces the rooms of its own published directory, signed, to every node
 * (`transport.broadcast`: gossipsub in browsers) when it starts, whenever its directory changes, and
 * every `refreshMs`; each node keeps the newest announcement of every origin in memory (soft state)
 * and forgets an origin whose newest announcement is older than `expireMs`. A node that comes online
 * pulls the announcements a peer holds (`GET /_matrix/federation/unstable/org.matrix_p2p/directory`)
 * instead of waiting for the next round.
 *
 * It also drives auto-publishing: when a local user joins a public room that is listed (by us or by
 * another node), the room gets a local alias and a place in our directory, so it can be found and
 * joined through us; when our last user leaves, both go (services/directory.ts, `reconcileAutoPublish`).
 */
import {
  checkAnnouncement, checkAnnouncementBytes, directoryAnnouncement, encodeAnnouncement, MAX_ANNOUNCED_ALIASES, MAX_ANNOUNCED_ROOMS,
  MAX_ANNOUNCEMENT_BYTES, type AnnouncedRoom, type AnnouncementCheckOptions, type AnnouncementVerdict, type DirectoryAnnouncement,
} from '../kernel/directory-announcement.ts';
import { canonicalJsonBytes } from '../kernel/canonical-json.ts';
import { signJson } from '../kernel/signing.ts';
import type { JsonObject } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import { publicKeyOfServer } from '../federation/x-matrix.ts';
import { isRoomAlias } from '../util/ids.ts';
import { localPublicRooms, reconcileAutoPublish, type PublicRoomsChunk } from './directory.ts';

/** The pull endpoint (a matrix-p2p extension of the server-server API). */
export const PEER_DIRECTORY_PATH = '/_matrix/federation/unstable/org.matrix_p2p/directory';

export interface PeerDirectoryOptions {
  /** How often our announcement is broadcast again, in ms (default 5 000). */
  refreshMs?: number;
  /** Announcements older than this (by their `ts`) are dropped, in ms (default 20 000). */
  expireMs?: number;
  /** How far in the future an announcement may be dated (clock skew), in ms (default 10 000). */
  maxFutureMs?: number;
  /** After a successful pull, peers becoming reachable do not trigger another one for this long, in ms (default `refreshMs`). */
  pullIntervalMs?: number;
}

/** Most announcements a pull answer carries, and most a pull takes in (newest first). */
const MAX_PULLED = 256;
const PULL_TIMEOUT_MS = 10_000;
/** Most origins held at once (anyone can make a key): past it, the stalest origin makes room. */
const MAX_ORIGINS = 1000;

interface Held {
  announcement: DirectoryAnnouncement;
  /** As signed, to pass on unchanged. */
  raw: JsonObject;
}

/** A room of the aggregated directory: what the origins listing it say, merged. */
export interface DirectoryEntry extends PublicRoomsChunk {
  /** Every alias the listing origins publish for it. */
  aliases: string[];
  /** The nodes that list it (ours first when we do), each one a node to join through. */
  servers: string[];
}

export interface PeerDirectoryStats {
  accepted: number;
  rejected: number;
  lastRejection?: string;
  pulls: number;
}

export class PeerDirectory {
  readonly refreshMs: number;
  readonly expireMs: number;
  readonly maxFutureMs: number;
  readonly pullIntervalMs: number;
  readonly stats: PeerDirectoryStats = { accepted: 0, rejected: 0, pulls: 0 };

  /** The newest live announcement of each other origin. */
  private held = new Map<string, Held>();
  private started = false;
  private isStopped = false;
  private timer?: ReturnType<typeof setInterval>;
  /** Our rooms as last announced, and what they were computed from. */
  private own?: { rooms: AnnouncedRoom[]; stream: number; changes: number };
  private changes = 0;
  private announcing?: Promise<void>;
  private announceAgain = false;
  private lastPull = -Infinity;
  private pulling = new Set<string>();
  /** Rooms whose local membership changed, to reconcile (auto-publish) one at a time. */
  private toReconcile = new Set<string>();
  private reconciling?: Promise<void>;
  /** Public rooms our users are in that nobody lists yet: published as soon as some node lists them. */
  private waitingForListing = new Set<string>();

  constructor(private readonly hs: Homeserver, opts: PeerDirectoryOptions = {}) {
    this.refreshMs = opts.refreshMs ?? 5_000;
    this.expireMs = opts.expireMs ?? 20_000;
    this.maxFutureMs = opts.maxFutureMs ?? 10_000;
    this.pullIntervalMs = opts.pullIntervalMs ?? this.refreshMs;
    const t = hs.federation.transport;
    t?.onBroadcast?.((message) => void this.receive(message));
    t?.onPeerReachable?.((peer) => this.peerReachable(peer));
  }

  /** Whether the directory runs: the node federates, has started and has not stopped. */
  get active(): boolean {
    return this.started && !this.isStopped && this.hs.federation.enabled;
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

  /** Resolves when the announcements and auto-publishing under way are done (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.announcing || this.reconciling) await (this.reconciling ?? this.announcing);
  }

  private checkOptions(): AnnouncementCheckOptions {
    return { now: this.hs.clock(), maxAgeMs: this.expireMs, maxFutureMs: this.maxFutureMs, publicKeyOf: publicKeyOfServer };
  }

  // --- receiving ------------------------------------------------------------------------------------

  /** A broadcast message: checked, then kept if it is the newest of its origin. */
  async receive(message: Uint8Array): Promise<AnnouncementVerdict | undefined> {
    if (!this.active) return undefined;
    const v = await checkAnnouncementBytes(message, this.checkOptions());
    this.take(v);
    return v;
  }

  /** An announcement as a JSON value (from a pull): checked, then kept if it is the newest of its origin. */
  async receiveObject(raw: unknown): Promise<AnnouncementVerdict> {
    const v = await checkAnnouncement(raw, this.checkOptions());
    if (this.active) this.take(v);
    return v;
  }

  private take(v: AnnouncementVerdict): void {
    if (!v.ok) {
      this.stats.rejected++;
      this.stats.lastRejection = v.reason;
      return;
    }
    const a = v.announcement;
    if (a.origin === this.hs.serverName) return;
    const cur = this.held.get(a.origin);
    // Only the newest per origin counts: a replayed older announcement changes nothing.
    if (cur && cur.announcement.ts >= a.ts) return;
    if (!cur && this.held.size >= MAX_ORIGINS) {
      let stalest: Held | undefined;
      for (const h of this.held.values()) if (!stalest || h.announcement.ts < stalest.announcement.ts) stalest = h;
      if (stalest && stalest.announcement.ts >= a.ts) return;
      if (stalest) this.held.delete(stalest.announcement.origin);
    }
    this.held.set(a.origin, { announcement: a, raw: v.raw });
    this.stats.accepted++;
    // A room our users joined before anyone listed it (a race): publish it now.
    for (const r of a.rooms) if (this.waitingForListing.has(r.room_id)) this.membershipChanged(r.room_id);
  }

  /** The live announcements of other origins (expired ones are dropped here). */
  live(): DirectoryAnnouncement[] {
    const now = this.hs.clock();
    const out: DirectoryAnnouncement[] = [];
    for (const [origin, h] of this.held) {
      if (now - h.announcement.ts > this.expireMs) this.held.delete(origin);
      else out.push(h.announcement);
    }
    return out;
  }

  /** The origins with a live announcement. */
  origins(): string[] {
    return this.live().map((a) => a.origin);
  }

  // --- pulling ----------------------------------------------------------------------------------------

  private peerReachable(peer: string): void {
    if (!this.active || peer === this.hs.serverName || this.pulling.has(peer)) return;
    if (this.hs.clock() - this.lastPull < this.pullIntervalMs) return;
    void this.pullFrom(peer);
  }

  /** Pull the announcements `peer` holds and take in each (checked). Returns how many were accepted; never throws. */
  async pullFrom(peer: string): Promise<number> {
    if (!this.active) return 0;
    this.pulling.add(peer);
    try {
      const res = await this.hs.federation.request<JsonObject>(peer, 'GET', PEER_DIRECTORY_PATH, undefined, { timeoutMs: PULL_TIMEOUT_MS });
      const list = Array.isArray(res.announcements) ? res.announcements.slice(0, MAX_PULLED) : [];
      const before = this.stats.accepted;
      for (const raw of list) {
        if (!this.active) break;
        await this.receiveObject(raw);
      }
      this.lastPull = this.hs.clock();
      this.stats.pulls++;
      return this.stats.accepted - before;
    } catch {
      // Unreachable, or it does not speak this: the next peer, or the gossip, will do.
      return 0;
    } finally {
      this.pulling.delete(peer);
    }
  }

  /** The answer to a pull: our announcement and the live ones we hold (newest first), as signed. */
  async pullAnswer(): Promise<{ announcements: JsonObject[] }> {
    const ours = await this.ownAnnouncement();
    const others = [...this.held.values()]
      .filter((h) => this.hs.clock() - h.announcement.ts <= this.expireMs)
      .sort((x, y) => y.announcement.ts - x.announcement.ts)
      .slice(0, MAX_PULLED - 1)
      .map((h) => h.raw);
    return { announcements: [ours as unknown as JsonObject, ...others] };
  }

  // --- announcing ---------------------------------------------------------------------------------------

  /** Our published directory changed (alias, visibility, auto-publish): announce it now. */
  localDirectoryChanged(): void {
    this.changes++;
    this.announce();
  }

  private tick(): void {
    if (!this.active) return;
    this.live();
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

  /** Our signed announcement, dated now (rooms recomputed when the store or our directory changed). */
  async ownAnnouncement(): Promise<DirectoryAnnouncement> {
    const hs = this.hs;
    if (!this.own || this.own.stream !== hs.store.stream || this.own.changes !== this.changes) {
      const stream = hs.store.stream;
      const changes = this.changes;
      this.own = { rooms: await this.ownRooms(), stream, changes };
    }
    const unsigned = directoryAnnouncement(hs.serverName, hs.clock(), this.own.rooms) as unknown as JsonObject;
    return (await signJson(unsigned, hs.serverName, hs.signingKey)) as unknown as DirectoryAnnouncement;
  }

  /** The rooms of our published directory that we are in (only those can be joined through us), within the limits. */
  private async ownRooms(): Promise<AnnouncedRoom[]> {
    const hs = this.hs;
    const { chunk } = await localPublicRooms(hs);
    const out: AnnouncedRoom[] = [];
    for (const e of chunk) {
      if (out.length >= MAX_ANNOUNCED_ROOMS) break;
      const members = await hs.store.rooms.membersOfRoom(e.room_id, 'join');
      if (!members.some((m) => hs.isLocal(m.userId))) continue;
      const aliases = (await hs.store.rooms.aliasesOfRoom(e.room_id))
        .map((a) => a.alias)
        .filter((a) => hs.isLocal(a) && isRoomAlias(a) && !/[\s\x00-\x1f\x7f]/.test(a))
        .sort()
        .slice(0, MAX_ANNOUNCED_ALIASES);
      out.push(announcedRoom(e, aliases));
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

  /**
   * Other nodes' rooms, merged by room: aliases united, `servers` the origins listing the room (most
   * recent announcement first), member count the largest, and the descriptive fields (name, topic...)
   * of the most recent announcement.
   */
  remoteEntries(): Map<string, DirectoryEntry> {
    const out = new Map<string, DirectoryEntry>();
    const anns = this.live().sort((x, y) => y.ts - x.ts || (x.origin < y.origin ? -1 : 1));
    for (const a of anns) {
      for (const r of a.rooms) {
        const cur = out.get(r.room_id);
        if (!cur) {
          out.set(r.room_id, { ...chunkOf(r), aliases: [...r.aliases], servers: [a.origin] });
          continue;
        }
        cur.num_joined_members = Math.max(cur.num_joined_members, r.num_joined_members);
        for (const al of r.aliases) if (!cur.aliases.includes(al)) cur.aliases.push(al);
        if (!cur.servers.includes(a.origin)) cur.servers.push(a.origin);
      }
    }
    return out;
  }

  /** Whether another node lists the room. */
  listedByPeers(roomId: string): boolean {
    return this.live().some((a) => a.rooms.some((r) => r.room_id === roomId));
  }

  /** The nodes that list a room (most recent announcement first): servers to join it through. */
  serversFor(roomId: string): string[] {
    if (!this.active) return [];
    return this.live()
      .filter((a) => a.rooms.some((r) => r.room_id === roomId))
      .sort((x, y) => y.ts - x.ts)
      .map((a) => a.origin);
  }

  /**
   * An alias from the aggregated directory, for when its server cannot be asked: a room whose
   * announced aliases include it (signed by the alias's own server, so trustworthy), else a room whose
   * canonical alias it is (a claim of the listing nodes about the room's state: the one most nodes
   * list wins). Servers: the nodes listing the room.
   */
  resolveAlias(alias: string): { room_id: string; servers: string[] } | undefined {
    if (!this.active) return undefined;
    const entries = [...this.remoteEntries().values()];
    const byAlias = entries.find((e) => e.aliases.includes(alias));
    const pick = byAlias ?? entries.filter((e) => e.canonical_alias === alias).sort((x, y) => y.servers.length - x.servers.length || (x.room_id < y.room_id ? -1 : 1))[0];
    return pick ? { room_id: pick.room_id, servers: [...pick.servers] } : undefined;
  }

  // --- auto-publishing --------------------------------------------------------------------------------

  /**
   * A local user's membership in a room changed (called after the change is committed): publish or
   * unpublish the room in the background. Never throws; errors are logged.
   */
  membershipChanged(roomId: string): void {
    if (!this.active) return;
    this.toReconcile.add(roomId);
    if (this.reconciling) return;
    this.reconciling = (async () => {
      let changed = false;
      try {
        while (this.toReconcile.size && this.active) {
          const id = this.toReconcile.values().next().value!;
          this.toReconcile.delete(id);
          try {
            const r = await reconcileAutoPublish(this.hs, id, (rid) => this.listedByPeers(rid));
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

/** Clip a string to `max` UTF-16 units without splitting a surrogate pair. */
function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  const cut = s.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

/** A room of our directory as announced (long names and topics clipped to the announcement limits). */
function announcedRoom(e: PublicRoomsChunk, aliases: string[]): AnnouncedRoom {
  const r: AnnouncedRoom = {
    room_id: e.room_id,
    aliases,
    num_joined_members: e.num_joined_members,
    // Spec (PublishedRoomsChunk): "When not present, the room is assumed to be `public`."
    join_rule: e.join_rule ?? 'public',
    guest_can_join: e.guest_can_join,
    world_readable: e.world_readable,
  };
  if (e.canonical_alias !== undefined && e.canonical_alias.length <= 255 && !/[\s\x00-\x1f\x7f]/.test(e.canonical_alias)) r.canonical_alias = e.canonical_alias;
  if (e.name !== undefined) r.name = clip(e.name, 1024);
  if (e.topic !== undefined) r.topic = clip(e.topic, 4096);
  if (e.avatar_url !== undefined && e.avatar_url.startsWith('mxc://') && e.avatar_url.length <= 1024) r.avatar_url = e.avatar_url;
  if (e.room_type !== undefined && e.room_type.length <= 255) r.room_type = e.room_type;
  return r;
}

/** The spec fields of an announced room. */
function chunkOf(r: AnnouncedRoom): PublicRoomsChunk {
  const c: PublicRoomsChunk = {
    room_id: r.room_id,
    num_joined_members: r.num_joined_members,
    world_readable: r.world_readable,
    guest_can_join: r.guest_can_join,
    join_rule: r.join_rule,
  };
  for (const k of ['name', 'topic', 'canonical_alias', 'avatar_url', 'room_type'] as const) if (r[k] !== undefined) c[k] = r[k];
  return c;
}
