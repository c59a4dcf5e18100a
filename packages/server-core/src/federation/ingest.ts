/**
 * Receiving events over federation (spec: server-server API, "Checks performed on receipt of a PDU"):
 *  1. a valid event for the room version (format, size ≤ 65,536 bytes, canonical JSON);
 *  2. a valid signature from the sender's server (known from its name: no key fetch);
 *  3. the content hash matches, else the event is redacted before use;
 *  4. allowed by its auth events (which must themselves be known and accepted), else rejected;
 *  5. allowed by the state before it (resolved from its prev events' states), else rejected;
 *  6. allowed by the current state, else soft-failed (kept in the DAG, not shown, not an extremity).
 * Missing prev events are fetched with get_missing_events, then the state at a remaining gap with
 * /state. A rejected PDU never fails the transaction or anything else.
 */
import { authEventTypes, checkAuth, checkAuthEventsList } from '../kernel/auth/index.ts';
import { decodeBase64, encodeBase64, encodeBase64Url } from '../kernel/base64.ts';
import { canonicalJsonBytes } from '../kernel/canonical-json.ts';
import { ed25519, sha256 } from '../kernel/crypto.ts';
import { signedPart } from '../kernel/signing.ts';
import { checkContentHash, computeEventId, roomIdFromCreateEventId, verifyEventSignature } from '../kernel/events.ts';
import { redactEvent } from '../kernel/redaction.ts';
import { roomVersion, type RoomVersionRules } from '../kernel/room-versions.ts';
import { refId, stateKey as sk, type JsonObject, type PDU, type StateMap } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import { derivedEventFields, type RoomRecord, type StoredEvent } from '../store/records.ts';
import { Mutex } from '../util/async.ts';
import { serverOf } from '../util/ids.ts';
import { toClientEvent } from '../services/client-events.ts';
import { MAX_EVENT_BYTES } from '../services/room-writer.ts';
import { STATE_SNAPSHOT_INTERVAL } from '../store/rooms.ts';
import type { WriteBatch } from '../store/store.ts';
import { kernelPdu, LayeredState, PduCache, recordReplacedState, resolveStates, stageStateGroup } from './state.ts';
import { publicKeyOfServer } from './x-matrix.ts';

export type VerifyResult = { ok: true; eventId: string; pdu: PDU } | { ok: false; error: string; eventId?: string };

/**
 * Steps 1–3: format, signature, hash. Returns the event to use (redacted on a hash mismatch).
 * The reference hash (the event id) and the signature cover the same bytes — the redacted event
 * without `signatures` and `unsigned` — so they are encoded once here (the kernel's `computeEventId` and
 * `verifyEventSignature` each encode them again; they are used only for events carrying an `event_id`).
 */
