/**
 * Push rules of the Client-Server API ("Push Rules", "Predefined Rules", "Push Rules: API") as pure functions:
 * no I/O, no clock, inputs are never mutated. Every failure is a `MatrixError`; a body or query of any shape
 * (not only well-formed JSON) yields a `MatrixError`, never another exception.
 *
 * Storage model: per user we persist only the user's own rules and their changes (enabled / actions) to
 * server-default rules, so that a change of the server defaults reaches existing users. The ruleset a client
 * sees is computed by {@link effectivePushRules}.
 *
 * Error choices (the spec leaves most of them open):
 * - scope other than `global`: 404 `M_UNRECOGNIZED` (the spec's paths hard-code `global`; no such endpoint);
 * - unknown `kind`: 404 `M_NOT_FOUND` when reading / deleting / changing a rule (no such rule can exist),
 *   400 `M_INVALID_PARAM` when creating one with PUT;
 * - unknown rule: 404 `M_NOT_FOUND`;
 * - path / query parameters with a bad value (rule id starting with `.` or containing `/` or `\`, a room rule
 *   id that is not a room id, a sender rule id that is not a user id, `before`/`after` naming a missing rule,
 *   a server-default rule or the rule itself): 400 `M_INVALID_PARAM` (the spec's own 400 example for PUT is
 *   "before/after rule not found");
 * - request bodies that are not objects, lack a required key or hold a wrongly typed / unknown value:
 *   400 `M_BAD_JSON`;
 * - deleting a server-default rule: 400 `M_INVALID_PARAM`.
 */
import { MatrixError, badJson, invalidParam, notFound, unrecognized } from '../api/errors.ts';
import { defaultContentRules, defaultOverrideRules, defaultUnderrideRules } from './push-rules-defaults.ts';

export type PushRuleKind = 'override' | 'underride' | 'sender' | 'room' | 'content';

export interface PushRule {
  rule_id: string;
  default: boolean;
  enabled: boolean;
  actions: unknown[];
  conditions?: unknown[];
  pattern?: string;
}

export type PushRuleset = Record<PushRuleKind, PushRule[]>;

/** What we persist per user: only the user's own rules and their changes to default rules (so default updates reach existing users). */
export interface StoredPushRules {
  custom: Record<PushRuleKind, PushRule[]>;
  defaultsOverrides: Record<string /* rule_id */, { enabled?: boolean; actions?: unknown[] }>;
}

/** The kinds in the order they are evaluated (most important first); also the key order of a ruleset. */
export const PUSH_RULE_KINDS: readonly PushRuleKind[] = ['override', 'content', 'room', 'sender', 'underride'];

const MASTER_RULE_ID = '.m.rule.master';
/** Actions that older spec versions defined; they MUST be ignored, so we strip them (spec v1.12+). */
const HISTORICAL_ACTIONS = new Set(['dont_notify', 'coalesce']);
const MAX_JSON_DEPTH = 64;

export function emptyStoredPushRules(): StoredPushRules {
  return { custom: { override: [], content: [], room: [], sender: [], underride: [] }, defaultsOverrides: {} };
}

/** The server-default ruleset for `userId`, without the user's changes. */
export function defaultPushRules(userId: string): PushRuleset {
  return {
    override: defaultOverrideRules(userId),
    content: defaultContentRules(userId),
    room: [],
    sender: [],
    underride: defaultUnderrideRules(userId),
  };
}

/**
 * The full ruleset a client sees (the `global` ruleset). Within every kind, user-defined rules come before
 * the server-default rules of that kind, except `.m.rule.master`, which precedes every other rule.
 */
export function effectivePushRules(stored: StoredPushRules, userId: string): PushRuleset {
  const defaults = defaultPushRules(userId);
  const withChanges = (rules: PushRule[]) => rules.map((r) => applyDefaultChanges(stored, r));
  const master = defaults.override.filter((r) => r.rule_id === MASTER_RULE_ID);
  const otherOverrides = defaults.override.filter((r) => r.rule_id !== MASTER_RULE_ID);
  return {
    override: [...withChanges(master), ...customRules(stored, 'override'), ...withChanges(otherOverrides)],
    content: [...customRules(stored, 'content'), ...withChanges(defaults.content)],
    room: customRules(stored, 'room'),
    sender: customRules(stored, 'sender'),
    underride: [...customRules(stored, 'underride'), ...withChanges(defaults.underride)],
  };
}

