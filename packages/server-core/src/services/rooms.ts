/**
 * Room operations of the client-server API on this node: create, send, state, membership changes,
 * redactions, and what a user may see. Each write runs under the homeserver's write lock and commits
 * atomically through a RoomWriter.
 */
import { MatrixError, badJson, forbidden, notFound } from '../api/errors.ts';
import { canonicalJsonBytes } from '../kernel/canonical-json.ts';
import { DEFAULT_ROOM_VERSION, roomVersion } from '../kernel/room-versions.ts';
import type { JsonObject } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import type { MembershipRecord, StoredEvent } from '../store/records.ts';
import { isRoomAlias, isRoomId, isUserId, randomId } from '../util/ids.ts';
import { strippedState } from './client-events.ts';
import { MAX_EVENT_BYTES, RoomWriter, type EventDraft } from './room-writer.ts';
import { broadcast, joinRemote } from '../federation/join.ts';
import { leaveRemote, knockRemote, sendInviteToRemote } from '../federation/membership.ts';
import { resolveRemoteAlias } from './directory.ts';
import { serverOf } from '../util/ids.ts';

/** Room versions this node creates rooms in (capabilities `m.room_versions`). */
export const CREATABLE_ROOM_VERSIONS = ['10', '11'] as const;

export interface CreateRoomRequest {
  visibility?: 'public' | 'private';
  room_alias_name?: string;
  name?: string;
  topic?: string;
  invite?: string[];
  room_version?: string;
  creation_content?: JsonObject;
  initial_state?: { type: string; state_key?: string; content: JsonObject }[];
  preset?: 'private_chat' | 'public_chat' | 'trusted_private_chat';
  is_direct?: boolean;
  power_level_content_override?: JsonObject;
}

/**
 * How long a send's transaction id is remembered (a retry within it gets the first event's id back). The spec
 * sets no lifetime ("Transaction identifiers"); Synapse keeps them a day. Forgetting them keeps the store, and
 * the worker's in-memory copy of it, small: a device that sends thousands of messages would otherwise make
 * every send look its transaction id up in IndexedDB.
 */
export const TXN_RETENTION_MS = 24 * 3600 * 1000;
/** Sends between two sweeps of expired transaction ids (the first send of a run sweeps too). */
const TXN_SWEEP_EVERY = 200;

/** The state types copied into invites as stripped state (spec: client-server API, "Stripped state"). */
const STRIPPED_TYPES = ['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar', 'm.room.canonical_alias', 'm.room.encryption', 'm.room.topic'];

export class RoomService {
  private sendsUntilSweep = 0;
  private sweeping?: Promise<void>;
  constructor(private readonly hs: Homeserver) {}