export async function verifyPdu(raw: unknown, rules: RoomVersionRules, onEventId?: (eventId: string) => void): Promise<VerifyResult> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, error: 'not an object' };
  const pdu = raw as PDU;
  let eventId: string | undefined;
  let signedBytes: Uint8Array | undefined;
  let size: number;
  /** The canonical JSON of the event without `unsigned`, `signatures` and `hashes`: what the content hash covers. */
  let hashedBytes: Uint8Array;
  try {
    // The id first, so that even an oversized event gets its own error in the transaction's answer.
    if (rules.eventIdFormat === 'server' || 'event_id' in pdu) eventId = computeEventId(pdu, rules);
    else {
      signedBytes = canonicalJsonBytes(signedPart(redactEvent(pdu, rules) as unknown as JsonObject));
      const hash = sha256(signedBytes);
      eventId = '$' + (rules.eventIdFormat === 'hash-base64' ? encodeBase64(hash) : encodeBase64Url(hash));
    }
    const { unsigned, signatures, hashes, ...rest } = pdu;
    hashedBytes = canonicalJsonBytes(rest);
    // The whole event's size: what the hash covers plus the three members it leaves out, bounded above
    // (canonical JSON is never longer than JSON.stringify's output, and UTF-8 takes at most 3 bytes per
    // UTF-16 code unit); only events near the limit are measured exactly.
    const bound = hashedBytes.length + 3 * JSON.stringify([hashes, signatures, unsigned]).length + 64;
    size = bound <= MAX_EVENT_BYTES ? bound : canonicalJsonBytes(pdu).length;
  } catch (e) {
    return { ok: false, error: `not canonical JSON: ${(e as Error).message}`, eventId };
  }
  // The id is known before the signature checks (asynchronous): a caller can start its own work on it.
  if (eventId !== undefined) onEventId?.(eventId);
  const bad = (error: string): VerifyResult => ({ ok: false, error, eventId });
  if (size > MAX_EVENT_BYTES) return bad('event larger than 65536 bytes');
  if (typeof pdu.type !== 'string' || typeof pdu.sender !== 'string' || typeof pdu.content !== 'object' || pdu.content === null || Array.isArray(pdu.content)) return bad('missing type, sender or content');
  if (!Number.isSafeInteger(pdu.origin_server_ts) || !Number.isSafeInteger(pdu.depth)) return bad('missing origin_server_ts or depth');
  if (!Array.isArray(pdu.prev_events) || !Array.isArray(pdu.auth_events)) return bad('missing prev_events or auth_events');
  const refsOk = (refs: unknown[]) => refs.every((r) => (rules.eventRefsArePairs ? Array.isArray(r) && typeof r[0] === 'string' : typeof r === 'string'));
  if (!refsOk(pdu.prev_events) || !refsOk(pdu.auth_events)) return bad('malformed prev_events or auth_events');
  if (pdu.prev_events.length > 20 || pdu.auth_events.length > 10) return bad('too many prev_events or auth_events');
  const isCreate = pdu.type === 'm.room.create' && pdu.state_key === '';
  if (!(isCreate && rules.auth.roomIdFromCreateEvent) && typeof pdu.room_id !== 'string') return bad('missing room_id');
  // Signature of the sender's server (spec: "Validating hashes and signatures on received events").
  const server = serverOf(pdu.sender);
  const pub = publicKeyOfServer(server);
  if (!pub) return bad(`cannot verify events of ${server}: not a key-named server`);
  const sigs = (pdu.signatures ?? {})[server];
  let verified = false;
  if (sigs && typeof sigs === 'object' && !Array.isArray(sigs)) {
    for (const keyId of Object.keys(sigs)) {
      if (!keyId.startsWith('ed25519:')) continue;
      if (signedBytes) {
        const sig = (sigs as Record<string, unknown>)[keyId];
        let sigBytes: Uint8Array | undefined;
        try {
          sigBytes = typeof sig === 'string' ? decodeBase64(sig) : undefined;
        } catch {
          sigBytes = undefined;
        }
        if (sigBytes && (await (await ed25519()).verify(pub, signedBytes, sigBytes))) verified = true;
      } else if (await verifyEventSignature(pdu, rules, server, keyId, pub)) verified = true;
      if (verified) break;
    }
  }
  if (!verified) return bad(`no valid signature from ${server}`);
  if (!checkContentHash(pdu, hashedBytes)) return { ok: true, eventId, pdu: redactEvent(pdu, rules) };
  return { ok: true, eventId, pdu };
}

export interface PduOutcome {
  error?: string;
}

export class Ingester {
  readonly cache: PduCache;
  private roomLocks = new Map<string, Mutex>();

  constructor(private readonly hs: Homeserver) {
    this.cache = new PduCache(hs);
  }

  private lockOf(roomId: string): Mutex {
    let m = this.roomLocks.get(roomId);
    if (!m) this.roomLocks.set(roomId, (m = new Mutex()));
    return m;
  }

  /**
   * Checks started for PDUs of a transaction before its X-Matrix header was verified (`verifyEarly`), by the
   * PDU's own object: `receivePdus` takes them up instead of starting its own.
   */
  private early = new WeakMap<object, Promise<VerifyResult | undefined>>();

  /**
   * Start the checks of a received transaction's PDUs while its X-Matrix header is verified: both are mostly
   * ed25519 verifications, which run off the main thread side by side. They read (the room's version, and
   * whether we have each event) and write nothing, so doing them for a request that then fails
   * authentication costs only the work: no more than any server, which anyone may run, can make us do by
   * signing its requests properly.
   */
  verifyEarly(pdus: readonly unknown[]): void {
    for (const raw of pdus.slice(0, 50)) {
      if (typeof raw !== 'object' || raw === null || this.early.has(raw)) continue;
      const roomId = (raw as PDU).room_id;
      if (typeof roomId !== 'string') continue;
      const check = this.hs.store.rooms.room(roomId).then((room) => {
        const rules = room && roomVersion(room.version);
        return rules ? this.verify(raw, rules) : undefined;
      });
      this.early.set(raw, check.catch(() => undefined));
    }
  }

  /** The checks of `raw` under `rules`: those `verifyEarly` started if it could, else new ones. */
  private async checked(raw: unknown, rules: RoomVersionRules): Promise<VerifyResult> {
    const early = typeof raw === 'object' && raw !== null ? this.early.get(raw) : undefined;
    if (early) {
      this.early.delete(raw as object);
      const v = await early;
      if (v) return v;
    }
    return this.verify(raw, rules);
  }

  /** Steps 1–3 for `raw` (`verifyPdu`), starting the lookup of its id (`prefetch`) as soon as the id is known. */
  private verify(raw: unknown, rules: RoomVersionRules): Promise<VerifyResult> {
    const roomId = (raw as PDU | null)?.room_id;
    return verifyPdu(raw, rules, (id) => typeof roomId === 'string' && this.prefetch(id, roomId, rules, raw));
  }

