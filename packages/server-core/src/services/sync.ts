/**
 * `/sync` (spec: client-server API, "Syncing"): initial and incremental, long-polling on the
 * notifier, filtered. Everything is read from the Store by stream position, so a restarted worker
 * answers the same `since` token with the same changes.
 */
import { MatrixError } from '../api/errors.ts';
import type { Requester } from '../api/endpoint.ts';
import type { JsonObject, StateMap } from '../kernel/types.ts';

import type { Homeserver } from '../homeserver.ts';
import type { MembershipRecord, ReceiptRecord, StoredEvent } from '../store/records.ts';
import { strippedState, toClientEvent } from './client-events.ts';
import { eventMatches, eventMatchesRoomFilter, roomAllowed, type Filter, type RoomEventFilter } from './filters.ts';
import { syncE2ee } from './keys.ts';
import { paginationToken, parseSyncToken, syncToken, type SyncToken } from './tokens.ts';

export interface SyncParams {
  since?: string;
  timeout: number;
  filter: Filter;
  fullState: boolean;
  signal?: AbortSignal;
  /** Called when the long-poll starts to wait for news (the router then sends the answer's head). */
  waiting?: () => void;
}

/** Message-like types that count as unread notifications (a simplification of push rule evaluation). */
const UNREAD_SCAN = 50;
const NOTIFYING = new Set(['m.room.message', 'm.room.encrypted', 'm.sticker', 'm.call.invite', 'm.poll.start']);

export class SyncService {
  constructor(private readonly hs: Homeserver) {}

  async sync(user: Requester, p: SyncParams): Promise<JsonObject> {
    let since: SyncToken | undefined;
    if (p.since !== undefined) {
      since = parseSyncToken(p.since);
      if (!since) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid since token');
      // A token from before a reset (or another server) cannot be newer than what we have.
      if (since.stream > this.hs.store.stream) since = { stream: this.hs.store.stream, typing: since.typing };
    }
    const deadline = this.hs.clock() + Math.min(Math.max(p.timeout, 0), 60_000);
    for (;;) {
      const upTo = this.hs.store.stream;
      const typing = this.hs.typing.serial;
      const { body, empty } = await this.compute(user, since, upTo, typing, p);
      const remaining = deadline - this.hs.clock();
      if (!since || p.fullState || !empty || remaining <= 0 || p.signal?.aborted) return body;
      p.waiting?.();
      await this.hs.notifier.wait(upTo, remaining, p.signal);
      if (this.hs.store.stream === upTo && this.hs.typing.serial === typing && this.hs.clock() >= deadline) return body;
    }
  }

  private async compute(user: Requester, since: SyncToken | undefined, upTo: number, typingSerial: number, p: SyncParams) {
    const hs = this.hs;
    const f = p.filter;
    const join: Record<string, JsonObject> = {};
    const invite: Record<string, JsonObject> = {};
    const leave: Record<string, JsonObject> = {};
    const knock: Record<string, JsonObject> = {};
    const viewer = { userId: user.userId, deviceId: user.deviceId, now: hs.clock() };
    const memberships = await hs.store.rooms.membershipsOfUser(user.userId);
    const joinedNow: string[] = [];
    const roomAccountData = await this.roomAccountData(user.userId, since?.stream ?? 0, upTo);

    for (const m of memberships) {
      if (m.membership === 'join') joinedNow.push(m.roomId);
      if (!roomAllowed(m.roomId, f)) continue;
      if (m.membership === 'join') {
        const r = await this.joinedRoom(user, m, since, upTo, typingSerial, p, viewer, roomAccountData.get(m.roomId));
        if (r) join[m.roomId] = r;
      } else if (m.membership === 'invite' || m.membership === 'knock') {
        if (since && m.stream <= since.stream) continue;
        if (m.stream > upTo) continue;
        const ev = await hs.store.rooms.event(m.eventId);
        if (!ev) continue;
        const key = m.membership === 'invite' ? 'invite_room_state' : 'knock_room_state';
        const stripped = ((ev.pdu.unsigned as JsonObject | undefined)?.[key] as JsonObject[] | undefined) ?? (await hs.rooms.strippedCurrentState(m.roomId));
        const events = [...stripped, strippedState(ev)];
        if (m.membership === 'invite') invite[m.roomId] = { invite_state: { events } };
        else knock[m.roomId] = { knock_state: { events } };
      } else if ((m.membership === 'leave' || m.membership === 'ban') && !m.forgotten) {
        if (m.stream > upTo) continue;
        if (since ? m.stream <= since.stream : !f.room?.include_leave) continue;
        leave[m.roomId] = await this.leftRoom(user, m, since, p, viewer);
      }
    }

    const accountData = (await hs.store.userData.accountDataSince(user.userId, since?.stream ?? 0))
      .filter((a) => a.roomId === '' && a.stream <= upTo && eventMatches({ type: a.type, sender: user.userId }, f.account_data))
      .map((a) => ({ type: a.type, content: a.content }));
    const e2ee = await syncE2ee(hs, user, since?.stream, upTo, joinedNow);
    const presence = await this.presence(user.userId, since?.stream ?? 0, upTo, joinedNow, f);

    const body: JsonObject = {
      next_batch: syncToken({ stream: upTo, typing: typingSerial }),
      rooms: { join, invite, leave, knock },
      account_data: { events: accountData },
      presence: { events: presence },
      to_device: e2ee.to_device as unknown as JsonObject,
      device_lists: e2ee.device_lists as unknown as JsonObject,
      device_one_time_keys_count: e2ee.device_one_time_keys_count,
      device_unused_fallback_key_types: e2ee.device_unused_fallback_key_types,
      'org.matrix.msc2732.device_unused_fallback_key_types': e2ee.device_unused_fallback_key_types,
    };
    const empty =
      !Object.keys(join).length && !Object.keys(invite).length && !Object.keys(leave).length && !Object.keys(knock).length &&
      !accountData.length && !presence.length && !e2ee.to_device.events.length && !e2ee.device_lists.changed.length && !e2ee.device_lists.left.length;
    return { body, empty };
  }

