/**
 * Builds local events and everything they change, then commits it all at once ("compute, then
 * commit"): the signed event, its auth check against the current state, the new state group, current
 * state, memberships, the room's extremities and depth, send idempotency, and redactions applied.
 * Callers hold the homeserver's write lock from `open` to `commit`.
 */
import { forbidden, notFound } from '../api/errors.ts';
import { authEventTypes, checkAuth } from '../kernel/auth/index.ts';
import { computeEventId, eventSignatures, hashEvent, roomIdFromCreateEventId } from '../kernel/events.ts';
import { redactEvent } from '../kernel/redaction.ts';
import { roomVersion, type RoomVersionRules } from '../kernel/room-versions.ts';
import { stateKey as sk, type JsonObject, type PDU, type StateMap } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import { derivedEventFields, type RoomRecord, type StateGroupRecord, type StoredEvent } from '../store/records.ts';
import { STATE_SNAPSHOT_INTERVAL } from '../store/rooms.ts';
import type { WriteBatch } from '../store/store.ts';
import { toClientEvent } from './client-events.ts';
import { serverOf } from '../util/ids.ts';
import { federationPdu } from '../federation/backfill.ts';

/** The largest event (spec: client-server API, "Size limits"): 65,536 bytes of canonical JSON. */
export const MAX_EVENT_BYTES = 65_536;

export interface EventDraft {
  type: string;
  sender: string;
  content: JsonObject;
  stateKey?: string;
  /** Room v1–10 `m.room.redaction` carry `redacts` at the top level. */
  redacts?: string;
  txn?: { userId: string; deviceId: string; txnId: string };
  /** The idempotency key of the send, when it differs from the txnId clients see (redactions share the txnId space with a prefix). */
  txnKey?: string;
  /** Extra `unsigned` fields on the stored PDU (e.g. invite_room_state), not signed. */
  unsigned?: JsonObject;
}

export class RoomWriter {
  readonly appended: StoredEvent[] = [];
  private cache = new Map<string, PDU>();
  private groupChain: number;
  /** The id of a room being created (room versions before 12 choose it; v12 derives it from the create event). */
  private newRoomId?: string;

  private constructor(
    private readonly hs: Homeserver,
    readonly batch: WriteBatch,
    public room: RoomRecord | undefined,
    readonly rules: RoomVersionRules,
    readonly state: StateMap,
    groupChain: number,
  ) {
    this.groupChain = groupChain;
  }

  /** Open a writer on an existing room (404 when we do not know it). */
  static async open(hs: Homeserver, roomId: string, batch = hs.store.batch()): Promise<RoomWriter> {
    const room = await hs.store.rooms.room(roomId);
    if (!room) throw notFound(`Unknown room ${roomId}`);
    const rules = roomVersion(room.version);
    if (!rules) throw notFound(`Room version ${room.version} is not supported`);
    const [state, group] = await Promise.all([hs.store.rooms.stateGroup(room.stateGroup), hs.store.rooms.stateGroupRecord(room.stateGroup)]);
    return new RoomWriter(hs, batch, room, rules, new Map(state), group?.chain ?? 0);
  }

  /** A writer for a room about to be created (its first event must be the create event). */
  static forNewRoom(hs: Homeserver, rules: RoomVersionRules, roomId: string | undefined, batch = hs.store.batch()): RoomWriter {
    const w = new RoomWriter(hs, batch, undefined, rules, new Map(), STATE_SNAPSHOT_INTERVAL);
    w.newRoomId = roomId;
    return w;
  }

  get roomId(): string {
    if (!this.room) throw new Error('room not created yet');
    return this.room.roomId;
  }

  /** The PDU of an event in the current state (loaded once, then cached). */
  async stateEvent(type: string, key: string): Promise<PDU | undefined> {
    const id = this.state.get(sk(type, key));
    return id ? this.pdu(id) : undefined;
  }
  private async pdu(id: string): Promise<PDU | undefined> {
    let p = this.cache.get(id);
    if (!p) {
      const stored = await this.hs.store.rooms.event(id);
      // Kernel functions identify events by `event_id`; the stored federation form (v3+) has none.
      p = stored ? { ...stored.pdu, event_id: stored.eventId } : undefined;
      if (p) this.cache.set(id, p);
    }
    return p;
  }

