/**
 * The redaction algorithm (spec: rooms/v1 "Redactions", rooms/v6, rooms/v8, rooms/v9, rooms/v11;
 * v12 keeps the v11 algorithm). Pure: returns a new event, never modifies its input.
 */
import type { RedactionAlgorithm, RoomVersionRules } from './room-versions.ts';
import type { JsonObject, PDU } from './types.ts';

const TOP_LEVEL_V1 = [
  'event_id', 'type', 'room_id', 'sender', 'state_key', 'content', 'hashes', 'signatures', 'depth',
  'prev_events', 'prev_state', 'auth_events', 'origin', 'origin_server_ts', 'membership',
];
// rooms/v11: `origin`, `membership` and `prev_state` are no longer protected.
const TOP_LEVEL_V11 = TOP_LEVEL_V1.filter((k) => k !== 'origin' && k !== 'membership' && k !== 'prev_state');

const PL_V1 = ['ban', 'events', 'events_default', 'kick', 'redact', 'state_default', 'users', 'users_default'];

type ContentRule = readonly string[] | 'all';

function contentRules(alg: RedactionAlgorithm): Record<string, ContentRule> {
  const rules: Record<string, ContentRule> = {
    'm.room.member': ['membership'],
    'm.room.create': ['creator'],
    'm.room.join_rules': ['join_rule'],
    'm.room.power_levels': PL_V1,
    'm.room.history_visibility': ['history_visibility'],
  };
  if (alg === 'v1') rules['m.room.aliases'] = ['aliases']; // removed in v6
  if (alg === 'v8' || alg === 'v9' || alg === 'v11') rules['m.room.join_rules'] = ['join_rule', 'allow'];
  if (alg === 'v9' || alg === 'v11') rules['m.room.member'] = ['membership', 'join_authorised_via_users_server'];
  if (alg === 'v11') {
    rules['m.room.create'] = 'all';
    rules['m.room.power_levels'] = [...PL_V1, 'invite'];
    rules['m.room.redaction'] = ['redacts'];
  }
  return rules;
}

const RULES: Record<RedactionAlgorithm, { top: Set<string>; content: Record<string, ContentRule> }> = {
  v1: { top: new Set(TOP_LEVEL_V1), content: contentRules('v1') },
  v6: { top: new Set(TOP_LEVEL_V1), content: contentRules('v6') },
  v8: { top: new Set(TOP_LEVEL_V1), content: contentRules('v8') },
  v9: { top: new Set(TOP_LEVEL_V1), content: contentRules('v9') },
  v11: { top: new Set(TOP_LEVEL_V11), content: contentRules('v11') },
};

/** The event as the redaction algorithm of its room version leaves it. */
export function redactEvent<E extends PDU>(event: E, rules: RoomVersionRules): E {
  const r = RULES[rules.redaction];
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(event)) if (r.top.has(k)) out[k] = event[k];
  const content = (typeof event.content === 'object' && event.content !== null ? event.content : {}) as JsonObject;
  const keep = r.content[event.type];
  let newContent: JsonObject = {};
  if (keep === 'all') newContent = { ...content };
  else if (keep) for (const k of keep) if (k in content && Object.prototype.hasOwnProperty.call(content, k)) newContent[k] = content[k];
  // rooms/v11: an m.room.member keeps the `signed` key of `third_party_invite` only.
  if (rules.redaction === 'v11' && event.type === 'm.room.member') {
    const tpi = content.third_party_invite;
    if (typeof tpi === 'object' && tpi !== null && !Array.isArray(tpi) && 'signed' in tpi) {
      newContent.third_party_invite = { signed: (tpi as JsonObject).signed };
    }
  }
  out.content = newContent;
  return out as E;
}
