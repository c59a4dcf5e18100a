import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MatrixError } from '../src/api/errors.ts';
import {
  PUSH_RULE_KINDS,
  defaultPushRules,
  deleteRule,
  effectivePushRules,
  emptyStoredPushRules,
  getPushRules,
  getPushRulesForScope,
  getRule,
  getRuleActions,
  getRuleEnabled,
  putRule,
  setRuleActions,
  setRuleEnabled,
  type PushRuleKind,
  type StoredPushRules,
} from '../src/client/push-rules.ts';

const ALICE = '@alice:example.org';
const ME = "[the user's Matrix ID]";

/** The definitions of "Predefined Rules" (spec v1.17+), copied verbatim from the spec, in the spec's order. */
const SPEC_OVERRIDE = [
  { rule_id: '.m.rule.master', default: true, enabled: false, conditions: [], actions: [] },
  {
    rule_id: '.m.rule.suppress_notices', default: true, enabled: true,
    conditions: [{ kind: 'event_match', key: 'content.msgtype', pattern: 'm.notice' }], actions: [],
  },
  {
    rule_id: '.m.rule.invite_for_me', default: true, enabled: true,
    conditions: [
      { key: 'type', kind: 'event_match', pattern: 'm.room.member' },
      { key: 'content.membership', kind: 'event_match', pattern: 'invite' },
      { key: 'state_key', kind: 'event_match', pattern: ME },
    ],
    actions: ['notify', { set_tweak: 'sound', value: 'default' }],
  },
  {
    rule_id: '.m.rule.member_event', default: true, enabled: true,
    conditions: [{ key: 'type', kind: 'event_match', pattern: 'm.room.member' }], actions: [],
  },
  {
    rule_id: '.m.rule.is_user_mention', default: true, enabled: true,
    conditions: [{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: ME }],
    actions: ['notify', { set_tweak: 'sound', value: 'default' }, { set_tweak: 'highlight' }],
  },
  {
    rule_id: '.m.rule.is_room_mention', default: true, enabled: true,
    conditions: [
      { kind: 'event_property_is', key: 'content.m\\.mentions.room', value: true },
      { kind: 'sender_notification_permission', key: 'room' },
    ],
    actions: ['notify', { set_tweak: 'highlight' }],
  },
  {
    rule_id: '.m.rule.tombstone', default: true, enabled: true,
    conditions: [
      { kind: 'event_match', key: 'type', pattern: 'm.room.tombstone' },
      { kind: 'event_match', key: 'state_key', pattern: '' },
    ],
    actions: ['notify', { set_tweak: 'highlight' }],
  },
  {
    rule_id: '.m.rule.reaction', default: true, enabled: true,
    conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.reaction' }], actions: [],
  },
  {
    rule_id: '.m.rule.room.server_acl', default: true, enabled: true,
    conditions: [
      { kind: 'event_match', key: 'type', pattern: 'm.room.server_acl' },
      { kind: 'event_match', key: 'state_key', pattern: '' },
    ],
    actions: [],
  },
  {
    rule_id: '.m.rule.suppress_edits', default: true, enabled: true,
    conditions: [{ kind: 'event_property_is', key: 'content.m\\.relates_to.rel_type', value: 'm.replace' }],
    actions: [],
  },
];
const SPEC_UNDERRIDE = [
  {
    rule_id: '.m.rule.call', default: true, enabled: true,
    conditions: [{ key: 'type', kind: 'event_match', pattern: 'm.call.invite' }],
    actions: ['notify', { set_tweak: 'sound', value: 'ring' }],
  },
  {
    rule_id: '.m.rule.encrypted_room_one_to_one', default: true, enabled: true,
    conditions: [{ kind: 'room_member_count', is: '2' }, { kind: 'event_match', key: 'type', pattern: 'm.room.encrypted' }],
    actions: ['notify', { set_tweak: 'sound', value: 'default' }],
  },
  {
    rule_id: '.m.rule.room_one_to_one', default: true, enabled: true,
    conditions: [{ kind: 'room_member_count', is: '2' }, { kind: 'event_match', key: 'type', pattern: 'm.room.message' }],
    actions: ['notify', { set_tweak: 'sound', value: 'default' }],
  },
  {
    rule_id: '.m.rule.message', default: true, enabled: true,
    conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.message' }], actions: ['notify'],
  },
  {
    rule_id: '.m.rule.encrypted', default: true, enabled: true,
    conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.encrypted' }], actions: ['notify'],
  },
];

const substitute = <T>(rules: T, userId: string): T => JSON.parse(JSON.stringify(rules).split(ME).join(userId)) as T;
const ids = (rules: { rule_id: string }[]) => rules.map((r) => r.rule_id);

/** Runs `f` and returns the MatrixError it throws (failing if it returns or throws anything else). */
function matrixError(f: () => unknown): MatrixError {
  try {
    f();
  } catch (e) {
    if (e instanceof MatrixError) return e;
    throw new Error(`expected a MatrixError, got ${String(e)}`);
  }
  throw new Error('expected a MatrixError, but nothing was thrown');
}
const expectError = (f: () => unknown, status: number, errcode: string) => {
  const e = matrixError(f);
  expect({ status: e.status, errcode: e.errcode }).toEqual({ status, errcode });
  expect(e.body()).toMatchObject({ errcode, error: expect.any(String) });
};

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