  /**
   * `PUT /send/{txnId}`: every PDU gets its own result; nothing one PDU does can fail another. Rooms are
   * processed side by side; within a room, every PDU's signature and hash checks start at once (the
   * ed25519 work runs off the main thread, overlapping the rest), and the PDUs are accepted one by one
   * in depth order, so that prev events come before their children.
   */
  async receivePdus(origin: string, pdus: unknown[]): Promise<Record<string, PduOutcome>> {
    const results: Record<string, PduOutcome> = {};
    const byRoom = new Map<string, unknown[]>();
    for (const p of pdus) {
      const roomId = typeof (p as PDU)?.room_id === 'string' ? (p as PDU).room_id! : '';
      let l = byRoom.get(roomId);
      if (!l) byRoom.set(roomId, (l = []));
      l.push(p);
    }
    await Promise.all(
      [...byRoom].map(async ([roomId, list]) => {
        try {
          const room = roomId ? await this.hs.store.rooms.room(roomId) : undefined;
          if (!room) {
            for (const raw of list) {
              const id = tryEventId(raw);
              if (id) results[id] = { error: 'unknown room' };
            }
            return;
          }
          const rules = roomVersion(room.version)!;
          // All checks start at once; each PDU is accepted as soon as its own are done (and those before it).
          // (A check never rejects; the catch keeps a surprise from becoming an unhandled rejection.)
          const checks = list.map((raw) => this.checked(raw, rules).catch((e): VerifyResult => (this.hs.log(e), { ok: false, error: 'internal error' })));
          const order = checks.map((v, i) => ({ v, depth: Number((list[i] as PDU)?.depth ?? 0) })).sort((x, y) => x.depth - y.depth);
          for (const { v: pending } of order) {
            const v = await pending;
            let r: { eventId?: string; error?: string };
            if (!v.ok) r = v;
            else {
              r = await this.lockOf(roomId).run(() => this.accept(origin, room.roomId, rules, v.eventId, v.pdu, 0)).catch((e) => {
                if (!this.hs.federation.stopped) this.hs.log(e);
                return { eventId: v.eventId, error: 'internal error' };
              });
            }
            if (r.eventId) results[r.eventId] = r.error ? { error: r.error } : {};
          }
        } catch (e) {
          // (A node shutting down may have its store closed under a transaction in flight.)
          if (!this.hs.federation.stopped) this.hs.log(e);
        }
      }),
    );
    return results;
  }

  /** Receive one PDU of a room we know. */
  async receive(origin: string, roomId: string, raw: unknown, depth = 0): Promise<{ eventId?: string; error?: string }> {
    const room = await this.hs.store.rooms.room(roomId);
    if (!room) return { eventId: tryEventId(raw), error: 'unknown room' };
    const rules = roomVersion(room.version)!;
    const v = await verifyPdu(raw, rules);
    if (!v.ok) return { eventId: v.eventId, error: v.error };
    return this.lockOf(roomId).run(() => this.accept(origin, room.roomId, rules, v.eventId, v.pdu, depth));
  }

  /**
   * `accept` first looks the event up (have we got it already?), unless it is certainly new (`certainlyNew`).
   * For a new event that misses the store's caches, and in the worker that is an IndexedDB round trip (0.2–1
   * ms), so the lookup starts as soon as the id is known, beside the signature checks; `accept` waits for
   * it, then looks up again under the room's lock (an answer from the store's cache now: the store keeps
   * what it read, absent keys too).
   */
  private prefetching = new Map<string, Promise<unknown>>();
  private prefetch(eventId: string, roomId: string, rules: RoomVersionRules, raw: unknown): void {
    if (this.prefetching.has(eventId)) return;
    const p = this.certainlyNew(roomId, rules, raw)
      .then((fresh) => (fresh ? undefined : this.hs.store.rooms.event(eventId)))
      .catch(() => undefined)
      .finally(() => this.prefetching.delete(eventId));
    this.prefetching.set(eventId, p);
  }

  // --- caches: what this ingester wrote or read lately, so a busy room's next events need not read it back ---

  /** State groups by id (groups are immutable). Those this ingester staged, and those it read. */
  private groups = new Map<number, StateMap>();
  /** Delta-chain length of state groups this ingester staged (see `stageStateGroup`). */
  private chains = new Map<number, number>();
  /** The state group after an event, for events whose state is known (that never changes once set). */
  private stateAfterOf = new Map<string, number>();

