/** Rooms: events, the timeline, state (groups and current), memberships, receipts, aliases, send idempotency. */
import { splitStateKey, stateKey, type StateMap } from '../kernel/types.ts';
import type { Key, ReadTx, StorageEngine } from './engine.ts';
import { prefixRange } from './engine.ts';
import type { CurrentStateRecord, MembershipRecord, ReceiptRecord, RoomRecord, StateGroupRecord, StoredEvent } from './records.ts';

/** Snapshot a state group after this many deltas, so reading any state walks a short chain. */
export const STATE_SNAPSHOT_INTERVAL = 64;

export interface AliasRecord {
  alias: string;
  roomId: string;
  creator: string;
  servers?: string[];
}

export class RoomsStore {
  /** Resolved state groups are immutable: cache a few (they are rebuilt from the Store after a restart). */
  private groupCache = new Map<number, StateMap>();
  constructor(private readonly engine: StorageEngine) {}

  room(roomId: string): Promise<RoomRecord | undefined> {
    return this.engine.read((tx) => tx.get<RoomRecord>('rooms', roomId));
  }
  publishedRooms(): Promise<RoomRecord[]> {
    return this.engine.read((tx) => tx.query<RoomRecord>('rooms', { index: 'by_published', range: { lower: 1, upper: 1 } }));
  }

  event(eventId: string): Promise<StoredEvent | undefined> {
    return this.engine.read((tx) => tx.get<StoredEvent>('events', eventId));
  }
  async events(eventIds: readonly string[]): Promise<Map<string, StoredEvent>> {
    const rows = await this.engine.read((tx) => Promise.all(eventIds.map((id) => tx.get<StoredEvent>('events', id))));
    const m = new Map<string, StoredEvent>();
    rows.forEach((r) => r && m.set(r.eventId, r));
    return m;
  }

  /**
   * Timeline events of a room by stream position: `dir` 'b' walks back from `from` (exclusive),
   * 'f' forward from `from` (exclusive), up to `to` (exclusive) when given.
   */
  timeline(roomId: string, opts: { from?: number; to?: number; dir: 'b' | 'f'; limit: number; shared?: boolean }): Promise<StoredEvent[]> {
    const { from, to, dir, limit, shared } = opts;
    const lower = dir === 'f' ? from ?? -Infinity : to ?? -Infinity;
    const upper = dir === 'f' ? to ?? Infinity : from ?? Infinity;
    return this.engine.read((tx) =>
      tx.query<StoredEvent>('events', {
        index: 'by_room_stream',
        range: { lower: [roomId, lower], upper: [roomId, upper], lowerOpen: true, upperOpen: true },
        direction: dir === 'f' ? 'next' : 'prev',
        limit,
        shared,
      }),
    );
  }
  /** Every timeline event after a stream position, across rooms (sync). */
  eventsSince(stream: number, upTo: number): Promise<StoredEvent[]> {
    return this.engine.read((tx) =>
      tx.query<StoredEvent>('events', { index: 'by_stream', range: { lower: stream, upper: upTo, lowerOpen: true } }),
    );
  }
  /** Events relating to `eventId` (relations, threads), in stream order. */
  relations(eventId: string, opts: { dir: 'b' | 'f'; from?: number; limit: number }): Promise<StoredEvent[]> {
    const { dir, from, limit } = opts;
    return this.engine.read((tx) =>
      tx.query<StoredEvent>('events', {
        index: 'by_relation',
        range: {
          lower: [eventId, dir === 'f' ? from ?? -Infinity : -Infinity],
          upper: [eventId, dir === 'b' ? from ?? Infinity : Infinity],
          lowerOpen: true,
          upperOpen: true,
        },
        direction: dir === 'f' ? 'next' : 'prev',
        limit,
      }),
    );
  }

  /** The room state a state group holds. */
  async stateGroup(id: number): Promise<StateMap> {
    const cached = this.groupCache.get(id);
    if (cached) return cached;
    const chain = await this.engine.read(async (tx) => {
      const out: StateGroupRecord[] = [];
      let g = await tx.get<StateGroupRecord>('state_groups', id);
      while (g) {
        out.push(g);
        if (g.prev === undefined || this.groupCache.has(g.prev)) break;
        g = await tx.get<StateGroupRecord>('state_groups', g.prev);
      }
      return out;
    });
    if (chain.length === 0) throw new Error(`state group ${id} missing`);
    const last = chain[chain.length - 1];
    const state: StateMap = last.prev !== undefined && this.groupCache.has(last.prev) ? new Map(this.groupCache.get(last.prev)) : new Map();
    for (let i = chain.length - 1; i >= 0; i--) for (const [k, v] of chain[i].entries) state.set(k, v);
    if (this.groupCache.size > 256) this.groupCache.clear();
    this.groupCache.set(id, state);
    return state;
  }
  /** The state group record (to decide whether the next one is a delta or a snapshot). */
  stateGroupRecord(id: number): Promise<StateGroupRecord | undefined> {
    return this.engine.read((tx) => tx.get<StateGroupRecord>('state_groups', id));
  }

