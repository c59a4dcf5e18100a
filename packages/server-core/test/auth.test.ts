/**
 * The authorization rules, rule by rule, across room versions 1–12 (spec: rooms/v1 … v12
 * "Authorisation rules"; server-server API "Auth events selection").
 */
import { describe, expect, it } from 'vitest';
import {
  authEventTypes,
  checkAuth,
  checkAuthEventsList,
  creatorsOf,
  isValidUserId,
  parseLevel,
  userPowerLevel,
  type CheckAuthOptions,
  type StateLookup,
} from '../src/kernel/auth/index.ts';
import { eventIdOf } from '../src/kernel/events.ts';
import { ROOM_VERSIONS, type RoomVersionRules } from '../src/kernel/room-versions.ts';
import { stateKey, type AuthResult, type JsonObject, type PDU } from '../src/kernel/types.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures

const ALICE = '@alice:a.example'; // the creator
const BOB = '@bob:b.example';
const CAROL = '@carol:c.example';
const DAVE = '@dave:d.example';
const ALL_VERSIONS = Object.keys(ROOM_VERSIONS);
const rulesOf = (v: string): RoomVersionRules => ROOM_VERSIONS[v];
const versionsWhere = (pred: (r: RoomVersionRules) => boolean) => ALL_VERSIONS.filter((v) => pred(rulesOf(v)));
const domain = (id: string) => id.slice(id.indexOf(':') + 1);

interface RoomOptions {
  creator?: string;
  createContent?: JsonObject;
}

/** A room's state as a map, with builders for events in it. Nothing here is validated. */
class Room {
  readonly rules: RoomVersionRules;
  readonly roomId: string;
  readonly create: PDU;
  readonly states = new Map<string, PDU>();
  private n = 0;

  constructor(
    readonly version: string,
    opts: RoomOptions = {},
  ) {
    this.rules = rulesOf(version);
    const creator = opts.creator ?? ALICE;
    const content: JsonObject = { room_version: version };
    if (!this.rules.auth.useRoomCreateSender) content.creator = creator;
    Object.assign(content, opts.createContent ?? {});
    const v12 = this.rules.auth.roomIdFromCreateEvent;
    const createId = v12 ? '$CreateEventHash' : `$create:${domain(creator)}`;
    this.create = { event_id: createId, type: 'm.room.create', state_key: '', sender: creator, content, prev_events: [], auth_events: [] };
    if (!v12) this.create.room_id = `!room:${domain(creator)}`;
    this.roomId = v12 ? '!' + createId.slice(1) : this.create.room_id!;
    this.put(this.create);
  }

  lookup: StateLookup = (type, key) => this.states.get(stateKey(type, key));

  put(e: PDU): this {
    this.states.set(stateKey(e.type, e.state_key!), e);
    return this;
  }

  event(type: string, sender: string, content: JsonObject, extra: Partial<PDU> = {}): PDU {
    return { event_id: `$e${++this.n}:${domain(sender)}`, room_id: this.roomId, type, sender, content, prev_events: ['$prev:x.example'], ...extra };
  }

  stateEvent(type: string, key: string, sender: string, content: JsonObject, extra: Partial<PDU> = {}): PDU {
    return this.event(type, sender, content, { state_key: key, ...extra });
  }

  memberEvent(target: string, membership: string, sender = target, content: JsonObject = {}, extra: Partial<PDU> = {}): PDU {
    return this.stateEvent('m.room.member', target, sender, { membership, ...content }, extra);
  }

  member(target: string, membership: string, sender = target): this {
    return this.put(this.memberEvent(target, membership, sender));
  }

  powerLevels(content: JsonObject): this {
    return this.put(this.stateEvent('m.room.power_levels', '', ALICE, content));
  }

  joinRule(rule: string, extra: JsonObject = {}): this {
    return this.put(this.stateEvent('m.room.join_rules', '', ALICE, { join_rule: rule, ...extra }));
  }

  check(e: PDU, options?: CheckAuthOptions): AuthResult {
    return checkAuth(e, this.lookup, this.rules, options);
  }
}

/**
 * A room with alice (creator) and bob joined; power levels give bob 50 (and alice 100 before
 * v12, where she is infinite anyway); join rule invite.
 */
function standardRoom(version: string, opts: RoomOptions & { users?: JsonObject; pl?: JsonObject } = {}): Room {
  const room = new Room(version, opts);
  room.member(opts.creator ?? ALICE, 'join');
  const users: JsonObject = opts.users ?? (room.rules.auth.privilegedCreators ? { [BOB]: 50 } : { [ALICE]: 100, [BOB]: 50 });
  room.powerLevels({ users, ...(opts.pl ?? {}) });
  room.joinRule('invite');
  room.member(BOB, 'join');
  return room;
}

function expectAllowed(r: AuthResult): void {
  expect(r, r.allowed ? '' : r.reason).toEqual({ allowed: true });
}
function expectRejected(r: AuthResult, reason?: RegExp): void {
  expect(r.allowed).toBe(false);
  if (!r.allowed) {
    expect(r.reason).not.toMatch(/internal error/);
    if (reason) expect(r.reason).toMatch(reason);
  }
}

// ---------------------------------------------------------------------------------------------
// Rule 1: m.room.create

describe('rule 1: m.room.create', () => {
  it.each(ALL_VERSIONS)('v%s: a well-formed create event is allowed', (v) => {
    const room = new Room(v);
    expectAllowed(checkAuth(room.create, room.lookup, room.rules));
  });

  it.each(ALL_VERSIONS)('v%s: prev_events reject', (v) => {
    const room = new Room(v);
    expectRejected(checkAuth({ ...room.create, prev_events: ['$x:a.example'] }, room.lookup, room.rules), /prev_events/);
    expectRejected(checkAuth({ ...room.create, prev_events: 'nope' as never }, room.lookup, room.rules), /prev_events/);
  });

  it.each(versionsWhere((r) => !r.auth.roomIdFromCreateEvent))("v%s: room_id's domain must match the sender's", (v) => {
    const room = new Room(v);
    expectRejected(checkAuth({ ...room.create, room_id: '!room:b.example' }, room.lookup, room.rules), /domain/);
    expectRejected(checkAuth({ ...room.create, room_id: undefined }, room.lookup, room.rules), /domain/);
    expectRejected(checkAuth({ ...room.create, room_id: '!nodomain' }, room.lookup, room.rules), /domain/);
  });

  it('v12: a create event must not have a room_id (and needs no domain)', () => {
    const room = new Room('12');
    expect(room.create.room_id).toBeUndefined();
    expectAllowed(checkAuth(room.create, room.lookup, room.rules));
    expectRejected(checkAuth({ ...room.create, room_id: '!room:a.example' }, room.lookup, room.rules), /room_id/);
  });

  it.each(ALL_VERSIONS)('v%s: room_version must be recognised when present', (v) => {
    const room = new Room(v);
    const base = room.create;
    expectRejected(checkAuth({ ...base, content: { ...base.content, room_version: '99' } }, room.lookup, room.rules), /room_version/);
    expectRejected(checkAuth({ ...base, content: { ...base.content, room_version: 1 } }, room.lookup, room.rules), /room_version/);
    const { room_version: _rv, ...noVersion } = base.content;
    expectAllowed(checkAuth({ ...base, content: noVersion }, room.lookup, room.rules));
    expectAllowed(checkAuth({ ...base, content: { ...base.content, room_version: '5' } }, room.lookup, room.rules));
  });

  it('creator property: required v1–v10, not from v11', () => {
    for (const v of ALL_VERSIONS) {
      const room = new Room(v);
      const { creator: _c, ...content } = room.create.content;
      const r = checkAuth({ ...room.create, content }, room.lookup, room.rules);
      if (rulesOf(v).auth.useRoomCreateSender) expectAllowed(r);
      else expectRejected(r, /creator/);
    }
    // Presence is what rule 1.4 asks: any value.
    const room = new Room('10');
    expectAllowed(checkAuth({ ...room.create, content: { creator: ALICE } }, room.lookup, room.rules));
  });

  it('v12: additional_creators must be an array of valid user ids', () => {
    const room = new Room('12');
    const withCreators = (x: JsonObject[string]) => ({ ...room.create, content: { ...room.create.content, additional_creators: x } });
    expectAllowed(checkAuth(withCreators([BOB, CAROL]), room.lookup, room.rules));
    expectAllowed(checkAuth(withCreators([]), room.lookup, room.rules));
    // Historical user ids are accepted like a sender's.
    expectAllowed(checkAuth(withCreators(['@Old User!:example.org:8448']), room.lookup, room.rules));
    for (const bad of [BOB, null, {}, [1], ['bob'], ['@bob'], ['@bob:'], ['@bob:bad host'], ['@bob:host:99999999'], [BOB, 'x']]) {
      expectRejected(checkAuth(withCreators(bad as JsonObject[string]), room.lookup, room.rules), /additional_creators/);
    }
    // v11 has no such rule: the property is ignored.
    const v11 = new Room('11');
    expectAllowed(checkAuth({ ...v11.create, content: { ...v11.create.content, additional_creators: 'garbage' } }, v11.lookup, v11.rules));
  });
});

