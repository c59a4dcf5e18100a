/**
 * The kernel's command-line contract as pure functions: one JSON text in, one JSON text out, or a
 * refusal with a one-line reason. `packages/node-host` wires it to stdin/stdout (`npm run -s kernel`).
 */
import { checkAuth } from './auth/index.ts';
import { decodeBase64 } from './base64.ts';
import { CanonicalJsonError, canonicalJson, compareCodePoints, parseJson, parseJsonObject } from './canonical-json.ts';
import { eventIdOf, hashAndSignEvent } from './events.ts';
import { redactEvent } from './redaction.ts';
import { roomVersion, type RoomVersionRules } from './room-versions.ts';
import { signingKeyFromSeed, signJson, verifyJson } from './signing.ts';
import { resolveDag, resolveState } from './state-res/index.ts';
import { stateKey, splitStateKey, type JsonObject, type PDU, type StateMap } from './types.ts';

/** Input the operation must refuse (exit status 2). */
export class RefusedInput extends Error {
  override name = 'RefusedInput';
}

/** `exitCode` 2: input the operation must refuse; 1: a fault of ours. */
export type CommandResult = { ok: true; output: string } | { ok: false; exitCode: 1 | 2; message: string };

type Handler = (input: JsonObject) => Promise<unknown> | unknown;

function need<T>(v: unknown, check: (v: unknown) => boolean, what: string): T {
  if (!check(v)) throw new RefusedInput(`${what} is missing or malformed`);
  return v as T;
}
const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: unknown) => typeof v === 'string';
const isArray = Array.isArray;

function rulesOf(v: unknown): RoomVersionRules {
  const id = need<string>(v, isString, 'room_version');
  const rules = roomVersion(id);
  if (!rules) throw new RefusedInput(`unknown room version ${JSON.stringify(id)}`);
  return rules;
}

function eventOf(v: unknown, what = 'event'): PDU {
  const e = need<PDU>(v, isObject, what);
  if (typeof e.type !== 'string') throw new RefusedInput(`${what}.type must be a string`);
  if (typeof e.sender !== 'string') throw new RefusedInput(`${what}.sender must be a string`);
  if (!isObject(e.content)) throw new RefusedInput(`${what}.content must be an object`);
  return e;
}

async function keyOf(input: JsonObject) {
  const seedText = need<string>(input.seed, isString, 'seed');
  let seed: Uint8Array;
  try {
    seed = decodeBase64(seedText);
  } catch {
    throw new RefusedInput('seed is not base64');
  }
  if (seed.length !== 32) throw new RefusedInput('seed must be 32 bytes');
  const keyId = need<string>(input.key_id, isString, 'key_id');
  if (!keyId.startsWith('ed25519:')) throw new RefusedInput('key_id must be an ed25519 key id');
  return signingKeyFromSeed(seed, keyId);
}

/** A room version from input, or from the create event among `events` (default "1", spec: m.room.create). */
function rulesFromEvents(input: JsonObject, events: PDU[]): RoomVersionRules {
  if (input.room_version !== undefined) return rulesOf(input.room_version);
  const create = events.find((e) => e.type === 'm.room.create' && e.state_key === '');
  if (!create) throw new RefusedInput('no room_version and no m.room.create event');
  const v = create.content.room_version ?? '1';
  return rulesOf(v);
}

/** State resolution v1 (room version 1) is not implemented: refuse rather than answer wrongly. */
function requireStateResV2(rules: RoomVersionRules): void {
  if (rules.stateRes === 'v1') throw new RefusedInput(`room version ${rules.id} uses state resolution v1, which this kernel does not implement`);
}

function stateOutput(state: StateMap): { state: [string, string, string][] } {
  const rows = [...state].map(([k, id]) => [...splitStateKey(k), id] as [string, string, string]);
  rows.sort((a, b) => compareCodePoints(a[0], b[0]) || compareCodePoints(a[1], b[1]));
  return { state: rows };
}

function eventsOf(v: unknown): PDU[] {
  const list = need<unknown[]>(v, isArray, 'events');
  return list.map((e, i) => eventOf(e, `events[${i}]`));
}