  private async roomAccountData(userId: string, since: number, upTo: number): Promise<Map<string, JsonObject[]>> {
    const out = new Map<string, JsonObject[]>();
    for (const a of await this.hs.store.userData.accountDataSince(userId, since)) {
      if (a.roomId === '' || a.stream > upTo) continue;
      let l = out.get(a.roomId);
      if (!l) out.set(a.roomId, (l = []));
      l.push({ type: a.type, content: a.content });
    }
    return out;
  }

  /** Was the user joined at `since`? (The membership record only has the latest change.) */
  private async newlyJoined(m: MembershipRecord, since: SyncToken | undefined): Promise<boolean> {
    if (!since) return true;
    if (m.stream <= since.stream) return false;
    // Walk back through this user's membership events until one at or before `since`.
    let ev = await this.hs.store.rooms.event(m.eventId);
    while (ev && (ev.stream ?? 0) > since.stream) {
      if (!ev.replacesState) return true;
      const prev = await this.hs.store.rooms.event(ev.replacesState);
      if (!prev) return true;
      ev = prev;
    }
    return ev?.membership !== 'join';
  }

  private async joinedRoom(
    user: Requester, m: MembershipRecord, since: SyncToken | undefined, upTo: number, typingSerial: number,
    p: SyncParams, viewer: { userId: string; deviceId: string; now: number }, accountData: JsonObject[] | undefined,
  ): Promise<JsonObject | undefined> {
    const hs = this.hs;
    const roomId = m.roomId;
    const tf: RoomEventFilter = p.filter.room?.timeline ?? {};
    const sf: RoomEventFilter = p.filter.room?.state ?? {};
    const limit = Math.min(tf.limit ?? 10, 100);
    const lazy = !!(sf.lazy_load_members ?? tf.lazy_load_members);
    const fresh = p.fullState || (await this.newlyJoined(m, since));
    const sinceStream = fresh ? undefined : since!.stream;

    // Timeline: the newest `limit` events after `since` (all history for a fresh room), filtered.
    const raw = await hs.store.rooms.timeline(roomId, { from: upTo + 1, to: sinceStream, dir: 'b', limit: limit + 1 });
    const limited = raw.length > limit;
    const window = raw.slice(0, limit).reverse();
    const timeline = window.filter((e) => !e.rejected && eventMatchesRoomFilter(e, tf));
    const timelineStart = window.length ? window[0].stream! : upTo + 1;

    // State: what changed between `since` and the start of the timeline (everything for a fresh room).
    // The state before the timeline (read only when needed) is the state after the room's last event
    // before it: when the timeline is limited, that event is raw[limit], already read.
    let beforeTimeline: StateMap | undefined;
    const before = async () => (beforeTimeline ??= limited ? await this.stateAfter(raw[limit]) : await this.stateBefore(roomId, timelineStart));
    let stateMap: StateMap;
    if (fresh) stateMap = await before();
    else if (limited) {
      const atSince = await this.stateBefore(roomId, sinceStream! + 1);
      stateMap = new Map([...(await before())].filter(([k, id]) => atSince.get(k) !== id));
    } else stateMap = new Map();
    const inTimeline = new Set(timeline.map((e) => e.eventId));
    const senders = new Set(timeline.map((e) => e.sender));
    senders.add(user.userId);
    const stateEvents = (await hs.store.rooms.loadState(stateMap, (type, key) => {
      if (lazy && type === 'm.room.member' && !senders.has(key)) return false;
      return true;
    })).filter((e) => !inTimeline.has(e.eventId) && eventMatchesRoomFilter(e, sf));
    if (lazy && !fresh) {
      // Lazy loading: members of timeline senders the client may not have yet.
      for (const s of senders) {
        if (s === user.userId || stateMap.has(`m.room.member\u0000${s}`)) continue;
        const id = (await before()).get(`m.room.member\u0000${s}`);
        if (id && !inTimeline.has(id)) {
          const e = await hs.store.rooms.event(id);
          if (e) stateEvents.push(e);
        }
      }
    }

    // Ephemeral: typing and receipts.
    const ephemeral: JsonObject[] = [];
    if (!since || fresh || hs.typing.changedSince(roomId, since.typing) || since.typing > typingSerial) {
      const users = hs.typing.users(roomId);
      if (users.length || since) ephemeral.push({ type: 'm.typing', content: { user_ids: users } });
    }
    const receipts = (await hs.store.rooms.receiptsSince(roomId, fresh ? 0 : since!.stream)).filter((r) => r.stream <= upTo);
    const receiptContent = receiptsContent(receipts, user.userId);
    if (receiptContent) ephemeral.push({ type: 'm.receipt', content: receiptContent });

    const changed = fresh || timeline.length || stateEvents.length || ephemeral.some((e) => e.type !== 'm.typing' || (e.content as JsonObject).user_ids) || accountData?.length;
    const typingOnly = ephemeral.length === 1 && ephemeral[0].type === 'm.typing' && since && hs.typing.changedSince(roomId, since.typing);
    if (!changed && !typingOnly) return undefined;

    const out: JsonObject = {
      timeline: {
        events: timeline.map((e) => toClientEvent(e, viewer, false)) as unknown as JsonObject[],
        limited,
        prev_batch: paginationToken(timelineStart),
      },
      state: { events: stateEvents.map((e) => toClientEvent(e, viewer, false)) as unknown as JsonObject[] },
      ephemeral: { events: ephemeral },
      account_data: { events: accountData ?? [] },
      // raw holds every event of the room in (since, upTo] (when limited: from its oldest entry on).
      unread_notifications: await this.unread(roomId, user.userId, upTo, { events: raw, completeFrom: limited ? raw[raw.length - 1].stream! : sinceStream ?? -Infinity }),
      summary: await this.summary(roomId, user.userId),
    };
    return out;
  }