const G = 'global';
const empty = () => emptyStoredPushRules();
const put = (s: StoredPushRules, kind: string, id: string, body: unknown, query: { before?: string; after?: string } = {}) =>
  putRule(s, ALICE, G, kind, id, body, query);
const userIds = (s: StoredPushRules, kind: PushRuleKind) =>
  ids(effectivePushRules(s, ALICE)[kind]).filter((id) => !id.startsWith('.'));

describe('predefined rules', () => {
  it('the default ruleset is exactly the spec’s rules, in order, with the user’s id substituted', () => {
    const rules = effectivePushRules(empty(), ALICE);
    expect(Object.keys(rules)).toEqual(['override', 'content', 'room', 'sender', 'underride']);
    expect(rules.override).toEqual(substitute(SPEC_OVERRIDE, ALICE));
    expect(rules.underride).toEqual(substitute(SPEC_UNDERRIDE, ALICE));
    expect(rules.content).toEqual([]);
    expect(rules.room).toEqual([]);
    expect(rules.sender).toEqual([]);
    expect(ids(rules.override)).toEqual([
      '.m.rule.master', '.m.rule.suppress_notices', '.m.rule.invite_for_me', '.m.rule.member_event',
      '.m.rule.is_user_mention', '.m.rule.is_room_mention', '.m.rule.tombstone', '.m.rule.reaction',
      '.m.rule.room.server_acl', '.m.rule.suppress_edits',
    ]);
    expect(ids(rules.underride)).toEqual([
      '.m.rule.call', '.m.rule.encrypted_room_one_to_one', '.m.rule.room_one_to_one', '.m.rule.message', '.m.rule.encrypted',
    ]);
  });

  it('substitutes the user id in .m.rule.invite_for_me and .m.rule.is_user_mention', () => {
    const rules = effectivePushRules(empty(), '@bob:other.example');
    const invite = rules.override.find((r) => r.rule_id === '.m.rule.invite_for_me')!;
    expect(invite.conditions).toContainEqual({ key: 'state_key', kind: 'event_match', pattern: '@bob:other.example' });
    const mention = rules.override.find((r) => r.rule_id === '.m.rule.is_user_mention')!;
    expect(mention.conditions).toEqual([
      { kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: '@bob:other.example' },
    ]);
  });

  it('omits the legacy body-mention rules that spec v1.17 (MSC4210) removed', () => {
    const all = Object.values(effectivePushRules(empty(), ALICE)).flat().map((r) => r.rule_id);
    for (const legacy of ['.m.rule.contains_display_name', '.m.rule.roomnotif', '.m.rule.contains_user_name'])
      expect(all).not.toContain(legacy);
  });

  it('every default rule id starts with "." and is unique across kinds', () => {
    const all = Object.values(defaultPushRules(ALICE)).flat();
    expect(all.every((r) => r.rule_id.startsWith('.') && r.default)).toBe(true);
    expect(new Set(all.map((r) => r.rule_id)).size).toBe(all.length);
  });

  it('GET /pushrules/ and /pushrules/global/ bodies', () => {
    expect(getPushRules(empty(), ALICE)).toEqual({ global: effectivePushRules(empty(), ALICE) });
    expect(getPushRulesForScope(empty(), ALICE, 'global')).toEqual(effectivePushRules(empty(), ALICE));
    expectError(() => getPushRulesForScope(empty(), ALICE, 'device'), 404, 'M_UNRECOGNIZED');
  });

  it('getRule / getRuleEnabled / getRuleActions on default rules', () => {
    expect(getRule(empty(), ALICE, G, 'override', '.m.rule.master')).toEqual(SPEC_OVERRIDE[0]);
    expect(getRuleEnabled(empty(), ALICE, G, 'override', '.m.rule.master')).toEqual({ enabled: false });
    expect(getRuleActions(empty(), ALICE, G, 'underride', '.m.rule.call')).toEqual({
      actions: ['notify', { set_tweak: 'sound', value: 'ring' }],
    });
    // a default rule is only found under its own kind
    expectError(() => getRule(empty(), ALICE, G, 'underride', '.m.rule.master'), 404, 'M_NOT_FOUND');
  });
});