  /** Build, sign, authorise and stage one event. Throws 403 M_FORBIDDEN when the auth rules reject it. */
  async append(draft: EventDraft): Promise<StoredEvent> {
    const { hs, rules } = this;
    const isCreate = draft.type === 'm.room.create' && draft.stateKey === '';
    if (!this.room && !isCreate) throw new Error('the first event of a room is its create event');

    const pdu: PDU = {
      type: draft.type,
      sender: draft.sender,
      content: draft.content,
      origin_server_ts: hs.clock(),
      depth: this.room ? Math.min(this.room.maxDepth + 1, Number.MAX_SAFE_INTEGER) : 1,
      prev_events: this.room ? [...this.room.extremities] : [],
      auth_events: [],
    };
    if (!(isCreate && rules.auth.roomIdFromCreateEvent)) pdu.room_id = this.room?.roomId ?? this.newRoomId;
    if (draft.stateKey !== undefined) pdu.state_key = draft.stateKey;
    if (draft.redacts !== undefined) pdu.redacts = draft.redacts;

    // Auth events: the spec's selection from the current state (server-server API, "Auth events selection").
    const authIds: string[] = [];
    const authPdus = new Map<string, PDU>();
    for (const [t, k] of authEventTypes(pdu, rules)) {
      const id = this.state.get(sk(t, k));
      if (!id) continue;
      authIds.push(id);
      const p = await this.pdu(id);
      if (p) authPdus.set(sk(t, k), p);
    }
    pdu.auth_events = authIds;
    if (rules.auth.roomIdFromCreateEvent && !isCreate) {
      const create = await this.stateEvent('m.room.create', '');
      if (create) authPdus.set(sk('m.room.create', ''), create);
    }

    // The event is hashed now and signed beside the rest of this step (ed25519 runs off the main thread): its
    // id, its auth check and what it changes need no signature; the signatures join it before it is returned.
    const signed = hashEvent(pdu);
    const signing = eventSignatures(signed, rules, hs.serverName, hs.signingKey);
    signing.catch(() => {}); // (awaited below, unless the event is refused first)
    const eventId = computeEventId(signed, rules);
    if (isCreate) {
      const roomId = rules.auth.roomIdFromCreateEvent ? roomIdFromCreateEventId(eventId) : (signed.room_id as string);
      this.room = { roomId, version: rules.id, extremities: [], maxDepth: 0, stateGroup: 0, createdTs: hs.clock() };
    }
    const withId: PDU = { ...signed, event_id: eventId };
    const verdict = checkAuth(withId, (t, k) => authPdus.get(sk(t, k)), rules);
    if (!verdict.allowed) throw forbidden(verdict.reason);

    const room = this.room!;
    const stream = this.batch.nextStream();
    const stored: StoredEvent = {
      eventId,
      roomId: room.roomId,
      pdu: draft.unsigned ? { ...signed, unsigned: draft.unsigned } : signed,
      stream,
      depth: signed.depth ?? 0,
      type: draft.type,
      sender: draft.sender,
      stateBefore: room.stateGroup || undefined,
    };
    if (draft.txn) {
      stored.txn = draft.txn;
      this.batch.put('txns', { ...draft.txn, txnId: draft.txnKey ?? draft.txn.txnId, eventId, ts: hs.clock() });
    }
    Object.assign(stored, derivedEventFields({ type: draft.type, state_key: draft.stateKey, content: draft.content }));

    if (draft.stateKey !== undefined) {
      const key = sk(draft.type, draft.stateKey);
      const prevId = this.state.get(key);
      if (prevId) {
        const prev = await this.pdu(prevId);
        stored.replacesState = prevId;
        if (prev) {
          stored.prevContent = prev.content;
          stored.prevSender = prev.sender;
        }
      }
      this.state.set(key, eventId);
      room.stateGroup = this.newStateGroup(room, key, eventId);
      this.batch.put('current_state', { roomId: room.roomId, type: draft.type, stateKey: draft.stateKey, eventId });
      if (draft.type === 'm.room.member' && stored.membership) {
        this.batch.put('memberships', { userId: draft.stateKey, roomId: room.roomId, membership: stored.membership, eventId, stream });
      }
    }
    stored.stateAfter = room.stateGroup;
    this.cache.set(eventId, withId);
    room.extremities = [eventId];
    room.maxDepth = stored.depth;

    if (draft.type === 'm.room.redaction') await this.applyRedaction(stored, rules);
    this.batch.put('events', stored);
    this.batch.put('rooms', room);
    this.appended.push(stored);
    // (The batch holds `stored` itself until it commits: it is written with its signatures.)
    const signatures = await signing;
    stored.pdu = { ...stored.pdu, signatures };
    this.cache.set(eventId, { ...withId, signatures });
    return stored;
  }

