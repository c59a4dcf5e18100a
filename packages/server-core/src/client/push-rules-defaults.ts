/**
 * The server-default push rules of the Client-Server API ("Predefined Rules", spec v1.17+), as data.
 *
 * Order within each kind is the spec's order; the first rule of a kind is the most important. Since v1.17
 * (MSC4210) the legacy rules that looked for mentions in `content.body` (`.m.rule.contains_display_name`,
 * `.m.rule.roomnotif`, `.m.rule.contains_user_name`) are no longer part of the spec, so there are no default
 * `content` rules. `room` and `sender` have no defaults.
 *
 * Built fresh on every call (callers may mutate the result).
 */

type DefaultRule = {
  rule_id: string;
  default: true;
  enabled: boolean;
  conditions: Record<string, unknown>[];
  actions: unknown[];
};

const sound = (value: string) => ({ set_tweak: 'sound', value });
const highlight = () => ({ set_tweak: 'highlight' });

/** Default `override` rules; `.m.rule.master` is first and always stays first (above user rules). */
export function defaultOverrideRules(userId: string): DefaultRule[] {
  return [
    { rule_id: '.m.rule.master', default: true, enabled: false, conditions: [], actions: [] },
    {
      rule_id: '.m.rule.suppress_notices',
      default: true,
      enabled: true,
      conditions: [{ kind: 'event_match', key: 'content.msgtype', pattern: 'm.notice' }],
      actions: [],
    },
    {
      rule_id: '.m.rule.invite_for_me',
      default: true,
      enabled: true,
      conditions: [
        { key: 'type', kind: 'event_match', pattern: 'm.room.member' },
        { key: 'content.membership', kind: 'event_match', pattern: 'invite' },
        { key: 'state_key', kind: 'event_match', pattern: userId },
      ],
      actions: ['notify', sound('default')],
    },
    {
      rule_id: '.m.rule.member_event',
      default: true,
      enabled: true,
      conditions: [{ key: 'type', kind: 'event_match', pattern: 'm.room.member' }],
      actions: [],
    },
    {
      rule_id: '.m.rule.is_user_mention',
      default: true,
      enabled: true,
      conditions: [{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: userId }],
      actions: ['notify', sound('default'), highlight()],
    },
    {
      rule_id: '.m.rule.is_room_mention',
      default: true,
      enabled: true,
      conditions: [
        { kind: 'event_property_is', key: 'content.m\\.mentions.room', value: true },
        { kind: 'sender_notification_permission', key: 'room' },
      ],
      actions: ['notify', highlight()],
    },
    {
      rule_id: '.m.rule.tombstone',
      default: true,
      enabled: true,
      conditions: [
        { kind: 'event_match', key: 'type', pattern: 'm.room.tombstone' },
        { kind: 'event_match', key: 'state_key', pattern: '' },
      ],
      actions: ['notify', highlight()],
    },
    {
      rule_id: '.m.rule.reaction',
      default: true,
      enabled: true,
      conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.reaction' }],
      actions: [],
    },
    {
      rule_id: '.m.rule.room.server_acl',
      default: true,
      enabled: true,
      conditions: [
        { kind: 'event_match', key: 'type', pattern: 'm.room.server_acl' },
        { kind: 'event_match', key: 'state_key', pattern: '' },
      ],
      actions: [],
    },
    {
      rule_id: '.m.rule.suppress_edits',
      default: true,
      enabled: true,
      conditions: [{ kind: 'event_property_is', key: 'content.m\\.relates_to.rel_type', value: 'm.replace' }],
      actions: [],
    },
  ];
}

/** Default `content` rules: none since spec v1.17 (see the file comment). */
export function defaultContentRules(_userId: string): DefaultRule[] {
  return [];
}

/** Default `underride` rules; they come after every user-defined underride rule. */
export function defaultUnderrideRules(_userId: string): DefaultRule[] {
  return [
    {
      rule_id: '.m.rule.call',
      default: true,
      enabled: true,
      conditions: [{ key: 'type', kind: 'event_match', pattern: 'm.call.invite' }],
      actions: ['notify', sound('ring')],
    },
    {
      rule_id: '.m.rule.encrypted_room_one_to_one',
      default: true,
      enabled: true,
      conditions: [
        { kind: 'room_member_count', is: '2' },
        { kind: 'event_match', key: 'type', pattern: 'm.room.encrypted' },
      ],
      actions: ['notify', sound('default')],
    },
    {
      rule_id: '.m.rule.room_one_to_one',
      default: true,
      enabled: true,
      conditions: [
        { kind: 'room_member_count', is: '2' },
        { kind: 'event_match', key: 'type', pattern: 'm.room.message' },
      ],
      actions: ['notify', sound('default')],
    },
    {
      rule_id: '.m.rule.message',
      default: true,
      enabled: true,
      conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.message' }],
      actions: ['notify'],
    },
    {
      rule_id: '.m.rule.encrypted',
      default: true,
      enabled: true,
      conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.encrypted' }],
      actions: ['notify'],
    },
  ];
}