describe('user-defined rules: create, read, update, delete', () => {
  it('creates a rule of each kind with the right shape, enabled and non-default', () => {
    let s = empty();
    s = put(s, 'override', 'ov', { actions: ['notify'], conditions: [{ kind: 'event_match', key: 'type', pattern: 'x' }] });
    s = put(s, 'underride', 'un', { actions: [] });
    s = put(s, 'content', 'nocake', { pattern: 'cake*lie', actions: ['notify', { set_tweak: 'sound', value: 'bing' }] });
    s = put(s, 'room', '!room:example.org', { actions: [] });
    s = put(s, 'sender', '@spam:example.org', { actions: [], conditions: [{ kind: 'ignored' }], pattern: 'ignored' });

    expect(getRule(s, ALICE, G, 'override', 'ov')).toEqual({
      rule_id: 'ov', default: false, enabled: true, actions: ['notify'],
      conditions: [{ kind: 'event_match', key: 'type', pattern: 'x' }],
    });
    // conditions default to [] for override / underride
    expect(getRule(s, ALICE, G, 'underride', 'un')).toEqual({ rule_id: 'un', default: false, enabled: true, actions: [], conditions: [] });
    // the spec's example response
    expect(getRule(s, ALICE, G, 'content', 'nocake')).toEqual({
      rule_id: 'nocake', default: false, enabled: true, pattern: 'cake*lie', actions: ['notify', { set_tweak: 'sound', value: 'bing' }],
    });
    expect(getRule(s, ALICE, G, 'room', '!room:example.org')).toEqual({ rule_id: '!room:example.org', default: false, enabled: true, actions: [] });
    // room / sender rules have predefined conditions: extra keys of the body are ignored
    expect(getRule(s, ALICE, G, 'sender', '@spam:example.org')).toEqual({ rule_id: '@spam:example.org', default: false, enabled: true, actions: [] });

    // what is stored is only the user's rules
    expect(s.defaultsOverrides).toEqual({});
    expect(Object.values(s.custom).flat().every((r) => !r.default)).toBe(true);
  });

  it('places user rules after .m.rule.master but before the other defaults, and before default underrides', () => {
    let s = put(empty(), 'override', 'ov', { actions: [] });
    s = put(s, 'underride', 'un', { actions: [] });
    s = put(s, 'content', 'c', { actions: [], pattern: 'p' });
    const r = effectivePushRules(s, ALICE);
    expect(ids(r.override).slice(0, 3)).toEqual(['.m.rule.master', 'ov', '.m.rule.suppress_notices']);
    expect(ids(r.underride)[0]).toBe('un');
    expect(ids(r.underride).slice(1)).toEqual(ids(SPEC_UNDERRIDE));
    expect(ids(r.content)).toEqual(['c']);
  });

  it.each(PUSH_RULE_KINDS.map((k) => [k]))('%s: new rules go on top; before / after place them; updates keep place and enabled', (kind) => {
    const id = (n: string) => (kind === 'room' ? `!${n}:d` : kind === 'sender' ? `@${n}:d` : n);
    const body = (tag: string) => ({ actions: tag === 'n' ? ['notify'] : [], pattern: tag, conditions: [] });
    let s = empty();
    s = put(s, kind, id('a'), body('a'));
    s = put(s, kind, id('b'), body('b')); // most important by default
    expect(userIds(s, kind)).toEqual([id('b'), id('a')]);
    s = put(s, kind, id('c'), body('c'), { after: id('a') });
    expect(userIds(s, kind)).toEqual([id('b'), id('a'), id('c')]);
    s = put(s, kind, id('d'), body('d'), { before: id('a') });
    expect(userIds(s, kind)).toEqual([id('b'), id('d'), id('a'), id('c')]);
    // before wins when both are given
    s = put(s, kind, id('e'), body('e'), { before: id('b'), after: id('c') });
    expect(userIds(s, kind)).toEqual([id('e'), id('b'), id('d'), id('a'), id('c')]);

    // update in place keeps position and the enabled flag
    s = setRuleEnabled(s, ALICE, G, kind, id('a'), { enabled: false });
    s = put(s, kind, id('a'), body('n'));
    expect(userIds(s, kind)).toEqual([id('e'), id('b'), id('d'), id('a'), id('c')]);
    expect(getRule(s, ALICE, G, kind, id('a'))).toMatchObject({ enabled: false, actions: ['notify'] });
    if (kind === 'content') expect(getRule(s, ALICE, G, kind, id('a')).pattern).toBe('n');
    // update with after / before moves it
    s = put(s, kind, id('a'), body('a'), { after: id('c') });
    expect(userIds(s, kind)).toEqual([id('e'), id('b'), id('d'), id('c'), id('a')]);
    s = put(s, kind, id('a'), body('a'), { before: id('e') });
    expect(userIds(s, kind)).toEqual([id('a'), id('e'), id('b'), id('d'), id('c')]);

    // enabled / actions of a user rule
    expect(getRuleEnabled(s, ALICE, G, kind, id('a'))).toEqual({ enabled: false });
    s = setRuleEnabled(s, ALICE, G, kind, id('a'), { enabled: true });
    expect(getRuleEnabled(s, ALICE, G, kind, id('a'))).toEqual({ enabled: true });
    s = setRuleActions(s, ALICE, G, kind, id('a'), { actions: ['notify', { set_tweak: 'highlight' }] });
    expect(getRuleActions(s, ALICE, G, kind, id('a'))).toEqual({ actions: ['notify', { set_tweak: 'highlight' }] });

    // delete
    s = deleteRule(s, ALICE, G, kind, id('d'));
    expect(userIds(s, kind)).toEqual([id('a'), id('e'), id('b'), id('c')]);
    expectError(() => getRule(s, ALICE, G, kind, id('d')), 404, 'M_NOT_FOUND');
    expectError(() => deleteRule(s, ALICE, G, kind, id('d')), 404, 'M_NOT_FOUND');
    // other kinds untouched
    for (const k of PUSH_RULE_KINDS) if (k !== kind) expect(s.custom[k]).toEqual([]);
  });

  it('the same rule id can exist in different kinds independently', () => {
    let s = put(empty(), 'override', 'x', { actions: ['notify'] });
    s = put(s, 'underride', 'x', { actions: [] });
    s = deleteRule(s, ALICE, G, 'override', 'x');
    expect(getRule(s, ALICE, G, 'underride', 'x').rule_id).toBe('x');
    expectError(() => getRule(s, ALICE, G, 'override', 'x'), 404, 'M_NOT_FOUND');
  });

  it('strips the historical dont_notify / coalesce actions instead of rejecting them', () => {
    let s = put(empty(), 'override', 'quiet', { actions: ['dont_notify'] });
    expect(getRule(s, ALICE, G, 'override', 'quiet').actions).toEqual([]);
    s = setRuleActions(s, ALICE, G, 'override', 'quiet', { actions: ['coalesce', 'notify', 'dont_notify'] });
    expect(getRuleActions(s, ALICE, G, 'override', 'quiet')).toEqual({ actions: ['notify'] });
    s = setRuleActions(s, ALICE, G, 'underride', '.m.rule.message', { actions: ['dont_notify'] });
    expect(getRuleActions(s, ALICE, G, 'underride', '.m.rule.message')).toEqual({ actions: [] });
  });

  it('accepts every condition kind of the spec, and keeps unrecognised ones (which never match)', () => {
    const conditions = [
      { kind: 'event_match', key: 'content.body', pattern: 'lunc?*' },
      { kind: 'event_property_is', key: 'content.m\\.federate', value: true },
      { kind: 'event_property_is', key: 'a', value: null },
      { kind: 'event_property_contains', key: 'content.alt_aliases', value: '#myroom:example.com' },
      { kind: 'event_property_contains', key: 'n', value: -(2 ** 53) + 1 },
      { kind: 'contains_display_name' },
      { kind: 'room_member_count', is: '2' },
      { kind: 'room_member_count', is: '>=10' },
      { kind: 'room_member_count', is: '<3' },
      { kind: 'sender_notification_permission', key: 'room' },
      { kind: 'org.example.future', whatever: [1, { x: 2 }] },
    ];
    const s = put(empty(), 'override', 'all', { actions: ['notify', { set_tweak: 'custom', value: { nested: [1] } }], conditions });
    expect(getRule(s, ALICE, G, 'override', 'all').conditions).toEqual(conditions);
  });
});