  private rememberGroup(id: number, state: StateMap, chain?: number): void {
    if (this.groups.size >= 64) this.groups.clear();
    this.groups.set(id, state);
    if (chain !== undefined) {
      if (this.chains.size >= 4096) this.chains.clear();
      this.chains.set(id, chain);
    }
  }
  private rememberStateAfter(eventId: string, group: number): void {
    if (this.stateAfterOf.size >= 50_000) this.stateAfterOf.clear();
    this.stateAfterOf.set(eventId, group);
  }
  /** The state a group holds (from this ingester's cache, else the Store). */
  async stateOfGroup(id: number): Promise<StateMap> {
    const cached = this.groups.get(id);
    if (cached) return cached;
    const state = await this.hs.store.rooms.stateGroup(id);
    this.rememberGroup(id, state);
    return state;
  }
  /** Stage a group `base` + `changes` (keys added or replaced): a delta record, or a snapshot every so often. */
  private async stageDelta(b: WriteBatch, roomId: string, base: number, state: StateMap, changes: [string, string][]): Promise<number> {
    let chain = this.chains.get(base);
    if (chain === undefined) chain = (await this.hs.store.rooms.stateGroupRecord(base))?.chain ?? STATE_SNAPSHOT_INTERVAL;
    const id = b.newStateGroupId();
    if (chain < STATE_SNAPSHOT_INTERVAL && changes.length <= 256) {
      b.put('state_groups', { id, roomId, prev: base, entries: changes, chain: chain + 1 });
      this.rememberGroup(id, state, chain + 1);
    } else {
      b.put('state_groups', { id, roomId, entries: [...state], chain: 0 });
      this.rememberGroup(id, state, 0);
    }
    return id;
  }
  /** Stage a group holding `state`, as a delta over `base` when that is cheap. */
  private async stageFull(b: WriteBatch, roomId: string, state: StateMap, base?: { id: number; state: StateMap }): Promise<number> {
    const id = await stageStateGroup(this.hs, b, roomId, state, base);
    this.rememberGroup(id, state);
    return id;
  }

  /** Auth events as kernel PDUs, from the cache or the Store; undefined for unknown ones; `rejected` if any was. */
  private async authPdusOf(ids: string[]): Promise<{ pdus: PDU[]; missing: number; rejected: boolean }> {
    const pdus: PDU[] = [];
    const miss: string[] = [];
    for (const id of ids) {
      const p = this.cache.peek(id);
      if (p) pdus.push(p);
      else miss.push(id);
    }
    let missing = 0;
    let rejected = false;
    if (miss.length) {
      const got = await this.hs.store.rooms.events(miss);
      for (const id of miss) {
        const e = got.get(id);
        if (!e) missing++;
        else if (e.rejected) rejected = true;
        else {
          const p = kernelPdu(e);
          this.cache.set(id, p);
          pdus.push(p);
        }
      }
    }
    // Keep the event's order of auth events (the structural check does not depend on it, but be exact).
    if (miss.length && !missing && !rejected) {
      const byId = new Map(pdus.map((p) => [p.event_id!, p]));
      return { pdus: ids.map((id) => byId.get(id)!), missing, rejected };
    }
    return { pdus, missing, rejected };
  }