  /** The room state just before a stream position (after the last event before it). */
  private async stateBefore(roomId: string, position: number): Promise<StateMap> {
    const prev = (await this.hs.store.rooms.timeline(roomId, { from: position, dir: 'b', limit: 1 }))[0];
    if (prev) return this.stateAfter(prev);
    // Nothing earlier in our timeline (a room joined over federation starts at the join): the state
    // before the first event we have at or after the position.
    const next = (await this.hs.store.rooms.timeline(roomId, { from: position - 1, dir: 'f', limit: 1 }))[0];
    return next?.stateBefore ? this.hs.store.rooms.stateGroup(next.stateBefore) : new Map();
  }
  private async stateAfter(event: StoredEvent | undefined): Promise<StateMap> {
    if (!event?.stateAfter) return new Map();
    return this.hs.store.rooms.stateGroup(event.stateAfter);
  }

  private async leftRoom(user: Requester, m: MembershipRecord, since: SyncToken | undefined, p: SyncParams, viewer: { userId: string; deviceId: string; now: number }): Promise<JsonObject> {
    const hs = this.hs;
    const tf: RoomEventFilter = p.filter.room?.timeline ?? {};
    const limit = Math.min(tf.limit ?? 10, 100);
    const raw = await hs.store.rooms.timeline(m.roomId, { from: m.stream + 1, to: since?.stream, dir: 'b', limit: limit + 1 });
    const window = raw.slice(0, limit).reverse();
    const start = window.length ? window[0].stream! : m.stream;
    const state = since ? new Map() : await this.stateBefore(m.roomId, start);
    return {
      timeline: { events: window.map((e) => toClientEvent(e, viewer, false)) as unknown as JsonObject[], limited: raw.length > limit, prev_batch: paginationToken(start) },
      state: { events: (await hs.store.rooms.loadState(state)).map((e) => toClientEvent(e, viewer, false)) as unknown as JsonObject[] },
      account_data: { events: [] },
    };
  }