// ---------------------------------------------------------------------------------------------
// Auth events selection and rule 2 (the auth_events list)

describe('auth events selection', () => {
  it('none for m.room.create', () => {
    for (const v of ALL_VERSIONS) expect(authEventTypes(new Room(v).create, rulesOf(v))).toEqual([]);
  });

  it('create (not in v12), power levels and the sender for a message', () => {
    const msg = new Room('11').event('m.room.message', BOB, { body: 'hi' });
    expect(authEventTypes(msg, rulesOf('11'))).toEqual([
      ['m.room.create', ''],
      ['m.room.power_levels', ''],
      ['m.room.member', BOB],
    ]);
    expect(authEventTypes(msg, rulesOf('12'))).toEqual([
      ['m.room.power_levels', ''],
      ['m.room.member', BOB],
    ]);
  });

  it('member events: target, join rules for join/invite/knock, 3pid token, authorising user (v8+)', () => {
    const room = new Room('10');
    const sorted = (x: Array<[string, string]>) => x.map((p) => p.join('|')).sort();
    const join = room.memberEvent(BOB, 'join', BOB, { join_authorised_via_users_server: CAROL });
    expect(sorted(authEventTypes(join, rulesOf('10')))).toEqual(
      sorted([
        ['m.room.create', ''],
        ['m.room.power_levels', ''],
        ['m.room.member', BOB],
        ['m.room.join_rules', ''],
        ['m.room.member', CAROL],
      ]),
    );
    // Before restricted rooms (v8) the authorising user is not selected.
    expect(sorted(authEventTypes(join, rulesOf('7')))).not.toContain(`m.room.member|${CAROL}`);
    const invite = room.memberEvent(CAROL, 'invite', BOB, { third_party_invite: { signed: { mxid: CAROL, token: 'tok' } } });
    expect(sorted(authEventTypes(invite, rulesOf('10')))).toEqual(
      sorted([
        ['m.room.create', ''],
        ['m.room.power_levels', ''],
        ['m.room.member', BOB],
        ['m.room.member', CAROL],
        ['m.room.join_rules', ''],
        ['m.room.third_party_invite', 'tok'],
      ]),
    );
    const knock = room.memberEvent(CAROL, 'knock');
    expect(sorted(authEventTypes(knock, rulesOf('10')))).toContain('m.room.join_rules|');
    const leave = room.memberEvent(CAROL, 'leave', BOB);
    expect(sorted(authEventTypes(leave, rulesOf('10')))).toEqual(
      sorted([
        ['m.room.create', ''],
        ['m.room.power_levels', ''],
        ['m.room.member', BOB],
        ['m.room.member', CAROL],
      ]),
    );
    // A join of the sender itself lists the member pair once.
    expect(authEventTypes(room.memberEvent(BOB, 'join'), rulesOf('10')).filter(([t]) => t === 'm.room.member')).toHaveLength(1);
  });

  it('malformed content selects no extra pairs and does not throw', () => {
    const room = new Room('10');
    const weird = room.memberEvent(CAROL, 'invite', BOB, { third_party_invite: 5, join_authorised_via_users_server: 7 });
    expect(authEventTypes(weird, rulesOf('10')).map((p) => p[0])).not.toContain('m.room.third_party_invite');
    expect(authEventTypes({ ...weird, content: null as never }, rulesOf('10')).length).toBe(4); // create, power levels, sender, target
  });
});

describe('rule 2: the auth_events list', () => {
  function listFor(v: string) {
    const room = standardRoom(v);
    const msg = room.event('m.room.message', BOB, { body: 'hi' });
    const pl = room.lookup('m.room.power_levels', '')!;
    const bob = room.lookup('m.room.member', BOB)!;
    return { room, msg, pl, bob };
  }

  it.each(versionsWhere((r) => !r.auth.roomIdFromCreateEvent))('v%s: the selected events pass; each structural fault rejects', (v) => {
    const { room, msg, pl, bob } = listFor(v);
    const rules = rulesOf(v);
    expectAllowed(checkAuthEventsList(msg, [room.create, pl, bob], rules));
    expectAllowed(checkAuthEventsList(msg, [room.create, bob], rules)); // a subset is fine
    // 2.1 duplicates
    expectRejected(checkAuthEventsList(msg, [room.create, pl, bob, { ...bob, event_id: '$other' }], rules), /duplicate/);
    // 2.2 not selected
    const name = room.stateEvent('m.room.name', '', ALICE, { name: 'x' });
    expectRejected(checkAuthEventsList(msg, [room.create, pl, bob, name], rules), /not selected/);
    expectRejected(checkAuthEventsList(msg, [room.create, room.lookup('m.room.join_rules', '')!], rules), /not selected/);
    // 2.4 no create
    expectRejected(checkAuthEventsList(msg, [pl, bob], rules), /no m.room.create/);
    // 2.5 another room
    expectRejected(checkAuthEventsList(msg, [room.create, { ...pl, room_id: '!other:a.example' }], rules), /another room/);
    // non-state entries
    expectRejected(checkAuthEventsList(msg, [room.create, { ...bob, state_key: undefined }], rules), /not a state event/);
  });

  it('v12: the create event must not be listed, and need not be', () => {
    const { room, msg, pl, bob } = listFor('12');
    const rules = rulesOf('12');
    expectAllowed(checkAuthEventsList(msg, [pl, bob], rules));
    expectAllowed(checkAuthEventsList(msg, [], rules));
    expectRejected(checkAuthEventsList(msg, [room.create, pl, bob], rules), /m.room.create must not be listed/);
    expectRejected(checkAuthEventsList(msg, [pl, { ...bob, room_id: '!elsewhere' }], rules), /another room/);
  });

  it('2.3: rejected entries reject when the caller says which are rejected', () => {
    const { room, msg, pl, bob } = listFor('10');
    expectRejected(checkAuthEventsList(msg, [room.create, pl, bob], rulesOf('10'), { isRejected: (e) => e === pl }), /was rejected/);
    expectAllowed(checkAuthEventsList(msg, [room.create, pl, bob], rulesOf('10'), { isRejected: () => false }));
  });

  it('a create event is decided by rule 1 alone', () => {
    const room = new Room('10');
    expectAllowed(checkAuthEventsList(room.create, [], rulesOf('10')));
  });

  it('the authorising user of a restricted join is selectable from v8 only', () => {
    for (const v of ['7', '8']) {
      const room = standardRoom(v);
      const join = room.memberEvent(CAROL, 'join', CAROL, { join_authorised_via_users_server: BOB });
      const list = [room.create, room.lookup('m.room.join_rules', '')!, room.lookup('m.room.member', BOB)!];
      const r = checkAuthEventsList(join, list, rulesOf(v));
      if (v === '8') expectAllowed(r);
      else expectRejected(r, /not selected/);
    }
  });

  it('checkAuth needs the create event from the lookup', () => {
    for (const v of ALL_VERSIONS) {
      const room = standardRoom(v);
      const msg = room.event('m.room.message', BOB, {});
      expectRejected(checkAuth(msg, (t, k) => (t === 'm.room.create' ? undefined : room.lookup(t, k)), room.rules), /no m.room.create/);
    }
  });

  it('pre-v12: the create event in the state must be of the event\'s room', () => {
    const room = standardRoom('11');
    expectRejected(room.check(room.event('m.room.message', BOB, {}, { room_id: '!other:a.example' })), /another room/);
  });
});