  /** The state group after each prev event whose state is known, and whether any prev was rejected. */
  private async prevStatesOf(prevIds: string[], fresh = false): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const miss: string[] = [];
    for (const id of prevIds) {
      const g = fresh ? undefined : this.stateAfterOf.get(id);
      if (g !== undefined) out.set(id, g);
      else miss.push(id);
    }
    if (miss.length) {
      for (const [id, e] of await this.hs.store.rooms.events(miss)) {
        if (e.stateAfter !== undefined && !e.rejected) {
          out.set(id, e.stateAfter);
          this.rememberStateAfter(id, e.stateAfter);
        }
      }
    }
    return out;
  }

  /**
   * Whether the event is certainly not stored: it is deeper than every event of its room we hold
   * (`Store.storedDepthBound`). Only where event ids are hashes of the event (room versions 3 on), which
   * include its room: an id of room versions 1–2 is its origin's choice, and the same id could be stored
   * under another room.
   */
  private async certainlyNew(roomId: string, rules: RoomVersionRules, raw: unknown): Promise<boolean> {
    const depth = (raw as PDU | null)?.depth;
    if (rules.eventIdFormat === 'server' || typeof depth !== 'number') return false;
    return depth > (await this.hs.store.storedDepthBound(roomId));
  }

  private async accept(origin: string, roomId: string, rules: RoomVersionRules, eventId: string, pdu: PDU, depth: number): Promise<{ eventId: string; error?: string }> {
    const hs = this.hs;
    // (Under the room's lock: no event of the room is being stored by this ingester meanwhile.)
    if (!(await this.certainlyNew(roomId, rules, pdu))) {
      await this.prefetching.get(eventId);
      const existing = await hs.store.rooms.event(eventId);
      if (existing && (existing.stream !== undefined || existing.softFailed)) return { eventId };
      if (existing?.rejected) return { eventId, error: `rejected: ${existing.rejected}` };
    }
    if (pdu.room_id !== roomId) return { eventId, error: 'wrong room' };
    const withId: PDU = { ...pdu, event_id: eventId };

    // 4. Auth events: known (fetched if not), accepted, and allowing the event.
    const authIds = (pdu.auth_events ?? []).map(refId);
    let auth = await this.authPdusOf(authIds);
    if (auth.missing) {
      await this.fetchAuthChain(origin, roomId, rules, eventId);
      auth = await this.authPdusOf(authIds);
      if (auth.missing) return this.reject(roomId, eventId, pdu, 'auth events unavailable', false);
    }
    if (auth.rejected) return this.reject(roomId, eventId, pdu, 'an auth event was rejected');
    const authPdus = auth.pdus;
    const create = await this.createEventOf(roomId, rules, authPdus);
    const structural = checkAuthEventsList(withId, authPdus, rules);
    if (!structural.allowed) return this.reject(roomId, eventId, pdu, structural.reason);
    const byKey = new Map<string, PDU>();
    for (const a of authPdus) if (a.state_key !== undefined) byKey.set(sk(a.type, a.state_key), a);
    if (create) byKey.set(sk('m.room.create', ''), create);
    const v1 = checkAuth(withId, (t, k) => byKey.get(sk(t, k)), rules);
    if (!v1.allowed) return this.reject(roomId, eventId, pdu, v1.reason);

    // Prev events: fill gaps (bounded), then the state before the event.
    const prevIds = [...new Set((pdu.prev_events ?? []).map(refId))];
    let prevs = await this.prevStatesOf(prevIds);
    if (prevs.size < prevIds.length && depth < 3) {
      await this.fetchMissing(origin, roomId, rules, eventId, depth);
      prevs = await this.prevStatesOf(prevIds, true);
      for (const id of prevIds.filter((id) => !prevs.has(id))) await this.fetchStateAt(origin, roomId, rules, id);
      prevs = await this.prevStatesOf(prevIds, true);
    }
    const prevStates: StateMap[] = [];
    for (const id of prevIds) {
      const g = prevs.get(id);
      if (g !== undefined) prevStates.push(await this.stateOfGroup(g));
    }
    if (prevStates.length === 0) return this.reject(roomId, eventId, pdu, 'state before the event is unknown', false);
    const stateBefore = await resolveStates(this.cache, prevStates, rules);

    // 5. Against the state before the event.
    const keys = authEventTypes(withId, rules).concat([['m.room.create', '']]);
    const lookupIn = async (state: StateMap) => {
      const ids: string[] = [];
      for (const [t, k] of keys) {
        const id = state.get(sk(t, k));
        if (id) ids.push(id);
      }
      const look = await this.cache.load(ids, false);
      return (t: string, k: string) => {
        const id = state.get(sk(t, k));
        return id ? look(id) : undefined;
      };
    };
    const v2 = checkAuth(withId, await lookupIn(stateBefore), rules);
    if (!v2.allowed) return this.reject(roomId, eventId, pdu, v2.reason);

    // 6 and commit, under the write lock: the current state may have moved meanwhile.
    return hs.writeLock.run(async () => {
      const room = (await hs.store.rooms.room(roomId))!;
      const current = await this.stateOfGroup(room.stateGroup);
      const softFailed = current !== stateBefore && !checkAuth(withId, await lookupIn(current), rules).allowed;
      await this.persist(room, rules, eventId, pdu, prevIds, stateBefore, prevs, current, softFailed);
      return { eventId };
    });
  }

  private async persist(room: RoomRecord, rules: RoomVersionRules, eventId: string, pdu: PDU, prevIds: string[], stateBefore: StateMap,
    prevs: Map<string, number>, oldCurrent: StateMap, softFailed: boolean): Promise<void> {
    const hs = this.hs;
    const b = hs.store.batch();
    const firstPrevGroup = prevs.get(prevIds[0]);
    // The state before: the prev event's group when there is one prev, else a group for the resolved state.
    let beforeGroup: number;
    if (prevIds.length === 1 && firstPrevGroup !== undefined) beforeGroup = firstPrevGroup;
    else if (stateBefore === oldCurrent) beforeGroup = room.stateGroup;
    else beforeGroup = await this.stageFull(b, room.roomId, stateBefore, firstPrevGroup !== undefined ? { id: firstPrevGroup, state: await this.stateOfGroup(firstPrevGroup) } : undefined);
    let afterGroup = beforeGroup;
    let stateAfter = stateBefore;
    /** The change the event itself makes to the state (none for a message). */
    let change: [string, string] | undefined;
    const stored: StoredEvent = {
      eventId, roomId: room.roomId, pdu, depth: pdu.depth ?? 0, type: pdu.type, sender: pdu.sender, stateBefore: beforeGroup,
    };
    if (pdu.state_key !== undefined) {
      stored.stateKey = pdu.state_key;
      const key = sk(pdu.type, pdu.state_key);
      await recordReplacedState(hs, stored, stateBefore.get(key));
      change = [key, eventId];
      stateAfter = LayeredState.over(stateBefore, [change]);
      afterGroup = await this.stageDelta(b, room.roomId, beforeGroup, stateAfter, [change]);
    }
    stored.stateAfter = afterGroup;
    Object.assign(stored, derivedEventFields(pdu));
    this.cache.set(eventId, { ...pdu, event_id: eventId });

    if (softFailed) {
      // Kept in the DAG (its state is known) but not in the timeline nor an extremity.
      b.put('events', { ...stored, softFailed: true });
      await b.commit();
      this.rememberStateAfter(eventId, afterGroup);
      return;
    }
    const stream = b.nextStream();
    stored.stream = stream;

    // New forward extremities and the current state they resolve to.
    const extremities = room.extremities.filter((id) => !prevIds.includes(id));
    extremities.push(eventId);
    let newCurrent: StateMap;
    let currentGroup: number;
    /** What changed in the current state, when known without comparing whole states. */
    let changes: [string, string][] | undefined;
    if (extremities.length === 1) {
      newCurrent = stateAfter;
      currentGroup = afterGroup;
      // The usual case: the event follows the room's only extremity.
      if (stateBefore === oldCurrent || beforeGroup === room.stateGroup) changes = change ? [change] : [];
    } else {
      const states: StateMap[] = [stateAfter];
      const others = await this.prevStatesOf(extremities.filter((id) => id !== eventId));
      for (const g of new Set(others.values())) states.push(await this.stateOfGroup(g));
      newCurrent = await resolveStates(this.cache, states, rules);
      if (newCurrent === stateAfter) currentGroup = afterGroup;
      else if (newCurrent === oldCurrent) {
        currentGroup = room.stateGroup;
        changes = [];
      } else currentGroup = await this.stageFull(b, room.roomId, newCurrent, { id: room.stateGroup, state: oldCurrent });
    }
    // Current state and memberships: write what changed.
    const write = async (k: string, id: string) => {
      const sep = k.indexOf('\u0000');
      const type = k.slice(0, sep);
      const key = k.slice(sep + 1);
      b.put('current_state', { roomId: room.roomId, type, stateKey: key, eventId: id });
      if (type === 'm.room.member') {
        const ev = id === eventId ? stored : await hs.store.rooms.event(id);
        if (ev?.membership) b.put('memberships', { userId: key, roomId: room.roomId, membership: ev.membership, eventId: id, stream });
      }
    };
    if (changes) for (const [k, id] of changes) await write(k, id);
    else {
      for (const [k, id] of newCurrent) if (oldCurrent.get(k) !== id) await write(k, id);
      for (const k of oldCurrent.keys()) {
        if (newCurrent.has(k)) continue;
        const sep = k.indexOf('\u0000');
        b.delete('current_state', [room.roomId, k.slice(0, sep), k.slice(sep + 1)]);
      }
    }
    b.put('rooms', { ...room, extremities, stateGroup: currentGroup, maxDepth: Math.max(room.maxDepth, stored.depth) });
    if (pdu.type === 'm.room.redaction') await this.applyRedaction(b, stored, rules, newCurrent);
    b.put('events', stored);
    const pos = await b.commit();
    this.rememberStateAfter(eventId, afterGroup);
    hs.notifier.notify(pos);
    // A remote kick, ban or join of one of our users: the peer directory may (un)publish the room; any change
    // of what the directory says about the room is announced.
    if (pdu.type === 'm.room.member' && typeof pdu.state_key === 'string' && hs.isLocal(pdu.state_key)) hs.peerDirectory.membershipChanged(room.roomId);
    if (typeof pdu.state_key === 'string') hs.peerDirectory.roomStateChanged(room.roomId, pdu.type);
  }

  /** Apply a received redaction when its sender may (rooms/v3 "Handling redactions"). */
  private async applyRedaction(b: ReturnType<Homeserver['store']['batch']>, redaction: StoredEvent, rules: RoomVersionRules, state: StateMap): Promise<void> {
    const c = redaction.pdu.content as JsonObject;
    const targetId = (typeof c.redacts === 'string' ? c.redacts : redaction.pdu.redacts) as string | undefined;
    if (!targetId) return;
    const target = await this.hs.store.rooms.event(targetId);
    if (!target || target.roomId !== redaction.roomId || target.type === 'm.room.create') return;
    let allowed = serverOf(target.sender) === serverOf(redaction.sender);
    if (!allowed) {
      const plId = state.get(sk('m.room.power_levels', ''));
      const pl = plId ? await this.hs.store.rooms.event(plId) : undefined;
      const content = (pl?.pdu.content ?? {}) as JsonObject;
      const users = (content.users ?? {}) as Record<string, unknown>;
      allowed = Number(users[redaction.sender] ?? content.users_default ?? 0) >= Number(content.redact ?? 50);
    }
    if (!allowed) return;
    this.cache.forget(targetId);
    const out: StoredEvent = {
      ...target, pdu: redactEvent(target.pdu, rules), redactedBy: redaction.eventId,
      redactedBecause: toClientEvent(redaction, { now: redaction.pdu.origin_server_ts ?? 0 }) as unknown as JsonObject,
    };
    delete out.relatesTo;
    delete out.relType;
    b.put('events', out);
  }

  private async reject(roomId: string, eventId: string, pdu: PDU, reason: string, remember = true): Promise<{ eventId: string; error: string }> {
    if (remember) {
      // Remember the rejection (spec: rejected events are not re-processed and never enter state).
      await this.hs.store.batch().put('events', {
        eventId, roomId, pdu, depth: pdu.depth ?? 0, type: pdu.type, sender: pdu.sender, stateKey: pdu.state_key, rejected: reason,
      } satisfies StoredEvent).commit();
    }
    return { eventId, error: reason };
  }

  /** The room's create event (v12 auth_events leave it out: it is named by the room id). */
  private async createEventOf(roomId: string, rules: RoomVersionRules, authPdus: PDU[]): Promise<PDU | undefined> {
    const listed = authPdus.find((p) => p.type === 'm.room.create' && p.state_key === '');
    if (listed) return listed;
    const cur = await this.hs.store.rooms.stateEvent(roomId, 'm.room.create', '');
    if (cur) return kernelPdu(cur);
    if (rules.auth.roomIdFromCreateEvent) {
      const e = await this.hs.store.rooms.event('$' + roomId.slice(1));
      return e ? kernelPdu(e) : undefined;
    }
    return undefined;
  }

  /** Fetch an event's auth chain from `origin` and store what it lacks as outliers. */
  private async fetchAuthChain(origin: string, roomId: string, rules: RoomVersionRules, eventId: string): Promise<void> {
    try {
      const r = await this.hs.federation.request<{ auth_chain?: unknown[] }>(origin, 'GET', `/_matrix/federation/v1/event_auth/${encodeURIComponent(roomId)}/${encodeURIComponent(eventId)}`);
      await this.storeOutliers(roomId, rules, r.auth_chain ?? []);
    } catch (e) {
      this.hs.log(e);
    }
  }

  /**
   * Store events that are not (yet) in the timeline: auth chains and state from another server.
   * Each is verified and checked against its own auth events; the ones that fail are stored rejected.
   * Returns the ids of the events accepted.
   */
  async storeOutliers(roomId: string, rules: RoomVersionRules, raws: unknown[]): Promise<Set<string>> {
    return new Set((await this.storeOutliersVerified(roomId, rules, raws)).accepted.keys());
  }

  /**
   * `storeOutliers`, answering also with the accepted events (as verified: redacted on a hash mismatch)
   * and each input's event id (undefined where it failed verification), so callers need not verify again.
   */
  async storeOutliersVerified(roomId: string, rules: RoomVersionRules, raws: unknown[]): Promise<{ accepted: Map<string, PDU>; ids: (string | undefined)[] }> {
    const results = await Promise.all(raws.map((r) => verifyPdu(r, rules)));
    const ids = results.map((v) => (v.ok ? v.eventId : undefined));
    const byId = new Map<string, PDU>();
    for (const v of results) {
      if (!v.ok || byId.has(v.eventId)) continue;
      const isCreate = v.pdu.type === 'm.room.create' && v.pdu.state_key === '';
      const inRoom = v.pdu.room_id === roomId || (isCreate && rules.auth.roomIdFromCreateEvent && v.pdu.room_id === undefined && roomIdFromCreateEventId(v.eventId) === roomId);
      if (inRoom) byId.set(v.eventId, v.pdu);
    }
    const accepted = new Map<string, PDU>();
    /** Events known to be accepted, as kernel PDUs: those of this batch as they pass, and stored ones. */
    const known = new Map<string, PDU>();
    const outside = new Set<string>();
    for (const p of byId.values()) for (const a of p.auth_events ?? []) if (!byId.has(refId(a))) outside.add(refId(a));
    for (const id of outside) {
      const p = this.cache.peek(id);
      if (p) (known.set(id, p), outside.delete(id));
    }
    const existing = await this.hs.store.rooms.events([...byId.keys(), ...outside]);
    for (const [id, e] of existing) if (!e.rejected) known.set(id, kernelPdu(e));
    let create: PDU | undefined;
    for (const p of known.values()) if (p.type === 'm.room.create' && p.state_key === '') create = p;
    if (!create) {
      const stored = await this.hs.store.rooms.stateEvent(roomId, 'm.room.create', '');
      if (stored && !stored.rejected) create = kernelPdu(stored);
    }
    const b = this.hs.store.batch();
    // Already stored (and not rejected): kept as they are (never overwrite a timeline event).
    let pending: { eventId: string; pdu: PDU }[] = [];
    for (const [eventId, pdu] of byId) {
      const e = existing.get(eventId);
      if (e && !e.rejected) accepted.set(eventId, pdu);
      else pending.push({ eventId, pdu });
    }
    pending.sort((a, b) => (a.pdu.depth ?? 0) - (b.pdu.depth ?? 0));
    // Events may come in any order: repeat passes until nothing more can be checked.
    for (let pass = 0; pending.length && pass < 50; pass++) {
      const next: typeof pending = [];
      for (const v of pending) {
        const authIds = (v.pdu.auth_events ?? []).map(refId);
        if (authIds.some((id) => !known.has(id))) {
          next.push(v);
          continue;
        }
        const withId = { ...v.pdu, event_id: v.eventId };
        const authPdus = authIds.map((id) => known.get(id)!);
        const byKey = new Map<string, PDU>();
        let authCreate: PDU | undefined;
        for (const a of authPdus) {
          if (a.state_key !== undefined) byKey.set(sk(a.type, a.state_key), a);
          if (a.type === 'm.room.create') authCreate = a;
        }
        const c = authCreate ?? create;
        if (c) byKey.set(sk('m.room.create', ''), c);
        const ok = checkAuthEventsList(withId, authPdus, rules).allowed && checkAuth(withId, (t, k) => byKey.get(sk(t, k)), rules).allowed;
        const stored: StoredEvent = { eventId: v.eventId, roomId, pdu: v.pdu, depth: v.pdu.depth ?? 0, type: v.pdu.type, sender: v.pdu.sender };
        Object.assign(stored, derivedEventFields(v.pdu));
        if (ok) {
          known.set(v.eventId, withId);
          accepted.set(v.eventId, v.pdu);
          this.cache.set(v.eventId, withId);
          if (v.pdu.type === 'm.room.create' && v.pdu.state_key === '') create ??= withId;
        } else stored.rejected = 'not allowed by its auth events';
        b.put('events', stored);
      }
      if (next.length === pending.length) break;
      pending = next;
    }
    if (b.ops.length) await b.commit();
    return { accepted, ids };
  }

  /** Fill a gap before `eventId` with get_missing_events (spec: "Retrieving missing events"). */
  private async fetchMissing(origin: string, roomId: string, rules: RoomVersionRules, eventId: string, depth: number): Promise<void> {
    const room = await this.hs.store.rooms.room(roomId);
    if (!room) return;
    let events: unknown[] = [];
    try {
      const r = await this.hs.federation.request<{ events?: unknown[] }>(origin, 'POST', `/_matrix/federation/v1/get_missing_events/${encodeURIComponent(roomId)}`, {
        earliest_events: room.extremities, latest_events: [eventId], limit: 20, min_depth: 0,
      });
      events = Array.isArray(r.events) ? r.events : [];
    } catch (e) {
      this.hs.log(e);
      return;
    }
    events.sort((a, b) => Number((a as PDU)?.depth ?? 0) - Number((b as PDU)?.depth ?? 0));
    const checks = events.map((raw) => verifyPdu(raw, rules).catch((e): VerifyResult => (this.hs.log(e), { ok: false, error: 'internal error' })));
    for (const check of checks) {
      const v = await check;
      if (!v.ok) continue;
      await this.accept(origin, roomId, rules, v.eventId, v.pdu, depth + 1);
    }
  }

  /** The state at a prev event we cannot reach: ask `origin` for it (`/state`) and record the prev as an outlier with that state. */
  private async fetchStateAt(origin: string, roomId: string, rules: RoomVersionRules, prevId: string): Promise<void> {
    try {
      const [st, ev] = await Promise.all([
        this.hs.federation.request<{ pdus?: unknown[]; auth_chain?: unknown[] }>(origin, 'GET', `/_matrix/federation/v1/state/${encodeURIComponent(roomId)}?event_id=${encodeURIComponent(prevId)}`),
        this.hs.federation.request<{ pdus?: unknown[] }>(origin, 'GET', `/_matrix/federation/v1/event/${encodeURIComponent(prevId)}`),
      ]);
      const statePdus = Array.isArray(st.pdus) ? st.pdus : [];
      const prevRaw = Array.isArray(ev.pdus) ? ev.pdus[0] : undefined;
      const chain = Array.isArray(st.auth_chain) ? st.auth_chain : [];
      const { accepted, ids } = await this.storeOutliersVerified(roomId, rules, [...chain, ...statePdus, ...(prevRaw ? [prevRaw] : [])]);
      const state: StateMap = new Map();
      statePdus.forEach((_, i) => {
        const id = ids[chain.length + i];
        const p = id ? accepted.get(id) : undefined;
        if (id && p && typeof p.state_key === 'string') state.set(sk(p.type, p.state_key), id);
      });
      const prev = await this.hs.store.rooms.event(prevId);
      if (!prev || prev.rejected) return;
      await this.hs.writeLock.run(async () => {
        const b = this.hs.store.batch();
        const before = await stageStateGroup(this.hs, b, roomId, state);
        let after = before;
        if (prev.stateKey !== undefined) after = await stageStateGroup(this.hs, b, roomId, new Map(state).set(sk(prev.type, prev.stateKey), prevId), { id: before, state });
        b.put('events', { ...prev, stateBefore: before, stateAfter: after });
        await b.commit();
      });
    } catch (e) {
      this.hs.log(e);
    }
  }
}

function tryEventId(raw: unknown): string | undefined {
  const p = raw as PDU;
  return typeof p?.event_id === 'string' ? p.event_id : undefined;
}