  /** The room's current state as a map (type, state_key) → event id. */
  async currentState(roomId: string): Promise<StateMap> {
    const rows = await this.engine.read((tx) => tx.query<CurrentStateRecord>('current_state', { range: prefixRange(roomId) }));
    return new Map(rows.map((r) => [stateKey(r.type, r.stateKey), r.eventId]));
  }
  /** Current state events of a room (optionally of one type), loaded. */
  async currentStateEvents(roomId: string, type?: string): Promise<StoredEvent[]> {
    return this.engine.read(async (tx) => {
      const rows = await tx.query<CurrentStateRecord>('current_state', { range: type === undefined ? prefixRange(roomId) : prefixRange(roomId, type) });
      const evs = await Promise.all(rows.map((r) => tx.get<StoredEvent>('events', r.eventId)));
      return evs.filter((e): e is StoredEvent => !!e);
    });
  }
  /** One current state event's id and content. */
  async stateEvent(roomId: string, type: string, key: string): Promise<StoredEvent | undefined> {
    return this.engine.read(async (tx) => {
      const row = await tx.get<CurrentStateRecord>('current_state', [roomId, type, key]);
      return row ? tx.get<StoredEvent>('events', row.eventId) : undefined;
    });
  }
  /** Load the events a state map names. */
  async loadState(state: StateMap, filter?: (type: string, key: string) => boolean): Promise<StoredEvent[]> {
    const ids: string[] = [];
    for (const [k, id] of state) {
      if (filter) {
        const [t, sk] = splitStateKey(k);
        if (!filter(t, sk)) continue;
      }
      ids.push(id);
    }
    return [...(await this.events(ids)).values()];
  }

  membership(roomId: string, userId: string): Promise<MembershipRecord | undefined> {
    return this.engine.read((tx) => tx.get<MembershipRecord>('memberships', [userId, roomId]));
  }
  /** Every room a user has a membership in (any membership). */
  membershipsOfUser(userId: string): Promise<MembershipRecord[]> {
    return this.engine.read((tx) => tx.query<MembershipRecord>('memberships', { range: prefixRange(userId) }));
  }
  /** Members of a room with a given membership. */
  membersOfRoom(roomId: string, membership = 'join'): Promise<MembershipRecord[]> {
    return this.engine.read((tx) => tx.query<MembershipRecord>('memberships', { index: 'by_room', range: { lower: [roomId, membership], upper: [roomId, membership] } }));
  }

  txn(userId: string, deviceId: string, txnId: string): Promise<{ eventId: string } | undefined> {
    return this.engine.read((tx) => tx.get<{ eventId: string }>('txns', [userId, deviceId, txnId]));
  }
  /** The keys of the send-idempotency records made before `cutoff` (ms), or with no time (made before records had one). */
  async txnsBefore(cutoff: number): Promise<Key[]> {
    const rows = await this.engine.read((tx) => tx.query<{ userId: string; deviceId: string; txnId: string; ts?: number }>('txns', { shared: true }));
    return rows.filter((r) => !(typeof r.ts === 'number' && r.ts >= cutoff)).map((r) => [r.userId, r.deviceId, r.txnId]);
  }

  receiptsSince(roomId: string, stream: number): Promise<ReceiptRecord[]> {
    return this.engine.read((tx) => tx.query<ReceiptRecord>('receipts', { index: 'by_room_stream', range: { lower: [roomId, stream], upper: [roomId, Infinity], lowerOpen: true } }));
  }
  receipt(roomId: string, receiptType: string, userId: string, threadId: string): Promise<ReceiptRecord | undefined> {
    return this.engine.read((tx) => tx.get<ReceiptRecord>('receipts', [roomId, receiptType, userId, threadId]));
  }

  alias(alias: string): Promise<AliasRecord | undefined> {
    return this.engine.read((tx) => tx.get<AliasRecord>('aliases', alias));
  }
  aliasesOfRoom(roomId: string): Promise<AliasRecord[]> {
    return this.engine.read((tx) => tx.query<AliasRecord>('aliases', { index: 'by_room', range: { lower: roomId, upper: roomId } }));
  }

  /** Reads within one transaction, for callers that need several consistent reads. */
  read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    return this.engine.read(fn);
  }
}