describe('v12 rule 2: the room id is the create event id', () => {
  it('room_id must be the create event id with ! for $', () => {
    const room = standardRoom('12');
    expectAllowed(room.check(room.event('m.room.message', BOB, {})));
    expectRejected(room.check(room.event('m.room.message', BOB, {}, { room_id: '!SomethingElse' })), /create event id/);
    expectRejected(room.check(room.event('m.room.message', BOB, {}, { room_id: undefined })), /create event id/);
  });

  it('the create event id is computed from its reference hash when not given', () => {
    const rules = rulesOf('12');
    const create: PDU = { type: 'm.room.create', state_key: '', sender: ALICE, content: { room_version: '12' }, prev_events: [], auth_events: [], depth: 1, origin_server_ts: 1 };
    const roomId = '!' + eventIdOf(create, rules).slice(1);
    const state = new Map<string, PDU>([[stateKey('m.room.create', ''), create]]);
    const lookup: StateLookup = (t, k) => state.get(stateKey(t, k));
    const join: PDU = { type: 'm.room.member', state_key: ALICE, sender: ALICE, room_id: roomId, content: { membership: 'join' }, prev_events: [eventIdOf(create, rules)] };
    expectAllowed(checkAuth(join, lookup, rules));
    expectRejected(checkAuth({ ...join, room_id: '!wrong' }, lookup, rules), /create event id/);
  });
});

// ---------------------------------------------------------------------------------------------
// Rule 3: m.federate