/** Body of `GET /pushrules/` (and the content of the `m.push_rules` account data event). */
export function getPushRules(stored: StoredPushRules, userId: string): { global: PushRuleset } {
  return { global: effectivePushRules(stored, userId) };
}

/** `GET /pushrules/global/` (or `GET /pushrules/{scope}/`). */
export function getPushRulesForScope(stored: StoredPushRules, userId: string, scope: string): PushRuleset {
  checkScope(scope);
  return effectivePushRules(stored, userId);
}

/** `GET /pushrules/{scope}/{kind}/{ruleId}`. */
export function getRule(stored: StoredPushRules, userId: string, scope: string, kind: string, ruleId: string): PushRule {
  return locate(stored, userId, scope, kind, ruleId).rule;
}

/**
 * `PUT /pushrules/{scope}/{kind}/{ruleId}`: create a user-defined rule or replace an existing one's
 * actions / conditions / pattern. A new rule is enabled and, without `before`/`after`, becomes the most
 * important user-defined rule of its kind; an updated rule keeps its `enabled` flag and, without
 * `before`/`after`, its place. With both `before` and `after`, `before` decides (as the spec says).
 */
export function putRule(
  stored: StoredPushRules,
  userId: string,
  scope: string,
  kind: string,
  ruleId: string,
  body: unknown,
  query: { before?: string; after?: string } = {},
): StoredPushRules {
  checkScope(scope);
  if (!isKind(kind)) throw invalidParam(`Unknown push rule kind: ${describe(kind)}`);
  checkNewRuleId(kind, ruleId);
  const { before, after } = readQuery(query);
  const parsed = readBody(() => parseRuleBody(kind, body));

  const list = customRules(stored, kind);
  const existingIndex = list.findIndex((r) => r.rule_id === ruleId);
  const existing = existingIndex >= 0 ? list[existingIndex] : undefined;
  const rule: PushRule = { rule_id: ruleId, default: false, enabled: existing ? existing.enabled : true, ...parsed };
  const rest = list.filter((r) => r.rule_id !== ruleId);

  let index: number;
  if (before !== undefined) index = anchorIndex(rest, kind, ruleId, before, 'before');
  else if (after !== undefined) index = anchorIndex(rest, kind, ruleId, after, 'after') + 1;
  else index = existing ? existingIndex : 0;

  rest.splice(index, 0, rule);
  return withCustom(stored, kind, rest);
}

/** `DELETE /pushrules/{scope}/{kind}/{ruleId}`. Server-default rules cannot be deleted. */
export function deleteRule(stored: StoredPushRules, userId: string, scope: string, kind: string, ruleId: string): StoredPushRules {
  const found = locate(stored, userId, scope, kind, ruleId);
  if (found.isDefault) throw invalidParam(`Cannot delete a server-default push rule: ${ruleId}`);
  return withCustom(stored, found.kind, customRules(stored, found.kind).filter((r) => r.rule_id !== ruleId));
}

/** `GET /pushrules/{scope}/{kind}/{ruleId}/enabled`: the response body. */
export function getRuleEnabled(stored: StoredPushRules, userId: string, scope: string, kind: string, ruleId: string): { enabled: boolean } {
  return { enabled: locate(stored, userId, scope, kind, ruleId).rule.enabled };
}

/** `PUT /pushrules/{scope}/{kind}/{ruleId}/enabled` with body `{"enabled": boolean}`. */
export function setRuleEnabled(
  stored: StoredPushRules,
  userId: string,
  scope: string,
  kind: string,
  ruleId: string,
  body: unknown,
): StoredPushRules {
  const found = locate(stored, userId, scope, kind, ruleId);
  const enabled = readBody(() => {
    const obj = asObject(body, 'Request body');
    if (typeof obj.enabled !== 'boolean') throw badJson('"enabled" must be a boolean');
    return obj.enabled;
  });
  if (found.isDefault) return withDefaultChange(stored, found.pristine, { enabled });
  return withCustom(
    stored,
    found.kind,
    customRules(stored, found.kind).map((r) => (r.rule_id === ruleId ? { ...r, enabled } : r)),
  );
}