const COMMANDS: Record<string, Handler> = {
  async 'sign-json'(input) {
    const obj = need<JsonObject>(input.object, isObject, 'object');
    const server = need<string>(input.server_name, isString, 'server_name');
    return signJson(obj, server, await keyOf(input));
  },
  async 'verify-json'(input) {
    const obj = need<JsonObject>(input.object, isObject, 'object');
    const server = need<string>(input.server_name, isString, 'server_name');
    const keyId = need<string>(input.key_id, isString, 'key_id');
    let pub: Uint8Array;
    try {
      pub = decodeBase64(need<string>(input.public_key, isString, 'public_key'));
    } catch (e) {
      if (e instanceof RefusedInput) throw e;
      throw new RefusedInput('public_key is not base64');
    }
    if (pub.length !== 32) throw new RefusedInput('public_key must be 32 bytes');
    return { valid: await verifyJson(obj, server, keyId, pub) };
  },
  async 'sign-event'(input) {
    const event = eventOf(input.event);
    const rules = rulesOf(input.room_version);
    const server = need<string>(input.server_name, isString, 'server_name');
    return hashAndSignEvent(event, rules, server, await keyOf(input));
  },
  'event-id'(input) {
    const event = eventOf(input.event);
    const rules = rulesOf(input.room_version);
    if (rules.eventIdFormat === 'server' && typeof event.event_id !== 'string') {
      throw new RefusedInput(`room version ${rules.id} events carry their own event_id`);
    }
    return { event_id: eventIdOf(event, rules) };
  },
  redact(input) {
    return redactEvent(eventOf(input.event), rulesOf(input.room_version));
  },
  auth(input) {
    const event = eventOf(input.event);
    const rules = rulesOf(input.room_version);
    const authEvents = need<unknown[]>(input.auth_events, isArray, 'auth_events').map((e, i) => eventOf(e, `auth_events[${i}]`));
    // These are "the already-selected events the rules consult" (including the create event, which
    // room version 12 leaves out of `auth_events`), so the structural checks on an event's own
    // auth_events list do not apply here; two events for one (type, state_key) are ambiguous.
    const byKey = new Map<string, PDU>();
    for (const e of authEvents) {
      if (typeof e.state_key !== 'string') continue;
      const k = stateKey(e.type, e.state_key);
      if (byKey.has(k)) return { allowed: false, reason: `duplicate auth event for (${e.type}, ${e.state_key})` };
      byKey.set(k, e);
    }
    return checkAuth(event, (type, key) => byKey.get(stateKey(type, key)), rules);
  },
  resolve(input) {
    const events = eventsOf(input.events);
    const rules = rulesFromEvents(input, events);
    requireStateResV2(rules);
    const byId = new Map<string, PDU>();
    for (const e of events) {
      if (rules.eventIdFormat === 'server' && typeof e.event_id !== 'string') throw new RefusedInput(`room version ${rules.id} events carry their event_id`);
      byId.set(eventIdOf(e, rules), e);
    }
    const sets = need<unknown[]>(input.state_sets, isArray, 'state_sets').map((set, i) => {
      const ids = need<unknown[]>(set, isArray, `state_sets[${i}]`);
      const m: StateMap = new Map();
      for (const id of ids) {
        if (typeof id !== 'string') throw new RefusedInput(`state_sets[${i}] must list event ids`);
        const e = byId.get(id);
        if (!e) throw new RefusedInput(`state_sets[${i}] names an unknown event ${id}`);
        if (typeof e.state_key !== 'string') throw new RefusedInput(`${id} is not a state event`);
        m.set(stateKey(e.type, e.state_key), id);
      }
      return m;
    });
    return stateOutput(resolveState(sets, (id) => byId.get(id), rules));
  },
  'resolve-dag'(input) {
    const events = eventsOf(input.events);
    const rules = rulesFromEvents(input, events);
    requireStateResV2(rules);
    if (rules.eventIdFormat === 'server' && events.some((e) => typeof e.event_id !== 'string')) throw new RefusedInput('room version 2 events carry their event_id');
    return stateOutput(resolveDag(events, rules).state);
  },
};

export const KERNEL_COMMANDS = ['canonical', ...Object.keys(COMMANDS)];

/** Run one kernel command on its stdin text. Never throws for bad input: it refuses it. */
export async function runKernelCommand(command: string, stdin: string): Promise<CommandResult> {
  try {
    if (command === 'canonical') return { ok: true, output: canonicalJson(parseJson(stdin)) };
    const handler = Object.prototype.hasOwnProperty.call(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (!handler) return { ok: false, exitCode: 2, message: `unknown command ${JSON.stringify(command)}; commands: ${KERNEL_COMMANDS.join(', ')}` };
    const input = parseJsonObject(stdin, { rejectFloats: false });
    return { ok: true, output: JSON.stringify(await handler(input)) };
  } catch (e) {
    const err = e as Error;
    const line = (s: string) => s.replace(/\s+/g, ' ');
    if (err instanceof SyntaxError) return { ok: false, exitCode: 2, message: line(`input is not JSON: ${err.message}`) };
    if (err instanceof RefusedInput || err instanceof CanonicalJsonError) return { ok: false, exitCode: 2, message: line(err.message) };
    return { ok: false, exitCode: 1, message: line(`internal error: ${err?.stack ?? err}`) };
  }
}