describe('rule 3: m.federate', () => {
  it.each(ALL_VERSIONS)('v%s: m.federate false keeps other servers out', (v) => {
    const room = new Room(v, { createContent: { 'm.federate': false } });
    room.member(ALICE, 'join').joinRule('public');
    expectRejected(room.check(room.memberEvent(BOB, 'join')), /m.federate/);
    expectAllowed(room.check(room.memberEvent('@alice2:a.example', 'join')));
  });

  it('m.federate true or absent lets them in', () => {
    for (const federate of [true, undefined]) {
      const room = new Room('10', { createContent: federate === undefined ? {} : { 'm.federate': federate } });
      room.member(ALICE, 'join').joinRule('public');
      expectAllowed(room.check(room.memberEvent(BOB, 'join')));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Rule 4 (v1–v5): m.room.aliases

describe('rule 4: m.room.aliases special case (v1–v5)', () => {
  it.each(ALL_VERSIONS)('v%s', (v) => {
    const room = standardRoom(v);
    // Carol is not in the room and has no power; only her domain counts in v1–v5.
    const aliases = room.stateEvent('m.room.aliases', 'c.example', CAROL, { aliases: ['#x:c.example'] });
    if (rulesOf(v).auth.specialCaseAliases) {
      expectAllowed(room.check(aliases));
      expectRejected(room.check({ ...aliases, state_key: 'a.example' }), /aliases/);
      expectRejected(room.check({ ...aliases, state_key: undefined }), /aliases: no state_key/);
    } else {
      // From v6 an ordinary state event: sender must be joined and have state_default.
      expectRejected(room.check(aliases), /not joined/);
      expectAllowed(room.check(room.stateEvent('m.room.aliases', 'b.example', BOB, { aliases: [] })));
      room.member(DAVE, 'join'); // level 0 < state_default 50
      expectRejected(room.check(room.stateEvent('m.room.aliases', 'd.example', DAVE, { aliases: [] })), /too low/);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Rule 5: m.room.member

describe('rule 5: m.room.member basics', () => {
  it.each(ALL_VERSIONS)('v%s: no state_key or no membership rejects; unknown membership rejects', (v) => {
    const room = standardRoom(v);
    room.joinRule('public');
    expectAllowed(room.check(room.memberEvent(CAROL, 'join')));
    expectRejected(room.check({ ...room.memberEvent(CAROL, 'join'), state_key: undefined }), /no state_key/);
    expectRejected(room.check(room.stateEvent('m.room.member', CAROL, CAROL, { displayname: 'c' })), /no membership/);
    expectRejected(room.check(room.memberEvent(CAROL, 'dance')), /unknown membership/);
    expectRejected(room.check(room.stateEvent('m.room.member', CAROL, CAROL, { membership: 5 })), /unknown membership/);
    expectRejected(room.check(room.stateEvent('m.room.member', CAROL, CAROL, { membership: null })), /unknown membership/);
  });
});

describe('rule 5.2: join', () => {
  it.each(ALL_VERSIONS)('v%s: the creator joins right after create', (v) => {
    const room = new Room(v);
    const join = room.memberEvent(ALICE, 'join', ALICE, {}, { prev_events: [room.rules.eventRefsArePairs ? [room.create.event_id!, {}] : room.create.event_id!] });
    expectAllowed(room.check(join));
    // Someone else cannot (no join rules event → invite, and they are not invited).
    expectRejected(room.check({ ...join, state_key: BOB, sender: BOB }), /join rule/);
    // The prev event must be the create event, and the only one.
    expectRejected(room.check({ ...join, prev_events: ['$notcreate:a.example'] }));
    expectRejected(room.check({ ...join, prev_events: [room.create.event_id!, '$other:a.example'] }));
  });

  it('the creator is content.creator before v11 and the create sender from v11', () => {
    for (const v of ['10', '11', '12']) {
      // content.creator names carol, but alice sent the create event.
      const room = new Room(v, { createContent: { creator: CAROL } });
      const first = (user: string) => room.memberEvent(user, 'join', user, {}, { prev_events: [room.create.event_id!] });
      if (rulesOf(v).auth.useRoomCreateSender) {
        expectAllowed(room.check(first(ALICE)));
        expectRejected(room.check(first(CAROL)));
      } else {
        expectAllowed(room.check(first(CAROL)));
        expectRejected(room.check(first(ALICE)));
      }
    }
  });

  it('v12: additional creators do not get the first-join shortcut', () => {
    const room = new Room('12', { createContent: { additional_creators: [BOB] } });
    expectRejected(room.check(room.memberEvent(BOB, 'join', BOB, {}, { prev_events: [room.create.event_id!] })));
  });

  it.each(ALL_VERSIONS)('v%s: sender must be the state_key; banned users cannot join', (v) => {
    const room = standardRoom(v);
    room.joinRule('public');
    expectRejected(room.check(room.memberEvent(CAROL, 'join', BOB)), /sender does not match/);
    room.member(CAROL, 'ban', ALICE);
    expectRejected(room.check(room.memberEvent(CAROL, 'join')), /banned/);
  });

  it.each(ALL_VERSIONS)('v%s: public rooms admit anyone; invite rooms the invited and joined', (v) => {
    const room = standardRoom(v);
    room.joinRule('public');
    expectAllowed(room.check(room.memberEvent(CAROL, 'join')));
    room.joinRule('invite');
    expectRejected(room.check(room.memberEvent(CAROL, 'join')), /not invited/);
    room.member(CAROL, 'invite', BOB);
    expectAllowed(room.check(room.memberEvent(CAROL, 'join')));
    expectAllowed(room.check(room.memberEvent(BOB, 'join'))); // profile change of a joined member
    room.member(CAROL, 'leave');
    expectRejected(room.check(room.memberEvent(CAROL, 'join')));
  });

  it('no join rules event counts as invite; an unknown join rule rejects', () => {
    const room = new Room('10');
    room.member(ALICE, 'join');
    expectRejected(room.check(room.memberEvent(CAROL, 'join')));
    room.member(CAROL, 'invite', ALICE);
    expectAllowed(room.check(room.memberEvent(CAROL, 'join')));
    room.joinRule('private');
    expectRejected(room.check(room.memberEvent(CAROL, 'join')), /does not admit/);
    room.put(room.stateEvent('m.room.join_rules', '', ALICE, { join_rule: 7 }));
    expectRejected(room.check(room.memberEvent(CAROL, 'join')));
  });

  it('knock join rule admits invited users from v7 only', () => {
    for (const v of ['6', '7']) {
      const room = standardRoom(v);
      room.joinRule('knock');
      room.member(CAROL, 'invite', BOB);
      const r = room.check(room.memberEvent(CAROL, 'join'));
      if (v === '7') expectAllowed(r);
      else expectRejected(r, /does not admit/);
      // Uninvited: rejected either way.
      expectRejected(room.check(room.memberEvent(DAVE, 'join')));
    }
  });
});

describe('rule 5.2: restricted joins (v8+) and knock_restricted (v10+)', () => {
  const SIGNED = (server: string) => ({ signatures: { [server]: { 'ed25519:1': 'sig' }, 'c.example': { 'ed25519:1': 'sig' } } });

  function restrictedRoom(v: string, rule = 'restricted') {
    const room = standardRoom(v);
    room.joinRule(rule, { allow: [{ type: 'm.room_membership', room_id: '!space:a.example' }] });
    return room;
  }

  it('restricted is unknown before v8', () => {
    const room = restrictedRoom('7');
    expectRejected(room.check(room.memberEvent(CAROL, 'join', CAROL, { join_authorised_via_users_server: BOB }, SIGNED('b.example'))), /does not admit/);
  });

  it.each(versionsWhere((r) => r.auth.restrictedJoinRule))('v%s: restricted', (v) => {
    const room = restrictedRoom(v);
    const join = (via: string | undefined, extra: Partial<PDU> = SIGNED(via ? domain(via) : 'x')) =>
      room.memberEvent(CAROL, 'join', CAROL, via === undefined ? {} : { join_authorised_via_users_server: via }, extra);
    // Authorised by bob: joined, power 50 ≥ invite 0, and his server signed.
    expectAllowed(room.check(join(BOB)));
    // No authorising user and not invited.
    expectRejected(room.check(join(undefined)), /no join_authorised_via_users_server/);
    // Authorising user not joined.
    expectRejected(room.check(join(DAVE)), /not joined/);
    // Authorising user cannot invite.
    room.powerLevels({ ...room.lookup('m.room.power_levels', '')!.content, invite: 60 });
    expectRejected(room.check(join(BOB)), /cannot invite/);
    // ... unless invited or already joined.
    room.member(CAROL, 'invite', ALICE);
    expectAllowed(room.check(join(undefined)));
  });

  it.each(versionsWhere((r) => r.auth.restrictedJoinRule))('v%s: join_authorised_via_users_server must be signed by that server', (v) => {
    const room = restrictedRoom(v);
    const content = { join_authorised_via_users_server: BOB };
    expectRejected(room.check(room.memberEvent(CAROL, 'join', CAROL, content, { signatures: { 'c.example': { 'ed25519:1': 's' } } })), /not signed by b.example/);
    expectRejected(room.check(room.memberEvent(CAROL, 'join', CAROL, content, {})), /not signed/);
    expectRejected(room.check(room.memberEvent(CAROL, 'join', CAROL, { join_authorised_via_users_server: 'bob' }, SIGNED('b.example'))), /not a user id/);
    // The hook replaces the structural check.
    const join = room.memberEvent(CAROL, 'join', CAROL, content, SIGNED('b.example'));
    expectRejected(room.check(join, { hasServerSignature: () => false }), /not signed/);
    expectAllowed(room.check(room.memberEvent(CAROL, 'join', CAROL, content, {}), { hasServerSignature: (_e, s) => s === 'b.example' }));
    // The rule is about the key's presence, whatever the membership (here: a public join).
    room.joinRule('public');
    expectRejected(room.check(room.memberEvent(CAROL, 'join', CAROL, content, {})), /not signed/);
  });

  it('the key is ignored before v8', () => {
    const room = standardRoom('7');
    room.joinRule('public');
    expectAllowed(room.check(room.memberEvent(CAROL, 'join', CAROL, { join_authorised_via_users_server: 'garbage' })));
  });

  it('knock_restricted: unknown before v10, restricted-or-knock from v10', () => {
    for (const v of ['9', '10', '11', '12']) {
      const room = restrictedRoom(v, 'knock_restricted');
      const join = room.memberEvent(CAROL, 'join', CAROL, { join_authorised_via_users_server: BOB }, SIGNED('b.example'));
      const knock = room.memberEvent(DAVE, 'knock');
      if (rulesOf(v).auth.knockRestrictedJoinRule) {
        expectAllowed(room.check(join));
        expectAllowed(room.check(knock));
        expectRejected(room.check(room.memberEvent(DAVE, 'join')), /no join_authorised/);
      } else {
        expectRejected(room.check(join), /does not admit/);
        expectRejected(room.check(knock), /does not allow knocking/);
      }
    }
  });

  it('v12: a creator not in power levels can authorise a restricted join', () => {
    const room = restrictedRoom('12');
    room.powerLevels({ users: { [BOB]: 50 }, invite: 100 });
    const join = room.memberEvent(CAROL, 'join', CAROL, { join_authorised_via_users_server: ALICE }, SIGNED('a.example'));
    expectAllowed(room.check(join));
    expectRejected(room.check(room.memberEvent(CAROL, 'join', CAROL, { join_authorised_via_users_server: BOB }, SIGNED('b.example'))), /cannot invite/);
  });
});

describe('rule 5.3: invite', () => {
  it.each(ALL_VERSIONS)('v%s: ordinary invites', (v) => {
    const room = standardRoom(v);
    expectAllowed(room.check(room.memberEvent(CAROL, 'invite', BOB)));
    expectRejected(room.check(room.memberEvent(CAROL, 'invite', DAVE)), /sender is not joined/);
    room.member(DAVE, 'invite', ALICE);
    expectRejected(room.check(room.memberEvent(CAROL, 'invite', DAVE)), /sender is not joined/);
    expectRejected(room.check(room.memberEvent(ALICE, 'invite', BOB)), /target is join/);
    room.member(CAROL, 'ban', ALICE);
    expectRejected(room.check(room.memberEvent(CAROL, 'invite', BOB)), /target is ban/);
    room.member(CAROL, 'leave', ALICE);
    room.powerLevels({ ...room.lookup('m.room.power_levels', '')!.content, invite: 51 });
    expectRejected(room.check(room.memberEvent(CAROL, 'invite', BOB)), /invite level/);
    expectAllowed(room.check(room.memberEvent(CAROL, 'invite', ALICE)));
  });

  describe('third_party_invite', () => {
    const signed = (over: JsonObject = {}): JsonObject => ({ mxid: CAROL, token: 'tok', signatures: { 'id.example': { 'ed25519:0': 'SIG' } }, ...over });
    function tpRoom(v = '10', tpContent: JsonObject = { display_name: 'c…', key_validity_url: 'https://id.example/v', public_key: 'PUBKEY' }) {
      const room = standardRoom(v);
      room.put(room.stateEvent('m.room.third_party_invite', 'tok', BOB, tpContent));
      return room;
    }
    const invite = (room: Room, s: JsonObject | undefined, sender = BOB, target = CAROL) =>
      room.memberEvent(target, 'invite', sender, { third_party_invite: s === undefined ? { display_name: 'x' } : { display_name: 'x', signed: s } });

    it.each(ALL_VERSIONS)('v%s: a matching third party invite is allowed', (v) => {
      const room = tpRoom(v);
      expectAllowed(room.check(invite(room, signed())));
    });

    it('each sub-rule rejects', () => {
      const room = tpRoom();
      expectRejected(room.check(invite(room, undefined)), /no signed/);
      expectRejected(room.check(room.memberEvent(CAROL, 'invite', BOB, { third_party_invite: 'x' })), /no signed/);
      expectRejected(room.check(invite(room, { token: 'tok', signatures: {} })), /mxid or token/);
      expectRejected(room.check(invite(room, { mxid: CAROL })), /mxid or token/);
      expectRejected(room.check(invite(room, signed({ mxid: DAVE }))), /mxid does not match/);
      expectRejected(room.check(invite(room, signed({ token: 'other' }))), /no m.room.third_party_invite/);
      expectRejected(room.check(invite(room, signed({ token: 5 }))), /no m.room.third_party_invite/);
      expectRejected(room.check(invite(room, signed(), ALICE)), /sender does not match/);
      expectRejected(room.check(invite(room, signed({ signatures: {} }))), /no signature/);
      expectRejected(room.check(invite(room, signed({ signatures: 'x' }))), /no signature/);
      room.member(CAROL, 'ban', ALICE);
      expectRejected(room.check(invite(room, signed())), /target is banned/);
    });

    it('the sender need not be joined or have invite power (the 3pid branch decides alone)', () => {
      const room = tpRoom();
      room.member(BOB, 'leave');
      room.powerLevels({ users: {}, invite: 100 });
      expectAllowed(room.check(invite(room, signed())));
    });

    it('public keys come from public_key or public_keys; a revoked invite has none', () => {
      const many = tpRoom('10', { public_keys: [{ public_key: 'K1' }, { public_key: 'K2', key_validity_url: 'https://x' }] });
      expectAllowed(many.check(invite(many, signed())));
      const revoked = tpRoom('10', {});
      expectRejected(revoked.check(invite(revoked, signed())), /no signature in signed matches/);
    });

    it('the verifier hook decides which keys match', () => {
      const room = tpRoom('10', { public_key: 'K0', public_keys: [{ public_key: 'K1' }] });
      const verifyWith = (good: string) => ({ verifyThirdPartyInvite: (_s: JsonObject, k: string) => k === good });
      expectAllowed(room.check(invite(room, signed()), verifyWith('K1')));
      expectAllowed(room.check(invite(room, signed()), verifyWith('K0')));
      expectRejected(room.check(invite(room, signed()), verifyWith('K9')), /no signature in signed matches/);
    });
  });
});

describe('rule 5.4: leave', () => {
  it.each(ALL_VERSIONS)('v%s: leaving oneself', (v) => {
    const room = standardRoom(v);
    expectAllowed(room.check(room.memberEvent(BOB, 'leave')));
    room.member(CAROL, 'invite', BOB);
    expectAllowed(room.check(room.memberEvent(CAROL, 'leave'))); // rejecting an invite
    expectRejected(room.check(room.memberEvent(DAVE, 'leave')), /not invited or joined/);
    room.member(DAVE, 'ban', ALICE);
    expectRejected(room.check(room.memberEvent(DAVE, 'leave')), /not invited or joined/);
  });

  it('retracting a knock: v7+', () => {
    const room = standardRoom('7');
    room.joinRule('knock');
    room.member(CAROL, 'knock');
    expectAllowed(room.check(room.memberEvent(CAROL, 'leave')));
    // In v6 a knock membership (which could not have been accepted) does not count.
    const old = standardRoom('6');
    old.member(CAROL, 'knock');
    expectRejected(old.check(old.memberEvent(CAROL, 'leave')));
  });

  it.each(ALL_VERSIONS)('v%s: kicks and unbans', (v) => {
    const room = standardRoom(v);
    room.member(CAROL, 'join');
    // bob (50) kicks carol (0): kick level 50.
    expectAllowed(room.check(room.memberEvent(CAROL, 'leave', BOB)));
    // carol (0) cannot kick bob.
    expectRejected(room.check(room.memberEvent(BOB, 'leave', CAROL)), /kick/);
    // A non-member cannot kick.
    expectRejected(room.check(room.memberEvent(CAROL, 'leave', DAVE)), /not joined/);
    // Equal levels: no.
    room.powerLevels({ users: { ...(room.rules.auth.privilegedCreators ? {} : { [ALICE]: 100 }), [BOB]: 50, [CAROL]: 50 } });
    expectRejected(room.check(room.memberEvent(CAROL, 'leave', BOB)), /kick/);
    // Unban needs the ban level too.
    room.powerLevels({ users: { ...(room.rules.auth.privilegedCreators ? {} : { [ALICE]: 100 }), [BOB]: 50 }, ban: 60 });
    room.member(CAROL, 'ban', ALICE);
    expectRejected(room.check(room.memberEvent(CAROL, 'leave', BOB)), /ban level/);
    room.powerLevels({ users: { ...(room.rules.auth.privilegedCreators ? {} : { [ALICE]: 100 }), [BOB]: 50 }, ban: 50 });
    expectAllowed(room.check(room.memberEvent(CAROL, 'leave', BOB)));
  });
});

describe('rule 5.5: ban', () => {
  it.each(ALL_VERSIONS)('v%s', (v) => {
    const room = standardRoom(v);
    room.member(CAROL, 'join');
    expectAllowed(room.check(room.memberEvent(CAROL, 'ban', BOB)));
    expectAllowed(room.check(room.memberEvent(DAVE, 'ban', BOB))); // banning a non-member
    expectRejected(room.check(room.memberEvent(BOB, 'ban', CAROL)), /ban/);
    expectRejected(room.check(room.memberEvent(CAROL, 'ban', DAVE)), /not joined/);
    expectRejected(room.check(room.memberEvent(ALICE, 'ban', BOB)), /ban/); // target above sender
    room.powerLevels({ users: { ...(room.rules.auth.privilegedCreators ? {} : { [ALICE]: 100 }), [BOB]: 50 }, ban: 51 });
    expectRejected(room.check(room.memberEvent(CAROL, 'ban', BOB)), /ban/);
  });
});

describe('rule 5.7: knock (v7+)', () => {
  it('unknown membership before v7', () => {
    const room = standardRoom('6');
    room.joinRule('knock');
    expectRejected(room.check(room.memberEvent(CAROL, 'knock')), /unknown membership/);
  });

  it.each(versionsWhere((r) => r.auth.knocking))('v%s', (v) => {
    const room = standardRoom(v);
    room.joinRule('knock');
    expectAllowed(room.check(room.memberEvent(CAROL, 'knock')));
    expectRejected(room.check(room.memberEvent(CAROL, 'knock', BOB)), /sender does not match/);
    expectRejected(room.check(room.memberEvent(BOB, 'knock')), /already join/);
    room.member(CAROL, 'invite', BOB);
    expectRejected(room.check(room.memberEvent(CAROL, 'knock')), /already invite/);
    room.member(CAROL, 'ban', ALICE);
    expectRejected(room.check(room.memberEvent(CAROL, 'knock')), /already ban/);
    room.member(CAROL, 'leave', ALICE);
    expectAllowed(room.check(room.memberEvent(CAROL, 'knock')));
    room.member(CAROL, 'knock');
    expectAllowed(room.check(room.memberEvent(CAROL, 'knock'))); // knocking again
    for (const rule of ['invite', 'public', 'restricted']) {
      room.joinRule(rule);
      expectRejected(room.check(room.memberEvent(DAVE, 'knock')), /does not allow knocking/);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Rules 6–9

describe('rule 6: the sender must be joined', () => {
  it.each(ALL_VERSIONS)('v%s', (v) => {
    const room = standardRoom(v);
    expectAllowed(room.check(room.event('m.room.message', BOB, { body: 'hi' })));
    expectRejected(room.check(room.event('m.room.message', CAROL, { body: 'hi' })), /not joined/);
    room.member(CAROL, 'invite', BOB);
    expectRejected(room.check(room.event('m.room.message', CAROL, { body: 'hi' })), /not joined/);
  });
});

describe('rule 7: m.room.third_party_invite needs the invite level (and nothing else)', () => {
  it.each(ALL_VERSIONS)('v%s', (v) => {
    const room = standardRoom(v, { pl: { invite: 50, events: { 'm.room.third_party_invite': 100 } } });
    room.member(CAROL, 'join');
    const tp = (sender: string) => room.stateEvent('m.room.third_party_invite', 'tok', sender, { public_key: 'k' });
    // bob is at the invite level though below the event's level in `events`.
    expectAllowed(room.check(tp(BOB)));
    expectRejected(room.check(tp(CAROL)), /invite level/);
    expectRejected(room.check(tp(DAVE)), /not joined/);
  });
});

describe('rule 8: the required power level', () => {
  it.each(ALL_VERSIONS)('v%s: events, state_default, events_default', (v) => {
    const room = standardRoom(v, { pl: { events: { 'm.room.name': 40, 'm.room.custom': 60 }, events_default: 10, state_default: 45 } });
    room.member(CAROL, 'join'); // level 0
    expectAllowed(room.check(room.stateEvent('m.room.name', '', BOB, { name: 'n' })));
    expectRejected(room.check(room.stateEvent('m.room.name', '', CAROL, { name: 'n' })), /too low/);
    expectRejected(room.check(room.event('m.room.custom', BOB, {})), /too low/);
    expectAllowed(room.check(room.event('m.room.message', BOB, {})));
    expectRejected(room.check(room.event('m.room.message', CAROL, {})), /too low/);
    expectAllowed(room.check(room.stateEvent('m.room.topic', '', BOB, {})));
    room.powerLevels({ ...room.lookup('m.room.power_levels', '')!.content, state_default: 51 });
    expectRejected(room.check(room.stateEvent('m.room.topic', '', BOB, {})), /too low/);
  });

  it.each(ALL_VERSIONS)('v%s: without power levels: state needs 50, the creator has 100 (∞ in v12)', (v) => {
    const room = new Room(v);
    room.member(ALICE, 'join').joinRule('public').member(BOB, 'join');
    expectAllowed(room.check(room.stateEvent('m.room.name', '', ALICE, {})));
    expectRejected(room.check(room.stateEvent('m.room.name', '', BOB, {})), /too low/);
    expectAllowed(room.check(room.event('m.room.message', BOB, {})));
  });
});

describe('rule 9: state keys starting with @', () => {
  it.each(ALL_VERSIONS)('v%s', (v) => {
    const room = standardRoom(v);
    expectAllowed(room.check(room.stateEvent('m.custom', BOB, BOB, {})));
    expectRejected(room.check(room.stateEvent('m.custom', CAROL, BOB, {})), /starts with @/);
    expectAllowed(room.check(room.stateEvent('m.custom', 'not-a-user', BOB, {})));
  });
});

// ---------------------------------------------------------------------------------------------
// Rule 10: m.room.power_levels

describe('rule 10: m.room.power_levels content', () => {
  const plEvent = (room: Room, content: JsonObject, sender = ALICE) => room.stateEvent('m.room.power_levels', '', sender, content);
  /** A room with no power levels yet, so only the content checks apply. */
  const fresh = (v: string) => {
    const room = new Room(v);
    room.member(ALICE, 'join');
    return room;
  };

  it('string levels: accepted v1–v9, rejected v10+', () => {
    for (const v of ALL_VERSIONS) {
      const room = fresh(v);
      const contents: JsonObject[] = [
        { ban: '50' },
        { users: { [BOB]: '50' } },
        { events: { 'm.room.name': ' +050 ' } },
        { notifications: { room: '-20' } },
        { users_default: '\t0\n' },
      ];
      for (const c of contents) {
        const r = room.check(plEvent(room, c));
        if (rulesOf(v).auth.integerPowerLevels) expectRejected(r, /not an integer/);
        else expectAllowed(r);
      }
    }
  });

  it('strings that are not integers are rejected in every version', () => {
    for (const v of ALL_VERSIONS) {
      const room = fresh(v);
      for (const bad of ['abc', '5.5', '1e3', '', ' ', '--5', '0x10', '5 5', '9'.repeat(400)]) {
        expectRejected(room.check(plEvent(room, { kick: bad })), /kick/);
        expectRejected(room.check(plEvent(room, { users: { [BOB]: bad } })), /users/);
      }
    }
  });

  it('floats: truncated v1–v5, rejected v6+', () => {
    for (const v of ALL_VERSIONS) {
      const room = fresh(v);
      const r = room.check(plEvent(room, { users: { [BOB]: 50.57 }, ban: 5.114698e4 }));
      if (!rulesOf(v).strictCanonicalJson) expectAllowed(r);
      else expectRejected(r);
    }
    expect(parseLevel(50.57, rulesOf('5'))).toBe(50);
    expect(parseLevel(-0.5, rulesOf('5'))).toBe(0);
    expect(parseLevel(5.114698e4, rulesOf('1'))).toBe(51146);
    expect(parseLevel(Infinity, rulesOf('1'))).toBeUndefined();
    expect(parseLevel(NaN, rulesOf('1'))).toBeUndefined();
    expect(parseLevel(50.5, rulesOf('6'))).toBeUndefined();
    expect(parseLevel(' 00100 ', rulesOf('9'))).toBe(100);
    expect(parseLevel('+100', rulesOf('9'))).toBe(100);
    expect(parseLevel('-100', rulesOf('9'))).toBe(-100);
    expect(parseLevel('100', rulesOf('10'))).toBeUndefined();
  });

  it.each(ALL_VERSIONS)('v%s: wrong types reject', (v) => {
    const room = fresh(v);
    for (const c of [
      { ban: null },
      { ban: true },
      { invite: [] },
      { state_default: {} },
      { events: [] },
      { events: 5 },
      { events: { 'm.room.name': null } },
      { notifications: 'x' },
      { notifications: { room: {} } },
      { users: [] },
      { users: 'x' },
      { users: { [BOB]: null } },
      { users: { bob: 50 } },
      { users: { '@bob': 50 } },
      { users: { '@bob:bad host': 50 } },
    ] as JsonObject[]) {
      expectRejected(room.check(plEvent(room, c)), /power_levels/);
    }
    expectAllowed(room.check(plEvent(room, { users: { [BOB]: 10, '@historical USER:example.org': 0 }, events: {}, notifications: { room: 50 } })));
  });

  it('the first power levels event is allowed whatever its levels', () => {
    const room = fresh('10');
    expectAllowed(room.check(plEvent(room, { users: { [ALICE]: 100, [BOB]: 1000 }, ban: 9000 })));
  });
});

describe('rule 10: changing power levels', () => {
  /** alice 100 (∞ in v12), bob 50, carol 50, dave 20; bob sends. */
  function plRoom(v: string, extra: JsonObject = {}) {
    const rules = rulesOf(v);
    const users: JsonObject = { [BOB]: 50, [CAROL]: 50, [DAVE]: 20 };
    if (!rules.auth.privilegedCreators) users[ALICE] = 100;
    const room = standardRoom(v, { users, pl: { ban: 50, kick: 50, redact: 50, invite: 0, state_default: 50, events_default: 0, users_default: 0, events: { 'm.room.name': 50, 'm.room.tombstone': 100 }, ...extra } });
    const current = () => room.lookup('m.room.power_levels', '')!.content;
    const change = (f: (c: JsonObject) => void, sender = BOB) => {
      const c = structuredClone(current());
      f(c);
      return room.check(room.stateEvent('m.room.power_levels', '', sender, c));
    };
    return { room, change };
  }

  it.each(ALL_VERSIONS)('v%s: top-level properties', (v) => {
    const { change } = plRoom(v);
    expectAllowed(change(() => {})); // no change
    expectAllowed(change((c) => (c.kick = 40)));
    expectAllowed(change((c) => (c.kick = 50))); // unchanged
    expectAllowed(change((c) => delete c.invite)); // removing 0
    expectRejected(change((c) => (c.kick = 51)), /new kick/);
    expectRejected(change((c) => (c.users_default = 60)), /new users_default/);
    const high = plRoom(v, { ban: 60 });
    expectRejected(high.change((c) => (c.ban = 50)), /current ban/);
    expectRejected(high.change((c) => delete c.ban), /current ban/);
    expectAllowed(high.change((c) => (c.kick = 10)));
  });

  it('string and integer spellings of one level are no change (v1–v9)', () => {
    const { change } = plRoom('9', { ban: 60 });
    expectAllowed(change((c) => (c.ban = '60')));
    expectAllowed(change((c) => (c.ban = ' 060 ')));
    expectRejected(change((c) => (c.ban = '61')), /ban/);
  });

  it.each(ALL_VERSIONS)('v%s: events', (v) => {
    const { change } = plRoom(v);
    expectAllowed(change((c) => ((c.events as JsonObject)['m.room.name'] = 40)));
    expectAllowed(change((c) => ((c.events as JsonObject)['m.room.topic'] = 50))); // add at own level
    expectRejected(change((c) => ((c.events as JsonObject)['m.room.topic'] = 51)), /new events/);
    expectRejected(change((c) => ((c.events as JsonObject)['m.room.tombstone'] = 50)), /current events/);
    expectRejected(change((c) => delete (c.events as JsonObject)['m.room.tombstone']), /current events/);
    expectAllowed(change((c) => delete (c.events as JsonObject)['m.room.name']));
  });

  it('notifications: unchecked v1–v5, checked v6+', () => {
    for (const v of ALL_VERSIONS) {
      const { change } = plRoom(v, { notifications: { room: 60 } });
      const raise = change((c) => ((c.notifications as JsonObject).room = 100));
      const lower = change((c) => ((c.notifications as JsonObject).room = 0));
      const add = change((c) => ((c.notifications as JsonObject).other = 70));
      if (rulesOf(v).auth.limitNotificationsPowerLevels) {
        expectRejected(raise, /notifications/);
        expectRejected(lower, /current notifications/);
        expectRejected(add, /new notifications/);
        const ok = plRoom(v, { notifications: { room: 40 } });
        expectAllowed(ok.change((c) => ((c.notifications as JsonObject).room = 50)));
      } else {
        expectAllowed(raise);
        expectAllowed(lower);
        expectAllowed(add);
      }
    }
  });

  it.each(ALL_VERSIONS)('v%s: users', (v) => {
    const { change } = plRoom(v);
    const set = (user: string, level: number | undefined) => (c: JsonObject) => {
      const users = c.users as JsonObject;
      if (level === undefined) delete users[user];
      else users[user] = level;
    };
    expectAllowed(change(set(DAVE, 50))); // up to own level
    expectRejected(change(set(DAVE, 51)), /above the sender's level/);
    expectAllowed(change(set(DAVE, 0)));
    expectAllowed(change(set(DAVE, undefined)));
    expectAllowed(change(set('@new:x.example', 50)));
    expectRejected(change(set(CAROL, 49)), /at or above/); // carol is at bob's level
    expectRejected(change(set(CAROL, undefined)), /at or above/);
    expectAllowed(change(set(BOB, 10))); // demoting oneself
    expectRejected(change(set(BOB, 51)), /above the sender's level/); // self-promotion
    if (!rulesOf(v).auth.privilegedCreators) {
      expectRejected(change(set(ALICE, 10)), /at or above/);
      expectAllowed(change(set(ALICE, 100), ALICE));
    }
  });

  it('sender level comes from the current state, not the new event', () => {
    const { change } = plRoom('10');
    expectRejected(change((c) => {
      (c.users as JsonObject)[BOB] = 100;
      c.ban = 100;
    }), /above the sender's level/);
  });
});

// ---------------------------------------------------------------------------------------------
// v12 creators

describe('v12: creators', () => {
  it('creatorsOf per version', () => {
    const create = (content: JsonObject): PDU => ({ type: 'm.room.create', state_key: '', sender: ALICE, content });
    expect([...creatorsOf(create({ creator: CAROL }), rulesOf('10'))]).toEqual([CAROL]);
    expect([...creatorsOf(create({}), rulesOf('10'))]).toEqual([]);
    expect([...creatorsOf(create({ creator: CAROL }), rulesOf('11'))]).toEqual([ALICE]);
    expect([...creatorsOf(create({ additional_creators: [BOB] }), rulesOf('11'))]).toEqual([ALICE]);
    expect([...creatorsOf(create({ additional_creators: [BOB, CAROL] }), rulesOf('12'))]).toEqual([ALICE, BOB, CAROL]);
  });

  it('userPowerLevel: 100 for the creator without power levels (v1–v11), ∞ in v12', () => {
    for (const v of ALL_VERSIONS) {
      const room = new Room(v, { createContent: { additional_creators: [BOB] } });
      const expected = rulesOf(v).auth.privilegedCreators ? Infinity : 100;
      expect(userPowerLevel(ALICE, room.lookup, room.rules)).toBe(expected);
      expect(userPowerLevel(BOB, room.lookup, room.rules)).toBe(rulesOf(v).auth.privilegedCreators ? Infinity : 0);
      expect(userPowerLevel(CAROL, room.lookup, room.rules)).toBe(0);
      // With power levels: the creator follows them before v12.
      room.powerLevels({ users: { [CAROL]: 30 }, users_default: 5 });
      expect(userPowerLevel(ALICE, room.lookup, room.rules)).toBe(rulesOf(v).auth.privilegedCreators ? Infinity : 5);
      expect(userPowerLevel(CAROL, room.lookup, room.rules)).toBe(30);
    }
  });

  it('stringy user levels are read before v10', () => {
    const room = new Room('9');
    room.powerLevels({ users: { [BOB]: ' 60 ' }, users_default: '7' });
    expect(userPowerLevel(BOB, room.lookup, room.rules)).toBe(60);
    expect(userPowerLevel(CAROL, room.lookup, room.rules)).toBe(7);
  });

  it('creators may not appear in users (sender and additional creators)', () => {
    const room = new Room('12', { createContent: { additional_creators: [CAROL] } });
    room.member(ALICE, 'join');
    const pl = (users: JsonObject) => room.check(room.stateEvent('m.room.power_levels', '', ALICE, { users }));
    expectAllowed(pl({ [BOB]: 100 }));
    expectRejected(pl({ [ALICE]: 100 }), /creator/);
    expectRejected(pl({ [CAROL]: 0 }), /creator/);
    // v11: the creator is listed as usual.
    const v11 = new Room('11');
    v11.member(ALICE, 'join');
    expectAllowed(v11.check(v11.stateEvent('m.room.power_levels', '', ALICE, { users: { [ALICE]: 100 } })));
  });

  it('creators outrank everyone; nobody outranks a creator', () => {
    const room = new Room('12', { createContent: { additional_creators: [CAROL] } });
    room.member(ALICE, 'join').powerLevels({ users: { [BOB]: 9007199254740991 } }).joinRule('public').member(BOB, 'join').member(CAROL, 'join');
    // bob has the largest level there is, and still cannot kick or ban a creator...
    expectRejected(room.check(room.memberEvent(CAROL, 'leave', BOB)), /kick/);
    expectRejected(room.check(room.memberEvent(ALICE, 'ban', BOB)), /ban/);
    // ...while a creator can kick bob, and set any level.
    expectAllowed(room.check(room.memberEvent(BOB, 'leave', CAROL)));
    expectAllowed(room.check(room.stateEvent('m.room.power_levels', '', CAROL, { users: { [BOB]: 0, [DAVE]: 9007199254740991 }, ban: 9007199254740991 })));
    // Creators cannot kick each other (∞ is not below ∞), but may leave.
    expectRejected(room.check(room.memberEvent(ALICE, 'leave', CAROL)), /kick/);
    expectAllowed(room.check(room.memberEvent(CAROL, 'leave')));
    // A creator passes any required level.
    room.powerLevels({ users: {}, events: { 'm.room.tombstone': 9007199254740991 } });
    expectAllowed(room.check(room.stateEvent('m.room.tombstone', '', CAROL, {})));
    expectRejected(room.check(room.stateEvent('m.room.tombstone', '', BOB, {})), /too low/);
  });

  it('v11: the creator has no special standing once power levels exist', () => {
    const room = standardRoom('11', { users: { [BOB]: 100 } });
    expectAllowed(room.check(room.memberEvent(ALICE, 'ban', BOB)));
    expectRejected(room.check(room.memberEvent(BOB, 'ban', ALICE)), /ban/);
  });
});

// ---------------------------------------------------------------------------------------------
// Rule 11 (v1–v2): m.room.redaction

describe('rule 11: m.room.redaction (v1–v2)', () => {
  it.each(ALL_VERSIONS)('v%s', (v) => {
    const room = standardRoom(v);
    room.member(CAROL, 'join'); // level 0 < redact 50
    const redact = (sender: string, redacts: string) => room.event('m.room.redaction', sender, {}, { redacts });
    // Same domain as the redaction's event id: allowed in every version.
    expectAllowed(room.check(redact(CAROL, '$abc:c.example')));
    // Above the redact level: allowed in every version.
    expectAllowed(room.check(redact(BOB, '$abc:c.example')));
    const other = room.check(redact(CAROL, '$abc:b.example'));
    if (rulesOf(v).auth.specialCaseRedaction) expectRejected(other, /redaction/);
    else expectAllowed(other);
    if (rulesOf(v).auth.specialCaseRedaction) expectRejected(room.check(room.event('m.room.redaction', CAROL, {})), /redaction/);
  });

  it('from v3 the redaction is subject to the ordinary required level only', () => {
    const room = standardRoom('3', { pl: { events: { 'm.room.redaction': 60 } } });
    expectRejected(room.check(room.event('m.room.redaction', BOB, {}, { redacts: '$x:b.example' })), /too low/);
  });
});

// ---------------------------------------------------------------------------------------------
// Malformed input

describe('malformed events are rejected, never thrown', () => {
  it.each(ALL_VERSIONS)('v%s', (v) => {
    const room = standardRoom(v);
    const base = room.event('m.room.message', BOB, {});
    const bad: unknown[] = [
      null,
      5,
      'x',
      [],
      { ...base, type: 5 },
      { ...base, sender: null },
      { ...base, content: null },
      { ...base, content: [] },
      { ...base, state_key: 7 },
    ];
    for (const e of bad) {
      expectRejected(checkAuth(e as PDU, room.lookup, room.rules), /malformed/);
      expect(() => authEventTypes(e as PDU, room.rules)).not.toThrow();
      expectRejected(checkAuthEventsList(e as PDU, 'x' as never, room.rules));
    }
  });

  it('garbage state events do not crash the rules', () => {
    for (const v of ALL_VERSIONS) {
      const room = standardRoom(v);
      room.put({ ...room.lookup('m.room.power_levels', '')!, content: { users: 'x', events: null, ban: {} } as never });
      room.put({ ...room.lookup('m.room.join_rules', '')!, content: null as never });
      room.put({ ...room.lookup('m.room.member', BOB)!, content: { membership: 'join' } });
      room.put({ ...room.create, content: { ...room.create.content, additional_creators: 'x', 'm.federate': 'no' } });
      const r = room.check(room.event('m.room.message', BOB, {}));
      expect(r.allowed || !/internal error/.test(r.reason)).toBe(true);
      expect(userPowerLevel(BOB, room.lookup, room.rules)).toBe(0);
      room.check(room.memberEvent(CAROL, 'join'));
    }
  });

  it('a throwing lookup becomes a rejection', () => {
    const room = standardRoom('10');
    const r = checkAuth(room.event('m.room.message', BOB, {}), () => {
      throw new Error('db gone');
    }, room.rules);
    expect(r.allowed).toBe(false);
    if (!r.allowed) expect(r.reason).toMatch(/internal error.*db gone/);
  });
});

describe('user ids', () => {
  it('follows the historical grammar', () => {
    for (const ok of [ALICE, '@:example.org', '@Üñí cødé:example.org', '@a:1.2.3.4:8448', '@a:[::1]:80', '@a:[1234:5678::abcd]']) expect(isValidUserId(ok)).toBe(true);
    for (const bad of ['alice:a.example', '@alice', '@alice:', '@a\u0000b:x.org', '@a:bad_host', '@a:host:', '@a:host:123456', '@a:[zz]', '@\uD800:x.org', '@' + 'a'.repeat(250) + ':x.org', 5, null]) {
      expect(isValidUserId(bad)).toBe(false);
    }
  });
});