/** `GET /pushrules/{scope}/{kind}/{ruleId}/actions`: the response body. */
export function getRuleActions(stored: StoredPushRules, userId: string, scope: string, kind: string, ruleId: string): { actions: unknown[] } {
  return { actions: locate(stored, userId, scope, kind, ruleId).rule.actions };
}

/** `PUT /pushrules/{scope}/{kind}/{ruleId}/actions` with body `{"actions": [...]}`; works on default rules too. */
export function setRuleActions(
  stored: StoredPushRules,
  userId: string,
  scope: string,
  kind: string,
  ruleId: string,
  body: unknown,
): StoredPushRules {
  const found = locate(stored, userId, scope, kind, ruleId);
  const actions = readBody(() => parseActions(asObject(body, 'Request body').actions));
  if (found.isDefault) return withDefaultChange(stored, found.pristine, { actions });
  return withCustom(
    stored,
    found.kind,
    customRules(stored, found.kind).map((r) => (r.rule_id === ruleId ? { ...r, actions: cloneJson(actions) } : r)),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// lookup

type Located =
  | { kind: PushRuleKind; isDefault: true; rule: PushRule; pristine: PushRule }
  | { kind: PushRuleKind; isDefault: false; rule: PushRule };

function locate(stored: StoredPushRules, userId: string, scope: unknown, kind: unknown, ruleId: unknown): Located {
  checkScope(scope);
  if (!isKind(kind)) throw notFound(`Unknown push rule kind: ${describe(kind)}`);
  if (typeof ruleId !== 'string') throw notFound('The push rule was not found.');
  const pristine = defaultPushRules(userId)[kind].find((r) => r.rule_id === ruleId);
  if (pristine) return { kind, isDefault: true, rule: applyDefaultChanges(stored, pristine), pristine };
  const custom = customRules(stored, kind).find((r) => r.rule_id === ruleId);
  if (custom) return { kind, isDefault: false, rule: custom };
  throw notFound('The push rule was not found.');
}

function checkScope(scope: unknown): void {
  if (scope !== 'global') throw unrecognized(404, `Unknown push rule scope: ${describe(scope)} (only "global" exists)`);
}

function isKind(kind: unknown): kind is PushRuleKind {
  return typeof kind === 'string' && (PUSH_RULE_KINDS as readonly string[]).includes(kind);
}

/** A copy of the user's rules of `kind` (tolerates a stored value missing the kind). */
function customRules(stored: StoredPushRules, kind: PushRuleKind): PushRule[] {
  const custom = isPlainObject(stored?.custom) ? stored.custom : undefined;
  const list = custom && Object.hasOwn(custom, kind) ? custom[kind] : undefined;
  return Array.isArray(list) ? list.map(copyRule) : [];
}

function defaultChangesOf(stored: StoredPushRules, ruleId: string): { enabled?: boolean; actions?: unknown[] } {
  const all = isPlainObject(stored?.defaultsOverrides) ? stored.defaultsOverrides : undefined;
  const entry = all && Object.hasOwn(all, ruleId) ? all[ruleId] : undefined;
  return isPlainObject(entry) ? entry : {};
}

function applyDefaultChanges(stored: StoredPushRules, rule: PushRule): PushRule {
  const change = defaultChangesOf(stored, rule.rule_id);
  const out = copyRule(rule);
  if (typeof change.enabled === 'boolean') out.enabled = change.enabled;
  if (Array.isArray(change.actions)) out.actions = stripHistorical(cloneJson(change.actions));
  return out;
}

function copyRule(rule: PushRule): PushRule {
  const out: PushRule = {
    rule_id: rule.rule_id,
    default: rule.default,
    enabled: rule.enabled,
    actions: Array.isArray(rule.actions) ? stripHistorical(cloneJson(rule.actions)) : [],
  };
  if (Array.isArray(rule.conditions)) out.conditions = cloneJson(rule.conditions);
  if (typeof rule.pattern === 'string') out.pattern = rule.pattern;
  return out;
}

function stripHistorical(actions: unknown[]): unknown[] {
  return actions.filter((a) => !(typeof a === 'string' && HISTORICAL_ACTIONS.has(a)));
}

// ---------------------------------------------------------------------------------------------------------------
// new state

function withCustom(stored: StoredPushRules, kind: PushRuleKind, rules: PushRule[]): StoredPushRules {
  const custom = {} as Record<PushRuleKind, PushRule[]>;
  for (const k of PUSH_RULE_KINDS) custom[k] = k === kind ? rules : customRules(stored, k);
  return { custom, defaultsOverrides: copyDefaultsOverrides(stored) };
}

/**
 * Record a change to a server-default rule. A value equal to the current default is dropped rather than
 * stored, so that a user who sets a rule back to its default follows future default changes again.
 */
function withDefaultChange(
  stored: StoredPushRules,
  pristine: PushRule,
  change: { enabled?: boolean; actions?: unknown[] },
): StoredPushRules {
  const overrides = copyDefaultsOverrides(stored);
  const entry = { ...(overrides[pristine.rule_id] ?? {}), ...change };
  if (entry.enabled === pristine.enabled) delete entry.enabled;
  if (entry.actions !== undefined && jsonEqual(entry.actions, pristine.actions)) delete entry.actions;
  if (entry.enabled === undefined && entry.actions === undefined) delete overrides[pristine.rule_id];
  else overrides[pristine.rule_id] = entry;
  const custom = {} as Record<PushRuleKind, PushRule[]>;
  for (const k of PUSH_RULE_KINDS) custom[k] = customRules(stored, k);
  return { custom, defaultsOverrides: overrides };
}

function copyDefaultsOverrides(stored: StoredPushRules): StoredPushRules['defaultsOverrides'] {
  const out: StoredPushRules['defaultsOverrides'] = {};
  const all = isPlainObject(stored?.defaultsOverrides) ? stored.defaultsOverrides : {};
  for (const id of Object.keys(all)) {
    const entry = defaultChangesOf(stored, id);
    const copy: { enabled?: boolean; actions?: unknown[] } = {};
    if (typeof entry.enabled === 'boolean') copy.enabled = entry.enabled;
    if (Array.isArray(entry.actions)) copy.actions = cloneJson(entry.actions);
    if (copy.enabled !== undefined || copy.actions !== undefined) defineKey(out, id, copy);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// validation of path / query parameters

function checkNewRuleId(kind: PushRuleKind, ruleId: unknown): asserts ruleId is string {
  if (typeof ruleId !== 'string' || ruleId === '') throw invalidParam('The rule id must be a non-empty string');
  if (ruleId.startsWith('.')) throw invalidParam('Rule ids starting with "." are reserved for server-default rules');
  if (ruleId.includes('/') || ruleId.includes('\\')) throw invalidParam('Rule ids cannot contain "/" or "\\"');
  if (kind === 'room' && !ruleId.startsWith('!')) throw invalidParam('The rule id of a room rule must be a room id');
  if (kind === 'sender' && !ruleId.startsWith('@')) throw invalidParam('The rule id of a sender rule must be a user id');
}

function readQuery(query: unknown): { before?: string; after?: string } {
  if (query === undefined || query === null) return {};
  if (typeof query !== 'object' || Array.isArray(query)) throw invalidParam('Bad query parameters');
  const q = query as Record<string, unknown>;
  const param = (name: 'before' | 'after'): string | undefined => {
    const v = Object.hasOwn(q, name) ? q[name] : undefined;
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw invalidParam(`"${name}" must be a rule id`);
    return v;
  };
  return { before: param('before'), after: param('after') };
}

/** Index in `rules` (the user's rules of `kind` without the rule being put) of the anchor rule. */
function anchorIndex(rules: PushRule[], kind: PushRuleKind, ruleId: string, anchor: string, name: string): number {
  if (anchor.startsWith('.')) throw invalidParam(`"${name}" cannot name a server-default rule: ${anchor}`);
  if (anchor === ruleId) throw invalidParam(`"${name}" cannot name the rule being put`);
  const index = rules.findIndex((r) => r.rule_id === anchor);
  if (index < 0) throw invalidParam(`before/after rule not found: ${anchor} (kind ${kind})`);
  return index;
}

// ---------------------------------------------------------------------------------------------------------------
// validation of bodies (every failure: 400 M_BAD_JSON)

/** Runs `read`, turning anything but a MatrixError thrown while reading an untrusted body into M_BAD_JSON. */
function readBody<T>(read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof MatrixError) throw e;
    throw badJson('Malformed request body');
  }
}

function parseRuleBody(kind: PushRuleKind, body: unknown): Pick<PushRule, 'actions' | 'conditions' | 'pattern'> {
  const obj = asObject(body, 'Request body');
  if (!Object.hasOwn(obj, 'actions')) throw badJson('Missing "actions"');
  const actions = parseActions(obj.actions);
  switch (kind) {
    case 'override':
    case 'underride': {
      const raw = Object.hasOwn(obj, 'conditions') ? obj.conditions : undefined;
      return { actions, conditions: raw === undefined ? [] : parseConditions(raw) };
    }
    case 'content': {
      const pattern = Object.hasOwn(obj, 'pattern') ? obj.pattern : undefined;
      if (typeof pattern !== 'string') throw badJson('A content rule needs a string "pattern"');
      return { actions, pattern };
    }
    case 'room':
    case 'sender':
      return { actions };
  }
}

/** Validates an actions array: `notify`, historical actions (stripped), or `{set_tweak: string, ...}` objects. */
function parseActions(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw badJson('"actions" must be an array');
  const out: unknown[] = [];
  for (const action of value) {
    if (typeof action === 'string') {
      if (HISTORICAL_ACTIONS.has(action)) continue;
      if (action !== 'notify') throw badJson(`Unrecognised action: ${action}`);
      out.push(action);
    } else if (isPlainObject(action)) {
      if (typeof action.set_tweak !== 'string' || action.set_tweak === '') throw badJson('Unrecognised action: objects need a "set_tweak" string');
      out.push(cloneJson(action));
    } else {
      throw badJson('Each action must be a string or an object');
    }
  }
  return out;
}

const MEMBER_COUNT = /^(==|<|>|>=|<=)?[0-9]+$/;

/** Validates conditions: objects with a string `kind`; the spec's kinds must carry their parameters. */
function parseConditions(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw badJson('"conditions" must be an array');
  return value.map((condition) => {
    if (!isPlainObject(condition)) throw badJson('Each condition must be an object');
    const c = condition;
    if (typeof c.kind !== 'string') throw badJson('Each condition needs a string "kind"');
    const needString = (name: string) => {
      if (typeof c[name] !== 'string') throw badJson(`A ${c.kind} condition needs a string "${name}"`);
    };
    switch (c.kind) {
      case 'event_match':
        needString('key');
        needString('pattern');
        break;
      case 'event_property_is':
      case 'event_property_contains':
        needString('key');
        if (!Object.hasOwn(c, 'value') || !isScalarValue(c.value))
          throw badJson(`A ${c.kind} condition needs a "value" that is a string, an integer, a boolean or null`);
        break;
      case 'room_member_count':
        needString('is');
        if (!MEMBER_COUNT.test(c.is as string)) throw badJson('"is" must be a decimal integer optionally prefixed by ==, <, >, >= or <=');
        break;
      case 'sender_notification_permission':
        needString('key');
        break;
      default:
        // contains_display_name has no parameters; unrecognised kinds are kept (they never match, per spec).
        break;
    }
    return cloneJson(c);
  });
}

function isScalarValue(v: unknown): boolean {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isSafeInteger(v));
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (!isPlainObject(value)) throw badJson(`${what} must be a JSON object`);
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Deep copy of a JSON value; anything that is not JSON (or nests deeper than MAX_JSON_DEPTH) is M_BAD_JSON. */
function cloneJson<T>(value: T, depth = 0): T {
  if (depth > MAX_JSON_DEPTH) throw badJson('JSON nested too deeply');
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw badJson('Numbers must be finite');
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => cloneJson(v, depth + 1)) as T;
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      const v = value[key];
      if (v !== undefined) defineKey(out, key, cloneJson(v, depth + 1));
    }
    return out as T;
  }
  throw badJson('Not a JSON value');
}

/** Sets `key` as an own property even when it is `__proto__`. */
function defineKey(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value;
}
