/** JSON values as the kernel sees them (after canonical-JSON-safe parsing). */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/**
 * A persistent data unit (room event) in the federation format. Fields are optional where test
 * material and older room versions omit them; the kernel checks what each operation needs.
 * Room versions 1–2 carry `prev_events` / `auth_events` as `[event_id, hashes]` pairs;
 * versions 3+ as plain event ids (spec: rooms/v3 "Event format").
 */
export interface PDU {
  event_id?: string;
  room_id?: string;
  sender: string;
  type: string;
  state_key?: string;
  content: JsonObject;
  prev_events?: EventRef[];
  auth_events?: EventRef[];
  origin_server_ts?: number;
  depth?: number;
  redacts?: string;
  origin?: string;
  membership?: string;
  prev_state?: JsonValue;
  hashes?: { sha256?: string; [alg: string]: string | undefined };
  signatures?: Record<string, Record<string, string>>;
  unsigned?: JsonObject;
  [other: string]: unknown;
}

/** An entry of `prev_events` / `auth_events`: an id (v3+) or an `[id, hashes]` pair (v1–v2). */
export type EventRef = string | [string, unknown];

/** The id an `EventRef` names. */
export function refId(ref: EventRef): string {
  return typeof ref === 'string' ? ref : ref[0];
}

/** A state key pair `(type, state_key)` encoded as one string, for maps keyed by state. */
export type StateKey = string;
export function stateKey(type: string, key: string): StateKey {
  return `${type}\u0000${key}`;
}
export function splitStateKey(k: StateKey): [string, string] {
  const i = k.indexOf('\u0000');
  return [k.slice(0, i), k.slice(i + 1)];
}

/** A room state: `(type, state_key)` → event id. */
export type StateMap = Map<StateKey, string>;

/** A rejection is a value, not an exception (architecture practice 3). */
export type AuthResult = { allowed: true } | { allowed: false; reason: string };
