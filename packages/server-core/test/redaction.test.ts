import { describe, expect, it } from 'vitest';
import { redactEvent, roomVersion, type PDU } from '../src/index.ts';

const v = (id: string) => roomVersion(id)!;
const base = {
  event_id: '$e',
  room_id: '!r:d',
  sender: '@a:d',
  origin: 'd',
  origin_server_ts: 1,
  depth: 2,
  prev_events: [],
  auth_events: [],
  membership: 'join',
  prev_state: [],
  hashes: { sha256: 'h' },
  signatures: { d: { 'ed25519:1': 's' } },
  unsigned: { age: 1 },
  extra_top_level: true,
};
const ev = (type: string, content: Record<string, unknown>, state_key?: string): PDU =>
  ({ ...base, type, content, ...(state_key === undefined ? {} : { state_key }) }) as PDU;

describe('redaction algorithm', () => {
  it('strips unknown top-level keys and unsigned; v1–v10 keep origin/membership/prev_state, v11 does not', () => {
    const r10 = redactEvent(ev('m.room.message', { body: 'x' }), v('10'));
    expect(Object.keys(r10).sort()).toEqual(
      ['auth_events', 'content', 'depth', 'event_id', 'hashes', 'membership', 'origin', 'origin_server_ts', 'prev_events', 'prev_state', 'room_id', 'sender', 'signatures', 'type'].sort(),
    );
    expect(r10.content).toEqual({});
    const r11 = redactEvent(ev('m.room.message', { body: 'x' }), v('11'));
    expect(r11).not.toHaveProperty('origin');
    expect(r11).not.toHaveProperty('membership');
    expect(r11).not.toHaveProperty('prev_state');
    expect(r11).not.toHaveProperty('unsigned');
    expect(r11.event_id).toBe('$e');
  });
  it('m.room.member: membership; v9+ join_authorised_via_users_server; v11 third_party_invite.signed', () => {
    const c = { membership: 'join', displayname: 'A', join_authorised_via_users_server: '@b:d', third_party_invite: { signed: { x: 1 }, display_name: 'z' } };
    expect(redactEvent(ev('m.room.member', c, '@a:d'), v('8')).content).toEqual({ membership: 'join' });
    expect(redactEvent(ev('m.room.member', c, '@a:d'), v('9')).content).toEqual({ membership: 'join', join_authorised_via_users_server: '@b:d' });
    expect(redactEvent(ev('m.room.member', c, '@a:d'), v('11')).content).toEqual({
      membership: 'join', join_authorised_via_users_server: '@b:d', third_party_invite: { signed: { x: 1 } },
    });
  });
  it('m.room.create: creator only before v11, everything from v11', () => {
    const c = { creator: '@a:d', room_version: '10', 'm.federate': false };
    expect(redactEvent(ev('m.room.create', c, ''), v('10')).content).toEqual({ creator: '@a:d' });
    expect(redactEvent(ev('m.room.create', c, ''), v('11')).content).toEqual(c);
    expect(redactEvent(ev('m.room.create', { additional_creators: ['@b:d'] }, ''), v('12')).content).toEqual({ additional_creators: ['@b:d'] });
  });
  it('m.room.join_rules keeps allow from v8', () => {
    const c = { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: '!x:d' }], other: 1 };
    expect(redactEvent(ev('m.room.join_rules', c, ''), v('7')).content).toEqual({ join_rule: 'restricted' });
    expect(redactEvent(ev('m.room.join_rules', c, ''), v('8')).content).toEqual({ join_rule: 'restricted', allow: c.allow });
  });
  it('m.room.power_levels keeps invite from v11', () => {
    const c = { ban: 50, events: {}, events_default: 0, kick: 50, redact: 50, state_default: 50, users: {}, users_default: 0, invite: 0, notifications: { room: 50 } };
    const { invite: _i, notifications: _n, ...pre } = c;
    expect(redactEvent(ev('m.room.power_levels', c, ''), v('10')).content).toEqual(pre);
    expect(redactEvent(ev('m.room.power_levels', c, ''), v('11')).content).toEqual({ ...pre, invite: 0 });
  });
  it('m.room.aliases keeps aliases only before v6; m.room.redaction keeps redacts from v11', () => {
    expect(redactEvent(ev('m.room.aliases', { aliases: ['#a:d'] }, 'd'), v('5')).content).toEqual({ aliases: ['#a:d'] });
    expect(redactEvent(ev('m.room.aliases', { aliases: ['#a:d'] }, 'd'), v('6')).content).toEqual({});
    expect(redactEvent(ev('m.room.redaction', { redacts: '$x', reason: 'r' }), v('10')).content).toEqual({});
    expect(redactEvent(ev('m.room.redaction', { redacts: '$x', reason: 'r' }), v('11')).content).toEqual({ redacts: '$x' });
  });
  it('m.room.history_visibility keeps history_visibility', () => {
    expect(redactEvent(ev('m.room.history_visibility', { history_visibility: 'shared', x: 1 }, ''), v('1')).content).toEqual({ history_visibility: 'shared' });
  });
  it('never modifies its input and survives odd content', () => {
    const e = ev('m.room.member', { membership: 'join' }, '@a:d');
    const copy = JSON.parse(JSON.stringify(e));
    redactEvent(e, v('11'));
    expect(e).toEqual(copy);
    expect(redactEvent({ ...e, content: null as never }, v('11')).content).toEqual({});
  });
});