describe('changes to server-default rules', () => {
  it('disabling a default rule is stored as an override and reflected by effectivePushRules', () => {
    const s = setRuleEnabled(empty(), ALICE, G, 'override', '.m.rule.suppress_notices', { enabled: false });
    expect(s).toEqual({ ...empty(), defaultsOverrides: { '.m.rule.suppress_notices': { enabled: false } } });
    const rule = effectivePushRules(s, ALICE).override.find((r) => r.rule_id === '.m.rule.suppress_notices')!;
    expect(rule).toEqual({ ...SPEC_OVERRIDE[1], enabled: false });
    expect(getRuleEnabled(s, ALICE, G, 'override', '.m.rule.suppress_notices')).toEqual({ enabled: false });
    // its place does not change
    expect(ids(effectivePushRules(s, ALICE).override)).toEqual(ids(SPEC_OVERRIDE));
  });

  it('enabling .m.rule.master keeps it first, above user rules', () => {
    let s = put(empty(), 'override', 'mine', { actions: ['notify'] });
    s = setRuleEnabled(s, ALICE, G, 'override', '.m.rule.master', { enabled: true });
    const o = effectivePushRules(s, ALICE).override;
    expect(o[0]).toEqual({ ...SPEC_OVERRIDE[0], enabled: true });
    expect(o[1]!.rule_id).toBe('mine');
  });

  it('changing actions of a default rule is stored as an override; the user id is still substituted', () => {
    const highlightOnly = ['notify', { set_tweak: 'highlight', value: false }];
    let s = setRuleActions(empty(), ALICE, G, 'override', '.m.rule.invite_for_me', { actions: highlightOnly });
    expect(s.defaultsOverrides).toEqual({ '.m.rule.invite_for_me': { actions: highlightOnly } });
    expect(getRule(s, '@bob:d', G, 'override', '.m.rule.invite_for_me')).toEqual({
      ...substitute(SPEC_OVERRIDE[2], '@bob:d'),
      actions: highlightOnly,
    });
    s = setRuleEnabled(s, ALICE, G, 'override', '.m.rule.invite_for_me', { enabled: false });
    expect(s.defaultsOverrides).toEqual({ '.m.rule.invite_for_me': { actions: highlightOnly, enabled: false } });
    expect(getRule(s, ALICE, G, 'override', '.m.rule.invite_for_me')).toMatchObject({ enabled: false, actions: highlightOnly, default: true });
  });

  it('setting a default rule back to its default value drops the override (so later default changes apply)', () => {
    let s = setRuleEnabled(empty(), ALICE, G, 'underride', '.m.rule.message', { enabled: false });
    s = setRuleActions(s, ALICE, G, 'underride', '.m.rule.message', { actions: [] });
    expect(s.defaultsOverrides).toEqual({ '.m.rule.message': { enabled: false, actions: [] } });
    s = setRuleEnabled(s, ALICE, G, 'underride', '.m.rule.message', { enabled: true });
    expect(s.defaultsOverrides).toEqual({ '.m.rule.message': { actions: [] } });
    // same value, other key order in action objects and historical actions ignored
    s = setRuleActions(s, ALICE, G, 'underride', '.m.rule.message', { actions: ['dont_notify', 'notify'] });
    expect(s.defaultsOverrides).toEqual({});
    s = setRuleActions(s, ALICE, G, 'underride', '.m.rule.call', { actions: ['notify', { value: 'ring', set_tweak: 'sound' }] });
    expect(s).toEqual(empty());
  });

  it('ignores overrides of rule ids that are not (or no longer) server defaults', () => {
    const s: StoredPushRules = { ...empty(), defaultsOverrides: { '.m.rule.gone': { enabled: false }, '.m.rule.call': { enabled: false } } };
    expect(ids(effectivePushRules(s, ALICE).underride)).toEqual(ids(SPEC_UNDERRIDE));
    expect(getRuleEnabled(s, ALICE, G, 'underride', '.m.rule.call')).toEqual({ enabled: false });
  });
});

