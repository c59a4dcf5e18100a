/**
 * Garbage in, a rejection (or an allowance) out — never an exception. Random events against random
 * room states, in every room version.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authEventTypes, checkAuth, checkAuthEventsList, creatorsOf, userPowerLevel } from '../src/kernel/auth/index.ts';
import { ROOM_VERSIONS } from '../src/kernel/room-versions.ts';
import { stateKey, type AuthResult, type JsonValue, type PDU } from '../src/kernel/types.ts';

const USERS = ['@alice:a.example', '@bob:b.example', '@carol:c.example', 'not-a-user', '@', ''];
const TYPES = [
  'm.room.create',
  'm.room.member',
  'm.room.power_levels',
  'm.room.join_rules',
  'm.room.third_party_invite',
  'm.room.aliases',
  'm.room.redaction',
  'm.room.message',
  'm.room.name',
];
const KEYS = [
  'membership',
  'join_rule',
  'users',
  'users_default',
  'events',
  'events_default',
  'state_default',
  'notifications',
  'ban',
  'kick',
  'invite',
  'redact',
  'third_party_invite',
  'join_authorised_via_users_server',
  'creator',
  'additional_creators',
  'room_version',
  'm.federate',
  'public_key',
  'public_keys',
  'allow',
];

const json: fc.Arbitrary<JsonValue> = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>;
/** Values that look plausible to the rules as often as garbage does. */
const value: fc.Arbitrary<JsonValue> = fc.oneof(
  json,
  fc.constantFrom<JsonValue>('join', 'invite', 'leave', 'ban', 'knock', 'public', 'restricted', 'knock_restricted', '50', ' 100 ', 50, 100, -1, 0.5, false),
  fc.constantFrom(...USERS),
  fc.dictionary(fc.constantFrom(...USERS, 'm.room.name', 'room'), fc.oneof(json, fc.integer({ min: -200, max: 200 }))),
  fc.record({ signed: fc.record({ mxid: fc.constantFrom(...USERS), token: fc.oneof(fc.constant('tok'), json), signatures: json }, { requiredKeys: [] }) }, { requiredKeys: [] }),
);
const content = fc.oneof(fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 6 }), json);

/** Mostly plausible, sometimes garbage. */
const mostly = <T,>(good: fc.Arbitrary<T>) => fc.oneof({ arbitrary: good, weight: 12 }, { arbitrary: json as fc.Arbitrary<unknown>, weight: 1 });

const event: fc.Arbitrary<PDU> = fc.record(
  {
    type: mostly(fc.constantFrom(...TYPES)),
    sender: mostly(fc.constantFrom(...USERS)),
    state_key: mostly(fc.constantFrom(...USERS, '', 'tok')),
    content: fc.oneof({ arbitrary: fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 6 }), weight: 12 }, { arbitrary: json, weight: 1 }),
    room_id: mostly(fc.constantFrom('!room:a.example', '!CreateHash')),
    event_id: mostly(fc.constantFrom('$CreateHash', '$create:a.example', '$e:b.example')),
    prev_events: mostly(fc.constantFrom(['$CreateHash'], ['$create:a.example'], [['$create:a.example', {}]], [])),
    redacts: mostly(fc.constant('$x:a.example')),
    signatures: mostly(fc.constant({ 'b.example': { 'ed25519:1': 's' } })),
  },
  { requiredKeys: ['type', 'sender', 'content'] },
) as unknown as fc.Arbitrary<PDU>;

/** Member events: a plausible membership plus random other content. */
const memberEvent: fc.Arbitrary<PDU> = fc
  .tuple(event, mostly(fc.constantFrom('join', 'invite', 'leave', 'ban', 'knock')), fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 3 }))
  .map(([e, membership, extra]) => ({ ...e, type: 'm.room.member', content: { ...extra, membership: membership as JsonValue } }));
const anyEvent = fc.oneof(event, memberEvent);