  /** Forget transaction ids older than `TXN_RETENTION_MS` (after the send that triggered it was answered). */
  sweepTxns(): Promise<void> {
    this.sweeping ??= this.hs.writeLock
      .run(async () => {
        const old = await this.store.rooms.txnsBefore(this.hs.clock() - TXN_RETENTION_MS);
        if (!old.length) return;
        const b = this.store.batch();
        for (const key of old) b.delete('txns', key);
        await b.commit();
      })
      .catch((e) => {
        if (!this.hs.stopped) this.hs.log(e);
      })
      .finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private get store() {
    return this.hs.store;
  }

  /** Run `fn` with a writer on the room, under the write lock, and commit. */
  write<T>(roomId: string, fn: (w: RoomWriter) => Promise<T>): Promise<T> {
    return this.hs.writeLock.run(async () => {
      const w = await RoomWriter.open(this.hs, roomId);
      const out = await fn(w);
      await w.commit();
      return out;
    });
  }

  /** Stage an event, refusing oversized ones (413 M_TOO_LARGE, spec "Size limits"). */
  async append(w: RoomWriter, draft: EventDraft): Promise<StoredEvent> {
    const e = await w.append(draft);
    if (canonicalJsonBytes(e.pdu).length > MAX_EVENT_BYTES) throw new MatrixError(413, 'M_TOO_LARGE', 'Event is larger than 65536 bytes');
    return e;
  }

  // --- createRoom (spec: client-server API, "Creation") --------------------------------------------
  async createRoom(userId: string, req: CreateRoomRequest): Promise<string> {
    const version = req.room_version ?? DEFAULT_ROOM_VERSION;
    const rules = roomVersion(version);
    if (!rules || !(CREATABLE_ROOM_VERSIONS as readonly string[]).includes(version)) {
      throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Room version ${version} is not supported`);
    }
    const preset = req.preset ?? (req.visibility === 'public' ? 'public_chat' : 'private_chat');
    const invites = req.invite ?? [];
    for (const u of invites) if (!isUserId(u)) throw new MatrixError(400, 'M_INVALID_PARAM', `Not a user id: ${u}`);
    let alias: string | undefined;
    if (req.room_alias_name !== undefined) {
      if (/[:#\s]/.test(req.room_alias_name) || !req.room_alias_name) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid room_alias_name');
      alias = `#${req.room_alias_name}:${this.hs.serverName}`;
      if (await this.store.rooms.alias(alias)) throw new MatrixError(400, 'M_ROOM_IN_USE', 'Room alias already taken');
    }

    const created = await this.hs.writeLock.run(async () => {
      const roomId = rules.auth.roomIdFromCreateEvent ? undefined : `!${randomId(12)}:${this.hs.serverName}`;
      const w = RoomWriter.forNewRoom(this.hs, rules, roomId);
      const append = (d: Omit<EventDraft, 'sender'> & { sender?: string }) => this.append(w, { sender: userId, ...d });
      const createContent: JsonObject = { ...(req.creation_content ?? {}), room_version: version };
      if (!rules.auth.useRoomCreateSender) createContent.creator = userId;
      await append({ type: 'm.room.create', stateKey: '', content: createContent });
      await append({ type: 'm.room.member', stateKey: userId, content: { membership: 'join', ...(await this.profileContent(userId)) } });

      const users: JsonObject = { [userId]: 100 };
      if (preset === 'trusted_private_chat') for (const u of invites) users[u] = 100;
      const pl: JsonObject = {
        users,
        users_default: 0,
        events: {
          'm.room.name': 50, 'm.room.power_levels': 100, 'm.room.history_visibility': 100, 'm.room.canonical_alias': 50,
          'm.room.avatar': 50, 'm.room.tombstone': 100, 'm.room.server_acl': 100, 'm.room.encryption': 100,
        },
        events_default: 0,
        state_default: 50,
        ban: 50,
        kick: 50,
        redact: 50,
        invite: preset === 'public_chat' ? 50 : 0,
        notifications: { room: 50 },
        ...(req.power_level_content_override ?? {}),
      };
      await append({ type: 'm.room.power_levels', stateKey: '', content: pl });
      if (alias) await append({ type: 'm.room.canonical_alias', stateKey: '', content: { alias } });
      await append({ type: 'm.room.join_rules', stateKey: '', content: { join_rule: preset === 'public_chat' ? 'public' : 'invite' } });
      await append({ type: 'm.room.history_visibility', stateKey: '', content: { history_visibility: 'shared' } });
      if (preset !== 'public_chat') await append({ type: 'm.room.guest_access', stateKey: '', content: { guest_access: 'can_join' } });
      for (const s of req.initial_state ?? []) await append({ type: s.type, stateKey: s.state_key ?? '', content: s.content });
      if (req.name !== undefined) await append({ type: 'm.room.name', stateKey: '', content: { name: req.name } });
      if (req.topic !== undefined) await append({ type: 'm.room.topic', stateKey: '', content: { topic: req.topic } });
      // Remote invitees are invited once the room exists (their server must countersign: `invite`).
      for (const u of invites.filter((i) => this.hs.isLocal(i))) {
        await append({
          type: 'm.room.member',
          stateKey: u,
          content: { membership: 'invite', ...(req.is_direct ? { is_direct: true } : {}) },
          unsigned: { invite_room_state: await this.strippedStateOf(w, userId) },
        });
      }
      const room = w.room!;
      if (req.visibility === 'public') room.published = 1;
      w.batch.put('rooms', room);
      if (alias) w.batch.put('aliases', { alias, roomId: room.roomId, creator: userId, servers: [this.hs.serverName] });
      await w.commit();
      return room.roomId;
    });
    for (const u of invites.filter((i) => !this.hs.isLocal(i))) {
      try {
        await this.invite(userId, created, u, undefined, req.is_direct ? { is_direct: true } : {});
      } catch (e) {
        this.hs.log(e);
      }
    }
    return created;
  }

  /** Stripped state for an invite or knock; with the inviter's own member event, so clients can name who invited. */
  private async strippedStateOf(w: RoomWriter, inviter?: string): Promise<JsonObject[]> {
    const out: JsonObject[] = [];
    for (const t of STRIPPED_TYPES) {
      const p = await w.stateEvent(t, '');
      if (p) out.push({ type: p.type, state_key: '', sender: p.sender, content: p.content });
    }
    const m = inviter ? await w.stateEvent('m.room.member', inviter) : undefined;
    if (m) out.push({ type: m.type, state_key: inviter!, sender: m.sender, content: m.content });
    return out;
  }

  /** Display name and avatar for a member event of a local user. */
  async profileContent(userId: string): Promise<JsonObject> {
    const a = await this.store.accounts.get(userId);
    const c: JsonObject = {};
    if (a?.displayname) c.displayname = a.displayname;
    if (a?.avatarUrl) c.avatar_url = a.avatarUrl;
    return c;
  }

  // --- sending ---------------------------------------------------------------------------------------
  /** Send a message-like event, idempotently per (user, device, txnId). */
  async send(userId: string, deviceId: string, roomId: string, type: string, content: JsonObject, txnId?: string, txnKey = txnId): Promise<string> {
    return this.hs.writeLock.run(async () => {
      if (txnKey !== undefined) {
        const prior = await this.store.rooms.txn(userId, deviceId, txnKey);
        if (prior) return prior.eventId;
      }
      const w = await RoomWriter.open(this.hs, roomId);
      await this.requireJoined(roomId, userId);
      const draft: EventDraft = { type, sender: userId, content, txn: txnId !== undefined ? { userId, deviceId, txnId } : undefined, txnKey };
      if (type === 'm.room.redaction') await this.prepareRedaction(w, userId, draft);
      const e = await this.append(w, draft);
      await w.commit();
      if (txnKey !== undefined && --this.sendsUntilSweep < 0) {
        this.sendsUntilSweep = TXN_SWEEP_EVERY;
        setTimeout(() => void this.sweepTxns(), 0);
      }
      return e.eventId;
    });
  }

  /** Redaction rules for clients: the redacter must be the sender or have the `redact` level. */
  private async prepareRedaction(w: RoomWriter, userId: string, draft: EventDraft): Promise<void> {
    const targetId = draft.content.redacts;
    if (typeof targetId !== 'string') throw badJson('redacts is required');
    if (!w.rules.auth.useRoomCreateSender) {
      // Room versions before 11 carry `redacts` at the top level (rooms/v11 moved it into content).
      draft.redacts = targetId;
      const { redacts: _r, ...rest } = draft.content;
      draft.content = rest;
    }
    const target = await this.store.rooms.event(targetId);
    if (target && target.roomId === w.roomId && target.sender !== userId) {
      const pl = await w.stateEvent('m.room.power_levels', '');
      const c = (pl?.content ?? {}) as JsonObject;
      const users = (c.users ?? {}) as Record<string, unknown>;
      const mine = Number(users[userId] ?? c.users_default ?? 0);
      const need = Number(c.redact ?? 50);
      if (!(mine >= need)) throw forbidden('You cannot redact other users\' events');
    }
  }

  /** Send a state event (PUT /state/{type}/{stateKey}). */
  async setState(userId: string, roomId: string, type: string, stateKey: string, content: JsonObject): Promise<string> {
    if (type === 'm.room.member') throw forbidden('Use the membership endpoints to change memberships');
    return this.write(roomId, async (w) => {
      await this.requireJoined(roomId, userId);
      if (type === 'm.room.canonical_alias') await this.checkCanonicalAlias(roomId, content);
      // Idempotence (as Synapse): an identical state event is not sent again.
      const current = await w.stateEvent(type, stateKey);
      if (current && current.sender === userId && JSON.stringify(current.content) === JSON.stringify(content)) {
        return w.state.get(`${type}\u0000${stateKey}`)!;
      }
      return (await this.append(w, { type, sender: userId, stateKey, content })).eventId;
    });
  }

  private async checkCanonicalAlias(roomId: string, content: JsonObject): Promise<void> {
    const aliases = [content.alias, ...(Array.isArray(content.alt_aliases) ? content.alt_aliases : [])].filter((a) => a !== undefined && a !== null);
    for (const a of aliases) {
      if (!isRoomAlias(a)) throw new MatrixError(400, 'M_INVALID_PARAM', `Invalid alias ${String(a)}`);
      if (this.hs.isLocal(a)) {
        const rec = await this.store.rooms.alias(a);
        if (!rec || rec.roomId !== roomId) throw new MatrixError(400, 'M_BAD_ALIAS', `${a} does not point to this room`);
      }
    }
  }

  // --- membership (spec: client-server API, "Room membership") ---------------------------------------
  async invite(sender: string, roomId: string, target: string, reason?: string, extra: JsonObject = {}): Promise<void> {
    if (!isUserId(target)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Not a user id');
    const content: JsonObject = { membership: 'invite', ...extra };
    if (reason) content.reason = reason;
    const build = async (w: RoomWriter) => {
      const cur = await this.store.rooms.membership(roomId, target);
      if (cur?.membership === 'join') throw forbidden(`${target} is already in the room`);
      if (cur?.membership === 'ban') throw forbidden(`${target} is banned from the room`);
      const inviteRoomState = await this.strippedStateOf(w, sender);
      const e = await this.append(w, { type: 'm.room.member', sender, stateKey: target, content, unsigned: { invite_room_state: inviteRoomState } });
      return { e, rules: w.rules, inviteRoomState };
    };
    if (this.hs.isLocal(target)) {
      await this.write(roomId, build);
      return;
    }
    // A remote invitee's server must accept (and countersign) the invite before the room sees it. The
    // handshake runs outside the write lock (two servers inviting each other's users at once would
    // otherwise each wait for the other's lock): build the event under the lock without committing,
    // countersign it, then take it in like any received event (its prev_events may be behind by then:
    // that is an ordinary fork, resolved by ingestion).
    const { e, rules, inviteRoomState } = await this.hs.writeLock.run(async () => build(await RoomWriter.open(this.hs, roomId)));
    const { unsigned: _u, ...pdu } = e.pdu;
    const countersigned = await sendInviteToRemote(this.hs, rules, e.eventId, pdu, inviteRoomState);
    const r = await this.hs.ingest.receive(this.hs.serverName, roomId, countersigned);
    if (r.error) throw forbidden(`Invite not accepted: ${r.error}`);
    const stored = await this.store.rooms.event(e.eventId);
    if (stored) await broadcast(this.hs, roomId, [stored], new Set([serverOf(target)]));
  }

  /**
   * Join a room: locally when this server is in it, else over federation through `via`, the alias's
   * servers, the room id's server, or the server of whoever invited us.
   */
  async join(userId: string, roomIdOrAlias: string, reason?: string, via: string[] = []): Promise<string> {
    const { roomId, servers } = await this.resolveRoomForJoin(roomIdOrAlias);
    if (!(await this.isResident(roomId))) {
      const invite = await this.store.rooms.membership(roomId, userId);
      const inviter = invite && (invite.membership === 'invite' || invite.membership === 'knock') ? (await this.store.rooms.event(invite.eventId))?.sender : undefined;
      // The nodes listing the room in the peer directory are live and in it (ordered by evidence:
      // peer-directory.ts, `serversFor`): before the room id's server, which may be gone.
      const candidates = [...via, ...servers, ...(inviter ? [serverOf(inviter)] : []), ...this.hs.peerDirectory.serversFor(roomId), ...(roomId.includes(':') ? [serverOf(roomId)] : [])];
      const content: JsonObject = { ...(await this.profileContent(userId)) };
      if (reason) content.reason = reason;
      return joinRemote(this.hs, userId, roomId, candidates, content);
    }
    await this.write(roomId, async (w) => {
      const cur = await this.store.rooms.membership(roomId, userId);
      if (cur?.membership === 'join') {
        // Re-joining refreshes the profile only if it changed (spec allows an idempotent join).
        return;
      }
      const content: JsonObject = { membership: 'join', ...(await this.profileContent(userId)) };
      if (reason) content.reason = reason;
      await this.append(w, { type: 'm.room.member', sender: userId, stateKey: userId, content });
    });
    return roomId;
  }

  async knock(userId: string, roomIdOrAlias: string, reason?: string, via: string[] = []): Promise<string> {
    const { roomId, servers } = await this.resolveRoomForJoin(roomIdOrAlias);
    if (!(await this.isResident(roomId))) {
      await knockRemote(this.hs, userId, roomId, [...via, ...servers, ...(roomId.includes(':') ? [serverOf(roomId)] : [])], reason);
      return roomId;
    }
    await this.write(roomId, async (w) => {
      const content: JsonObject = { membership: 'knock', ...(await this.profileContent(userId)) };
      if (reason) content.reason = reason;
      await this.append(w, { type: 'm.room.member', sender: userId, stateKey: userId, content, unsigned: { knock_room_state: await this.strippedStateOf(w) } });
    });
    return roomId;
  }

  /** leave, kick (sender ≠ target), unban: a `leave` membership; ban: `ban`. */
  async setMembership(sender: string, roomId: string, target: string, membership: 'leave' | 'ban', reason?: string, expect?: 'unban'): Promise<void> {
    if (!isUserId(target)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Not a user id');
    if (membership === 'leave' && sender === target && !(await this.isResident(roomId))) {
      // Rejecting an invite (or withdrawing a knock) to a room this server is not in.
      const cur = await this.store.rooms.membership(roomId, target);
      if (!cur || (cur.membership !== 'invite' && cur.membership !== 'knock')) throw forbidden('You are not in this room');
      const inviter = (await this.store.rooms.event(cur.eventId))?.sender;
      await leaveRemote(this.hs, target, roomId, [...(inviter ? [serverOf(inviter)] : []), ...(roomId.includes(':') ? [serverOf(roomId)] : [])]);
      return;
    }
    await this.write(roomId, async (w) => {
      const cur = await this.store.rooms.membership(roomId, target);
      if (expect === 'unban' && cur?.membership !== 'ban') throw forbidden(`${target} is not banned`);
      if (membership === 'leave' && sender === target && (!cur || cur.membership === 'leave')) {
        if (!cur) throw forbidden('You are not in this room');
        return; // already left: leaving again is a no-op
      }
      const content: JsonObject = { membership };
      if (reason) content.reason = reason;
      await this.append(w, { type: 'm.room.member', sender, stateKey: target, content });
    });
  }

  /** Forget a room the user has left (spec: "POST /rooms/{roomId}/forget"). */
  async forget(userId: string, roomId: string): Promise<void> {
    await this.hs.writeLock.run(async () => {
      const cur = await this.store.rooms.membership(roomId, userId);
      if (!cur) throw notFound('You have no membership in this room');
      if (cur.membership === 'join' || cur.membership === 'invite' || cur.membership === 'knock') {
        throw new MatrixError(400, 'M_UNKNOWN', 'Leave the room before forgetting it');
      }
      const b = this.store.batch();
      const stream = b.nextStream();
      b.put('memberships', { ...cur, forgotten: true, stream });
      this.hs.notifier.notify(await b.commit());
    });
  }

  /** Whether this server is in the room (has a joined member): then it can build events itself. */
  async isResident(roomId: string): Promise<boolean> {
    if (!(await this.store.rooms.room(roomId))) return false;
    return (await this.store.rooms.membersOfRoom(roomId, 'join')).some((m) => this.hs.isLocal(m.userId));
  }

  /** A room id and servers to join through, from an id or an alias (local, or resolved as `GET /directory/room` does). */
  async resolveRoomForJoin(idOrAlias: string): Promise<{ roomId: string; servers: string[] }> {
    if (isRoomId(idOrAlias)) return { roomId: idOrAlias, servers: [] };
    if (isRoomAlias(idOrAlias)) {
      const local = await this.store.rooms.alias(idOrAlias);
      if (local) return { roomId: local.roomId, servers: local.servers ?? [] };
      if (!this.hs.isLocal(idOrAlias) && this.hs.federation.enabled) {
        // As `GET /directory/room`: the alias's server, else (unreachable) the peer directory; its 404
        // is a 404, an unreachable server with no answer from the directory a 502.
        const r = await resolveRemoteAlias(this.hs, idOrAlias);
        return { roomId: r.room_id, servers: r.servers };
      }
      throw notFound(`Room alias ${idOrAlias} not found`);
    }
    throw new MatrixError(400, 'M_INVALID_PARAM', 'Not a room id or alias');
  }

  /** A room id from an id or an alias on this node. */
  async resolveRoom(idOrAlias: string): Promise<string> {
    if (isRoomId(idOrAlias)) {
      if (!(await this.store.rooms.room(idOrAlias))) throw notFound('No known room with that id (remote joins come with federation)');
      return idOrAlias;
    }
    if (isRoomAlias(idOrAlias)) {
      const a = await this.store.rooms.alias(idOrAlias);
      if (!a) throw notFound(`Room alias ${idOrAlias} not found`);
      return a.roomId;
    }
    throw new MatrixError(400, 'M_INVALID_PARAM', 'Not a room id or alias');
  }

  // --- reading -----------------------------------------------------------------------------------------
  async requireJoined(roomId: string, userId: string): Promise<MembershipRecord> {
    const m = await this.store.rooms.membership(roomId, userId);
    if (m?.membership !== 'join') throw forbidden(`You are not joined to ${roomId}`);
    return m;
  }

  /**
   * Which events of a room the user may see (spec: client-server API, "History visibility"): all of a
   * room they are in (`shared`); up to their leave or ban otherwise; everything when world_readable.
   * Returns undefined when they may see nothing.
   */
  async visibility(roomId: string, userId: string | undefined): Promise<((e: StoredEvent) => boolean) | undefined> {
    const hvEvent = await this.store.rooms.stateEvent(roomId, 'm.room.history_visibility', '');
    const hv = (hvEvent?.pdu.content as JsonObject | undefined)?.history_visibility ?? 'shared';
    if (hv === 'world_readable') return () => true;
    if (!userId) return undefined;
    const m = await this.store.rooms.membership(roomId, userId);
    if (!m) return undefined;
    if (m.membership === 'join') return () => true;
    if (m.membership === 'leave' || m.membership === 'ban') return (e) => (e.stream ?? 0) <= m.stream;
    return undefined;
  }

  /** Stripped state for invites and knocks, from the current state. */
  async strippedCurrentState(roomId: string): Promise<JsonObject[]> {
    const out: JsonObject[] = [];
    for (const t of STRIPPED_TYPES) {
      const e = await this.store.rooms.stateEvent(roomId, t, '');
      if (e) out.push(strippedState(e));
    }
    return out;
  }
}