describe('purity', () => {
  it('never mutates its input and returns fresh objects', () => {
    let s = put(empty(), 'override', 'a', { actions: ['notify'], conditions: [{ kind: 'event_match', key: 'k', pattern: 'p' }] });
    s = setRuleEnabled(s, ALICE, G, 'override', '.m.rule.master', { enabled: true });
    const frozen = deepFreeze(s);
    const snapshot = JSON.stringify(frozen);
    const body = deepFreeze({ actions: ['notify', { set_tweak: 'sound', value: 'x' }], conditions: [{ kind: 'event_match', key: 'k', pattern: 'q' }] });
    const after = [
      put(frozen, 'override', 'b', body, { after: 'a' }),
      put(frozen, 'override', 'a', body),
      deleteRule(frozen, ALICE, G, 'override', 'a'),
      setRuleEnabled(frozen, ALICE, G, 'override', 'a', { enabled: false }),
      setRuleActions(frozen, ALICE, G, 'override', 'a', body),
      setRuleEnabled(frozen, ALICE, G, 'override', '.m.rule.master', { enabled: false }),
      setRuleActions(frozen, ALICE, G, 'underride', '.m.rule.call', body),
    ];
    expect(JSON.stringify(frozen)).toBe(snapshot);
    for (const next of after) expect(next).not.toBe(frozen);

    // results can be mutated without affecting the stored value
    const got = getRule(frozen, ALICE, G, 'override', 'a');
    got.actions.push('x');
    (got.conditions![0] as Record<string, unknown>).pattern = 'changed';
    getRuleActions(frozen, ALICE, G, 'override', 'a').actions.length = 0;
    effectivePushRules(frozen, ALICE).override[0]!.actions.push('x');
    expect(JSON.stringify(frozen)).toBe(snapshot);

    // and the stored rule does not alias the request body
    const mutableBody = { actions: ['notify', { set_tweak: 'sound', value: 'x' }] };
    const s2 = put(empty(), 'room', '!r:d', mutableBody);
    (mutableBody.actions[1] as Record<string, unknown>).value = 'changed';
    expect(getRule(s2, ALICE, G, 'room', '!r:d').actions).toEqual(['notify', { set_tweak: 'sound', value: 'x' }]);
  });

  it('emptyStoredPushRules returns a fresh value each time', () => {
    const a = emptyStoredPushRules();
    a.custom.override.push({ rule_id: 'x', default: false, enabled: true, actions: [] });
    expect(emptyStoredPushRules().custom.override).toEqual([]);
  });
});

