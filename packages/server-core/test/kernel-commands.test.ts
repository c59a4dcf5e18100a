/** The kernel command contract beyond the shared fixtures: refusals and room-version-12 auth. */
import { describe, expect, it } from 'vitest';
import { runKernelCommand } from '../src/index.ts';

const run = (cmd: string, input: unknown) => runKernelCommand(cmd, typeof input === 'string' ? input : JSON.stringify(input));

describe('kernel commands', () => {
  it('auth in room version 12: the create event is given among the consulted events, though v12 auth_events omit it', async () => {
    const create = { event_id: '$create', type: 'm.room.create', state_key: '', sender: '@a:x', content: { room_version: '12' }, origin_server_ts: 0 };
    const join = { event_id: '$join', room_id: '!create', type: 'm.room.member', state_key: '@a:x', sender: '@a:x', content: { membership: 'join' }, origin_server_ts: 1, auth_events: [] };
    const msg = { room_id: '!create', type: 'm.room.message', sender: '@a:x', content: { body: 'hi' }, origin_server_ts: 2, auth_events: ['$join'] };
    const ok = await run('auth', { event: msg, auth_events: [create, join], room_version: '12' });
    expect(ok.ok && JSON.parse(ok.output)).toEqual({ allowed: true });
    const stranger = await run('auth', { event: { ...msg, sender: '@b:x' }, auth_events: [create, join], room_version: '12' });
    expect(stranger.ok && JSON.parse(stranger.output).allowed).toBe(false);
    const noCreate = await run('auth', { event: msg, auth_events: [join], room_version: '12' });
    expect(noCreate.ok && JSON.parse(noCreate.output).allowed).toBe(false);
  });
  it('refuses (exit 2) what it must not answer', async () => {
    const cases: [string, unknown][] = [
      ['resolve', { room_version: '1', events: [], state_sets: [] }],
      ['resolve', { room_version: '11', events: [], state_sets: [['$missing']] }],
      ['event-id', { event: { type: 't', sender: '@a:x', content: {} }, room_version: '2' }],
      ['sign-json', { object: { a: 1.5 }, server_name: 'x', key_id: 'ed25519:1', seed: 'YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1' }],
      ['sign-json', { object: {}, server_name: 'x', key_id: 'ed25519:1', seed: 'short' }],
      ['verify-json', { object: {}, server_name: 'x', key_id: 'ed25519:1', public_key: 5 }],
      ['redact', { event: { type: 't' }, room_version: '11' }],
      ['canonical', '{"a": 1e400}'],
      ['canonical', '[1, 2'],
    ];
    for (const [cmd, input] of cases) {
      const r = await run(cmd, input);
      expect([cmd, r.ok ? 0 : r.exitCode]).toEqual([cmd, 2]);
    }
  });
  it('event-id keeps a given id and computes v3/v4 formats', async () => {
    const e = { type: 'm.room.message', sender: '@a:x', room_id: '!r:x', content: {}, origin_server_ts: 1, depth: 1, prev_events: [], auth_events: [] };
    const v3 = await run('event-id', { event: e, room_version: '3' });
    const v4 = await run('event-id', { event: e, room_version: '4' });
    expect(v3.ok && JSON.parse(v3.output).event_id).toMatch(/^\$[A-Za-z0-9+/]{43}$/);
    expect(v4.ok && JSON.parse(v4.output).event_id).toMatch(/^\$[A-Za-z0-9_-]{43}$/);
    const kept = await run('event-id', { event: { ...e, event_id: '$given:x' }, room_version: '1' });
    expect(kept.ok && JSON.parse(kept.output).event_id).toBe('$given:x');
  });
});