  /**
   * Unread counts: notifying events from others after the user's latest read receipt. `recent`: events
   * of the room already read, newest first, the newest at or before `upTo`, holding every event of the
   * room in (completeFrom, upTo]; used instead of a scan when they cover it.
   */
  private async unread(roomId: string, userId: string, upTo: number, recent?: { events: StoredEvent[]; completeFrom: number }): Promise<JsonObject> {
    const hs = this.hs;
    let readStream = 0;
    for (const t of ['m.read', 'm.read.private']) {
      for (const thread of ['', 'main']) {
        const r = await hs.store.rooms.receipt(roomId, t, userId, thread);
        if (r) {
          const e = await hs.store.rooms.event(r.eventId);
          if (e?.stream && e.stream > readStream) readStream = e.stream;
        }
      }
    }
    // Bounded scan: counts above this are shown as this many (a full count would cost a read per event).
    // The scan is the newest UNREAD_SCAN events in (readStream, upTo]: `recent` has them when it holds
    // that many after readStream, or every event after readStream.
    const after = recent?.events.filter((e) => e.stream! > readStream);
    // An own event among them settles it too: nothing older than the user's latest own event counts (below),
    // so the events that can count are all in `after` (the usual case right after the user sent something).
    const covered = !!recent && !!after && (after.length >= UNREAD_SCAN || readStream >= recent.completeFrom || after.some((e) => e.sender === userId));
    const events = covered ? after!.slice(0, UNREAD_SCAN) : await hs.store.rooms.timeline(roomId, { from: upTo + 1, to: readStream, dir: 'b', limit: UNREAD_SCAN, shared: true });
    let notification = 0;
    let highlight = 0;
    let ownLatest = 0;
    for (const e of events) if (e.sender === userId) ownLatest = Math.max(ownLatest, e.stream!);
    for (const e of events) {
      if (e.sender === userId || !NOTIFYING.has(e.type) || e.stream! < ownLatest) continue;
      notification++;
      const body = (e.pdu.content as JsonObject)?.body;
      const mentions = (e.pdu.content as JsonObject)?.['m.mentions'] as JsonObject | undefined;
      if ((Array.isArray(mentions?.user_ids) && mentions!.user_ids.includes(userId)) || (typeof body === 'string' && body.includes(userId))) highlight++;
    }
    return { notification_count: notification, highlight_count: highlight };
  }

  private async summary(roomId: string, userId: string): Promise<JsonObject> {
    const hs = this.hs;
    const joined = await hs.store.rooms.membersOfRoom(roomId, 'join');
    const invited = await hs.store.rooms.membersOfRoom(roomId, 'invite');
    const heroes = [...joined, ...invited].map((m) => m.userId).filter((u) => u !== userId).sort().slice(0, 5);
    return { 'm.heroes': heroes, 'm.joined_member_count': joined.length, 'm.invited_member_count': invited.length };
  }

  private async presence(userId: string, since: number, upTo: number, joinedRooms: string[], f: Filter): Promise<JsonObject[]> {
    const rows = (await this.hs.store.userData.presenceSince(since)).filter((r) => r.stream <= upTo);
    if (!rows.length) return [];
    const visible = new Set<string>([userId]);
    for (const r of joinedRooms) for (const m of await this.hs.store.rooms.membersOfRoom(r, 'join')) visible.add(m.userId);
    return rows
      .filter((r) => visible.has(r.userId) && eventMatches({ type: 'm.presence', sender: r.userId }, f.presence))
      .map((r) => ({
        type: 'm.presence',
        sender: r.userId,
        content: {
          presence: r.presence,
          last_active_ago: Math.max(0, this.hs.clock() - r.lastActiveTs),
          currently_active: r.presence === 'online',
          ...(r.statusMsg ? { status_msg: r.statusMsg } : {}),
        },
      }));
  }
}

/** The m.receipt EDU content (spec: "Receipts"): private receipts go only to their owner. */
export function receiptsContent(receipts: ReceiptRecord[], viewer: string): JsonObject | undefined {
  const content: Record<string, Record<string, Record<string, JsonObject>>> = {};
  let any = false;
  for (const r of receipts) {
    if (r.receiptType === 'm.read.private' && r.userId !== viewer) continue;
    const byType = (content[r.eventId] ??= {});
    const byUser = (byType[r.receiptType] ??= {});
    const data: JsonObject = { ts: r.ts };
    if (r.threadId) data.thread_id = r.threadId;
    byUser[r.userId] = data;
    any = true;
  }
  return any ? (content as unknown as JsonObject) : undefined;
}