describe('errors', () => {
  const withRule = () => put(empty(), 'override', 'mine', { actions: [] });

  it('scope other than global: 404 M_UNRECOGNIZED on every operation', () => {
    const s = withRule();
    for (const scope of ['device', '', 'Global']) {
      expectError(() => getRule(s, ALICE, scope, 'override', 'mine'), 404, 'M_UNRECOGNIZED');
      expectError(() => putRule(s, ALICE, scope, 'override', 'x', { actions: [] }, {}), 404, 'M_UNRECOGNIZED');
      expectError(() => deleteRule(s, ALICE, scope, 'override', 'mine'), 404, 'M_UNRECOGNIZED');
      expectError(() => getRuleEnabled(s, ALICE, scope, 'override', 'mine'), 404, 'M_UNRECOGNIZED');
      expectError(() => setRuleEnabled(s, ALICE, scope, 'override', 'mine', { enabled: true }), 404, 'M_UNRECOGNIZED');
      expectError(() => getRuleActions(s, ALICE, scope, 'override', 'mine'), 404, 'M_UNRECOGNIZED');
      expectError(() => setRuleActions(s, ALICE, scope, 'override', 'mine', { actions: [] }), 404, 'M_UNRECOGNIZED');
    }
  });

  it('unknown kind: 404 M_NOT_FOUND when addressing a rule, 400 M_INVALID_PARAM when creating one', () => {
    const s = withRule();
    for (const kind of ['bogus', '', 'Override', '__proto__', 'constructor', 'global']) {
      expectError(() => getRule(s, ALICE, G, kind, 'mine'), 404, 'M_NOT_FOUND');
      expectError(() => deleteRule(s, ALICE, G, kind, 'mine'), 404, 'M_NOT_FOUND');
      expectError(() => getRuleEnabled(s, ALICE, G, kind, 'mine'), 404, 'M_NOT_FOUND');
      expectError(() => setRuleEnabled(s, ALICE, G, kind, 'mine', { enabled: true }), 404, 'M_NOT_FOUND');
      expectError(() => getRuleActions(s, ALICE, G, kind, 'mine'), 404, 'M_NOT_FOUND');
      expectError(() => setRuleActions(s, ALICE, G, kind, 'mine', { actions: [] }), 404, 'M_NOT_FOUND');
      expectError(() => put(s, kind, 'x', { actions: [] }), 400, 'M_INVALID_PARAM');
    }
  });

  it('unknown rule: 404 M_NOT_FOUND', () => {
    const s = withRule();
    for (const id of ['nope', '.m.rule.nope', '', '__proto__', 'hasOwnProperty']) {
      expectError(() => getRule(s, ALICE, G, 'override', id), 404, 'M_NOT_FOUND');
      expectError(() => deleteRule(s, ALICE, G, 'override', id), 404, 'M_NOT_FOUND');
      expectError(() => getRuleEnabled(s, ALICE, G, 'override', id), 404, 'M_NOT_FOUND');
      expectError(() => setRuleEnabled(s, ALICE, G, 'override', id, { enabled: true }), 404, 'M_NOT_FOUND');
      expectError(() => getRuleActions(s, ALICE, G, 'override', id), 404, 'M_NOT_FOUND');
      expectError(() => setRuleActions(s, ALICE, G, 'override', id, { actions: [] }), 404, 'M_NOT_FOUND');
    }
    expect(matrixError(() => getRule(s, ALICE, G, 'override', 'nope')).body()).toEqual({
      errcode: 'M_NOT_FOUND',
      error: 'The push rule was not found.',
    });
  });

  it('deleting a server-default rule: 400 M_INVALID_PARAM, and nothing changes', () => {
    for (const r of [...SPEC_OVERRIDE.map((x) => ['override', x.rule_id]), ...SPEC_UNDERRIDE.map((x) => ['underride', x.rule_id])])
      expectError(() => deleteRule(empty(), ALICE, G, r[0]!, r[1]!), 400, 'M_INVALID_PARAM');
  });

  it('rule ids: "." prefix, "/" and "\\" are rejected; room / sender rule ids must be room / user ids', () => {
    for (const id of ['.m.rule.master', '.mine', 'a/b', 'a\\b', ''])
      expectError(() => put(empty(), 'override', id, { actions: [] }), 400, 'M_INVALID_PARAM');
    expectError(() => put(empty(), 'room', '@user:d', { actions: [] }), 400, 'M_INVALID_PARAM');
    expectError(() => put(empty(), 'sender', '!room:d', { actions: [] }), 400, 'M_INVALID_PARAM');
    expectError(() => put(empty(), 'content', '.m.rule.contains_user_name', { actions: [], pattern: 'x' }), 400, 'M_INVALID_PARAM');
  });

  it('before / after: a missing rule, a server-default rule, the rule itself or another kind’s rule: 400 M_INVALID_PARAM', () => {
    let s = withRule();
    s = put(s, 'underride', 'under', { actions: [] });
    const cases: { before?: string; after?: string }[] = [
      { before: 'missing' },
      { after: 'missing' },
      { before: '.m.rule.master' },
      { after: '.m.rule.suppress_edits' },
      { before: 'under' }, // exists, but in another kind
      { before: 'missing', after: 'mine' }, // before decides
    ];
    for (const q of cases) {
      const e = matrixError(() => put(s, 'override', 'new', { actions: [] }, q));
      expect([e.status, e.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    }
    expect(matrixError(() => put(s, 'override', 'new', { actions: [] }, { before: 'missing' })).message).toMatch(
      /before\/after rule not found: missing/,
    );
    expectError(() => put(s, 'override', 'mine', { actions: [] }, { before: 'mine' }), 400, 'M_INVALID_PARAM');
    expectError(() => put(s, 'override', 'new', { actions: [] }, { before: 5 } as never), 400, 'M_INVALID_PARAM');
    expectError(() => put(s, 'override', 'new', { actions: [] }, 'before=mine' as never), 400, 'M_INVALID_PARAM');
    // empty values count as absent
    expect(userIds(put(s, 'override', 'new', { actions: [] }, { before: '', after: '' }), 'override')).toEqual(['new', 'mine']);
  });

  it('bad PUT rule bodies: 400 M_BAD_JSON', () => {
    const bad: [string, unknown][] = [
      ['override', null],
      ['override', 'notify'],
      ['override', ['notify']],
      ['override', {}],
      ['override', { actions: 'notify' }],
      ['override', { actions: null }],
      ['override', { actions: [1] }],
      ['override', { actions: [null] }],
      ['override', { actions: [['notify']] }],
      ['override', { actions: ['bogus_action'] }],
      ['override', { actions: [{ value: 'x' }] }],
      ['override', { actions: [{ set_tweak: 3 }] }],
      ['override', { actions: [{ set_tweak: 'sound', value: Number.NaN }] }],
      ['override', { actions: [], conditions: {} }],
      ['override', { actions: [], conditions: null }],
      ['override', { actions: [], conditions: ['event_match'] }],
      ['override', { actions: [], conditions: [{}] }],
      ['override', { actions: [], conditions: [{ kind: 3 }] }],
      ['override', { actions: [], conditions: [{ kind: 'event_match', key: 'type' }] }],
      ['override', { actions: [], conditions: [{ kind: 'event_match', pattern: 'x' }] }],
      ['underride', { actions: [], conditions: [{ kind: 'event_property_is', key: 'k' }] }],
      ['underride', { actions: [], conditions: [{ kind: 'event_property_is', key: 'k', value: 1.5 }] }],
      ['underride', { actions: [], conditions: [{ kind: 'event_property_is', key: 'k', value: 2 ** 53 }] }],
      ['underride', { actions: [], conditions: [{ kind: 'event_property_contains', key: 'k', value: { a: 1 } }] }],
      ['underride', { actions: [], conditions: [{ kind: 'event_property_contains', key: 'k', value: [] }] }],
      ['underride', { actions: [], conditions: [{ kind: 'room_member_count' }] }],
      ['underride', { actions: [], conditions: [{ kind: 'room_member_count', is: 2 }] }],
      ['underride', { actions: [], conditions: [{ kind: 'room_member_count', is: '=2' }] }],
      ['underride', { actions: [], conditions: [{ kind: 'room_member_count', is: '>= 2' }] }],
      ['underride', { actions: [], conditions: [{ kind: 'sender_notification_permission' }] }],
      ['content', { actions: [] }],
      ['content', { actions: [], pattern: 5 }],
      ['content', { pattern: 'x' }],
      ['room', { actions: {} }],
      ['sender', undefined],
    ];
    for (const [kind, body] of bad) {
      const id = kind === 'room' ? '!r:d' : kind === 'sender' ? '@u:d' : 'r';
      const e = matrixError(() => put(empty(), kind, id, body));
      expect([kind, body, e.status, e.errcode]).toEqual([kind, body, 400, 'M_BAD_JSON']);
    }
  });

  it('bad /enabled and /actions bodies: 400 M_BAD_JSON, for user and default rules', () => {
    const s = withRule();
    for (const [kind, id] of [['override', 'mine'], ['override', '.m.rule.master']] as const) {
      for (const body of [null, undefined, true, [], {}, { enabled: 'true' }, { enabled: 1 }, { enabled: null }])
        expectError(() => setRuleEnabled(s, ALICE, G, kind, id, body), 400, 'M_BAD_JSON');
      for (const body of [null, undefined, 'notify', [], {}, { actions: 'notify' }, { actions: [42] }, { actions: ['ring'] }])
        expectError(() => setRuleActions(s, ALICE, G, kind, id, body), 400, 'M_BAD_JSON');
    }
  });

  it('does not choke on hostile JSON: __proto__ keys, deep nesting, cycles, odd objects', () => {
    const withProto = JSON.parse('{"actions":[{"set_tweak":"x","__proto__":{"polluted":true}}],"conditions":[{"kind":"k","__proto__":1}]}');
    const s = put(empty(), 'override', 'p', withProto);
    expect(JSON.stringify(getRule(s, ALICE, G, 'override', 'p'))).toContain('__proto__');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    let deep: unknown = 'x';
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expectError(() => put(empty(), 'override', 'd', { actions: [{ set_tweak: 'x', value: deep }] }), 400, 'M_BAD_JSON');

    const cyclic: Record<string, unknown> = { set_tweak: 'x' };
    cyclic.self = cyclic;
    expectError(() => put(empty(), 'override', 'c', { actions: [cyclic] }), 400, 'M_BAD_JSON');

    const throwing = { get actions(): unknown { throw new TypeError('boom'); } };
    expectError(() => put(empty(), 'override', 't', throwing), 400, 'M_BAD_JSON');
    expectError(() => put(empty(), 'override', 'm', new Map([['actions', []]])), 400, 'M_BAD_JSON');
    expectError(() => put(empty(), 'override', 'f', { actions: [{ set_tweak: 'x', value: () => 1 }] }), 400, 'M_BAD_JSON');
    expectError(() => put(empty(), 'override', 'b', { actions: [{ set_tweak: 'x', value: 1n }] }), 400, 'M_BAD_JSON');
  });
});

describe('fuzz: any input gives a value or a MatrixError', () => {
  // Mostly valid values (so every success path is reached), mixed with junk of any shape.
  const often = <T, U>(good: fc.Arbitrary<T>, junk: fc.Arbitrary<U>) =>
    fc.oneof({ arbitrary: good, weight: 6 }, { arbitrary: junk, weight: 1 });
  const kindArb = often(fc.constantFrom(...PUSH_RULE_KINDS), fc.string());
  const idArb = often(
    fc.constantFrom('a', 'b', 'c', '!r:d', '!s:d', '@u:d', '@v:d', '.m.rule.master', '.m.rule.call', '.m.rule.message', '__proto__'),
    fc.string(),
  );
  const actionArb = often(
    fc.constantFrom('notify', 'dont_notify', 'coalesce', { set_tweak: 'sound', value: 'default' }, { set_tweak: 'highlight' }),
    fc.oneof(fc.record({ set_tweak: fc.string(), value: fc.jsonValue() }, { requiredKeys: ['set_tweak'] }), fc.jsonValue()),
  );
  const conditionArb = often(
    fc.constantFrom(
      { kind: 'event_match', key: 'type', pattern: 'm.room.*' },
      { kind: 'event_property_is', key: 'content.x', value: null },
      { kind: 'event_property_contains', key: 'content.y', value: 3 },
      { kind: 'room_member_count', is: '>=2' },
      { kind: 'sender_notification_permission', key: 'room' },
      { kind: 'contains_display_name' },
      { kind: 'org.example.other' },
    ),
    fc.oneof(
      fc.record(
        {
          kind: fc.constantFrom('event_match', 'event_property_is', 'event_property_contains', 'room_member_count', 'sender_notification_permission', 'x'),
          key: fc.jsonValue(),
          pattern: fc.jsonValue(),
          value: fc.jsonValue(),
          is: fc.oneof(fc.constantFrom('2', '>=3', '<1', '=='), fc.string()),
        },
        { requiredKeys: ['kind'] },
      ),
      fc.jsonValue(),
    ),
  );
  const bodyArb = often(
    fc.record({
      actions: often(fc.array(actionArb, { maxLength: 4 }), fc.jsonValue()),
      conditions: often(fc.array(conditionArb, { maxLength: 4 }), fc.jsonValue()),
      pattern: often(fc.string(), fc.jsonValue()),
      enabled: often(fc.boolean(), fc.jsonValue()),
    }),
    fc.oneof(
      fc.record({ actions: fc.jsonValue(), conditions: fc.jsonValue(), pattern: fc.jsonValue(), enabled: fc.jsonValue() }, { requiredKeys: [] }),
      fc.anything(),
    ),
  );
  const queryArb = often(
    fc.oneof(fc.constant({}), fc.record({ before: idArb, after: idArb }, { requiredKeys: [] })),
    fc.anything(),
  ) as fc.Arbitrary<{ before?: string; after?: string }>;
  const scopeArb = often(fc.constant('global'), fc.string());

  type Op = { op: number; scope: string; kind: string; id: string; body: unknown; query: { before?: string; after?: string } };
  const junkOpArb: fc.Arbitrary<Op> = fc.record({ op: fc.integer({ min: 0, max: 6 }), scope: scopeArb, kind: kindArb, id: idArb, body: bodyArb, query: queryArb });
  // Well-formed operations on a small set of ids, so that rules get created, moved, changed and deleted.
  const idsByKind: Record<PushRuleKind, string[]> = {
    override: ['a', 'b', 'c', '.m.rule.master', '.m.rule.suppress_edits'],
    content: ['a', 'b', 'c'],
    room: ['!r:d', '!s:d', '!t:d'],
    sender: ['@u:d', '@v:d', '@w:d'],
    underride: ['a', 'b', 'c', '.m.rule.call', '.m.rule.encrypted'],
  };
  const validOpArb: fc.Arbitrary<Op> = fc.constantFrom(...PUSH_RULE_KINDS).chain((kind) => {
    const id = fc.constantFrom(...idsByKind[kind]);
    return fc.record({
      op: fc.integer({ min: 0, max: 6 }),
      scope: fc.constant('global'),
      kind: fc.constant(kind),
      id,
      body: fc.record({
        actions: fc.array(fc.constantFrom('notify', 'dont_notify', { set_tweak: 'sound', value: 'default' }, { set_tweak: 'highlight' }), { maxLength: 3 }),
        conditions: fc.array(conditionArb, { maxLength: 2 }),
        pattern: fc.string({ maxLength: 5 }),
        enabled: fc.boolean(),
      }),
      query: fc.oneof({ arbitrary: fc.constant({}), weight: 4 }, fc.record({ before: id }), fc.record({ after: id }), fc.record({ before: id, after: id })),
    });
  });
  const opArb = fc.oneof({ arbitrary: validOpArb, weight: 3 }, { arbitrary: junkOpArb, weight: 1 });

  function apply(s: StoredPushRules, o: Op): StoredPushRules {
    switch (o.op) {
      case 0: return putRule(s, ALICE, o.scope, o.kind, o.id, o.body, o.query);
      case 1: return deleteRule(s, ALICE, o.scope, o.kind, o.id);
      case 2: return setRuleEnabled(s, ALICE, o.scope, o.kind, o.id, o.body);
      case 3: return setRuleActions(s, ALICE, o.scope, o.kind, o.id, o.body);
      case 4: getRule(s, ALICE, o.scope, o.kind, o.id); return s;
      case 5: getRuleEnabled(s, ALICE, o.scope, o.kind, o.id); return s;
      default: getRuleActions(s, ALICE, o.scope, o.kind, o.id); return s;
    }
  }

  it('random operation sequences keep the ruleset well formed', () => {
    const succeeded = new Map<number, number>();
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 5, maxLength: 40, size: 'max' }), (ops) => {
        let s = emptyStoredPushRules();
        for (const o of ops) {
          try {
            s = apply(s, o);
            succeeded.set(o.op, (succeeded.get(o.op) ?? 0) + 1);
          } catch (e) {
            if (!(e instanceof MatrixError)) throw e;
            expect([400, 404]).toContain(e.status);
          }
        }
        const r = effectivePushRules(s, ALICE);
        expect(r.override[0]!.rule_id).toBe('.m.rule.master');
        expect(ids(r.override).slice(-SPEC_OVERRIDE.length + 1)).toEqual(ids(SPEC_OVERRIDE).slice(1));
        expect(ids(r.underride).slice(-SPEC_UNDERRIDE.length)).toEqual(ids(SPEC_UNDERRIDE));
        for (const kind of PUSH_RULE_KINDS) {
          expect(new Set(ids(r[kind])).size).toBe(r[kind].length);
          for (const rule of r[kind]) {
            expect(typeof rule.enabled).toBe('boolean');
            expect(Array.isArray(rule.actions)).toBe(true);
            expect(rule.actions).not.toContain('dont_notify');
            if (!rule.default) expect(rule.rule_id.startsWith('.')).toBe(false);
            if (kind === 'content') expect(typeof rule.pattern).toBe('string');
          }
        }
        // the stored value survives a JSON round trip unchanged (it is what gets persisted)
        expect(JSON.parse(JSON.stringify(s))).toEqual(s);
      }),
      { numRuns: 300 },
    );
    // the generators reach the success paths of every operation, not only the error paths
    for (let op = 0; op <= 6; op++) expect(succeeded.get(op) ?? 0).toBeGreaterThan(5);
  });

  it('a single operation on arbitrary input throws only MatrixError', () => {
    fc.assert(
      fc.property(opArb, fc.anything(), (o, junkQuery) => {
        const s = put(put(empty(), 'override', 'a', { actions: [] }), 'room', '!r:d', { actions: ['notify'] });
        for (const q of [o.query, junkQuery as never]) {
          try {
            apply(s, { ...o, query: q });
          } catch (e) {
            expect(e).toBeInstanceOf(MatrixError);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});