  private newStateGroup(room: RoomRecord, key: string, eventId: string): number {
    const id = this.batch.newStateGroupId();
    let rec: StateGroupRecord;
    if (this.groupChain >= STATE_SNAPSHOT_INTERVAL || !room.stateGroup) {
      rec = { id, roomId: room.roomId, entries: [...this.state], chain: 0 };
    } else {
      rec = { id, roomId: room.roomId, prev: room.stateGroup, entries: [[key, eventId]], chain: this.groupChain + 1 };
    }
    this.groupChain = rec.chain;
    this.batch.put('state_groups', rec);
    return id;
  }

  /** Redact the target in place (spec: client-server API, "Redactions"; rooms/v3 "Handling redactions"). */
  private async applyRedaction(redaction: StoredEvent, rules: RoomVersionRules): Promise<void> {
    const c = redaction.pdu.content as JsonObject;
    const targetId = (typeof c.redacts === 'string' ? c.redacts : redaction.pdu.redacts) as string | undefined;
    if (!targetId) return;
    const target = this.appended.find((e) => e.eventId === targetId) ?? (await this.hs.store.rooms.event(targetId));
    if (!target || target.roomId !== redaction.roomId || target.type === 'm.room.create') return;
    const redacted: StoredEvent = {
      ...target,
      pdu: redactEvent(target.pdu, rules),
      redactedBy: redaction.eventId,
      redactedBecause: toClientEvent(redaction, { now: redaction.pdu.origin_server_ts ?? 0 }) as unknown as JsonObject,
    };
    delete redacted.relatesTo;
    delete redacted.relType;
    this.batch.put('events', redacted);
    this.hs.ingest.cache.forget(targetId);
  }

  /**
   * Commit everything staged, then wake `/sync`. Local events are queued, in the same write, for every
   * other server in the room (and the server of a member event's target), then sent.
   */
  async commit(): Promise<StoredEvent[]> {
    const destinations = new Set<string>();
    if (this.hs.federation.enabled && this.room && this.appended.length) {
      for (const m of await this.hs.store.rooms.membersOfRoom(this.room.roomId, 'join')) destinations.add(serverOf(m.userId));
      for (const e of this.appended) if (e.type === 'm.room.member' && e.stateKey) destinations.add(serverOf(e.stateKey));
      destinations.delete(this.hs.serverName);
      // Local `unsigned` additions (invite_room_state...) are ours: the federation form goes without them.
      for (const e of this.appended) this.hs.federation.enqueue(this.batch, destinations, 'pdu', federationPdu(e) as unknown as JsonObject, e.stream!);
    }
    // The queues are kicked as soon as the batch is visible: the sender signs its transaction while the
    // batch commits, and sends once it is durable (FederationService.run).
    const pos = await this.batch.commit(() => {
      for (const d of destinations) this.hs.federation.kick(d);
    });
    this.hs.notifier.notify(pos);
    // Local membership changes (re)publish rooms in the background (peer directory, issue #7).
    for (const e of this.appended) if (e.type === 'm.room.member' && e.stateKey !== undefined && this.hs.isLocal(e.stateKey)) this.hs.peerDirectory.membershipChanged(e.roomId);
    for (const e of this.appended) if (e.stateKey !== undefined) this.hs.peerDirectory.roomStateChanged(e.roomId, e.type);
    return this.appended;
  }
}