/** Member events of the known users, with random (mostly plausible) memberships. */
const members = fc.array(
  fc.record({ user: fc.constantFrom(...USERS), membership: mostly(fc.constantFrom('join', 'invite', 'leave', 'ban', 'knock')) }),
  { maxLength: 6 },
);
const likely = fc.oneof({ arbitrary: fc.constant(true), weight: 9 }, { arbitrary: fc.constant(false), weight: 1 });
const createContent = fc.dictionary(fc.constantFrom('creator', 'additional_creators', 'm.federate', 'room_version'), value, { maxKeys: 3 });

const versions = Object.values(ROOM_VERSIONS);

function sane(r: AuthResult): boolean {
  return r.allowed === true || (r.allowed === false && typeof r.reason === 'string' && !r.reason.includes('internal error'));
}

describe('auth rules on random input', () => {
  it('never throw and never hit the safety net', () => {
    fc.assert(
      fc.property(fc.constantFrom(...versions), anyEvent, fc.array(anyEvent, { maxLength: 8 }), members, createContent, likely, likely, (rules, ev0, stateEvents, mems, cc, withCreate, fixRoom) => {
        const state = new Map<string, PDU>();
        const roomId = rules.auth.roomIdFromCreateEvent ? '!CreateHash' : '!room:a.example';
        const ev: PDU = fixRoom ? { ...ev0, room_id: ev0.type === 'm.room.create' && rules.auth.roomIdFromCreateEvent ? undefined : roomId } : ev0;
        {
          const create: PDU = { type: 'm.room.create', state_key: '', sender: '@alice:a.example', event_id: '$CreateHash', content: { creator: '@alice:a.example', ...cc } };
          if (!rules.auth.roomIdFromCreateEvent) create.room_id = roomId;
          if (withCreate) state.set(stateKey('m.room.create', ''), create);
        }
        for (const m of mems) {
          state.set(stateKey('m.room.member', m.user), { type: 'm.room.member', state_key: m.user, sender: m.user, room_id: roomId, content: { membership: m.membership as JsonValue } });
        }
        for (const s of stateEvents) {
          if (typeof s.type === 'string' && typeof s.state_key === 'string') state.set(stateKey(s.type, s.state_key), s);
        }
        const lookup = (t: string, k: string) => state.get(stateKey(t, k));
        expect(sane(checkAuth(ev, lookup, rules))).toBe(true);
        expect(sane(checkAuthEventsList(ev, stateEvents, rules))).toBe(true);
        const pairs = authEventTypes(ev, rules);
        expect(pairs.every(([t, k]) => typeof t === 'string' && typeof k === 'string')).toBe(true);
        for (const u of USERS) expect(Number.isNaN(userPowerLevel(u, lookup, rules))).toBe(false);
        expect(creatorsOf(ev, rules)).toBeInstanceOf(Set);
      }),
      { numRuns: 2000, seed: 0x5eed },
    );
  });

  it('random power level contents never throw', () => {
    fc.assert(
      fc.property(fc.constantFrom(...versions), content, content, (rules, prev, next) => {
        const create: PDU = { type: 'm.room.create', state_key: '', sender: '@alice:a.example', event_id: '$CreateHash', room_id: '!room:a.example', content: { creator: '@alice:a.example' } };
        const roomId = rules.auth.roomIdFromCreateEvent ? '!CreateHash' : '!room:a.example';
        const state = new Map<string, PDU>([
          [stateKey('m.room.create', ''), create],
          [stateKey('m.room.member', '@bob:b.example'), { type: 'm.room.member', state_key: '@bob:b.example', sender: '@bob:b.example', room_id: roomId, content: { membership: 'join' } }],
          [stateKey('m.room.power_levels', ''), { type: 'm.room.power_levels', state_key: '', sender: '@alice:a.example', room_id: roomId, content: prev as never }],
        ]);
        const ev: PDU = { type: 'm.room.power_levels', state_key: '', sender: '@bob:b.example', room_id: roomId, content: next as never };
        expect(sane(checkAuth(ev, (t, k) => state.get(stateKey(t, k)), rules))).toBe(true);
      }),
      { numRuns: 1000, seed: 42 },
    );
  });
});
