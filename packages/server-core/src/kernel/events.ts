/**
 * Event hashes, ids and signatures (spec: server-server API, "Calculating the content hash for an
 * event", "Calculating the reference hash for an event", "Adding hashes and signatures to outgoing
 * events"; rooms/v1, v3, v4 "Event IDs"; rooms/v12 room ids).
 */
import { decodeBase64, encodeBase64, encodeBase64Url } from './base64.ts';
import { canonicalJsonBytes } from './canonical-json.ts';
import { sha256 } from './crypto.ts';
import { redactEvent } from './redaction.ts';
import type { RoomVersionRules } from './room-versions.ts';
import { signedPart, signJson, verifyJson, type SigningKey } from './signing.ts';
import type { JsonObject, PDU } from './types.ts';

/** SHA-256 of the event without `unsigned`, `signatures` and `hashes`. */
export function contentHash(event: PDU): Uint8Array {
  const { unsigned: _u, signatures: _s, hashes: _h, ...rest } = event;
  return sha256(canonicalJsonBytes(rest));
}

/** SHA-256 of the redacted event without `signatures` and `unsigned`. */
export function referenceHash(event: PDU, rules: RoomVersionRules): Uint8Array {
  return sha256(canonicalJsonBytes(signedPart(redactEvent(event, rules) as unknown as JsonObject)));
}

/**
 * The event id the room version's format gives this event. Room versions 1–2 carry the id inside
 * the event (chosen by its origin server); from v3 on it is derived from the reference hash and the
 * event carries none, so an `event_id` in the input is ignored here (see `eventIdOf`).
 */
export function computeEventId(event: PDU, rules: RoomVersionRules): string {
  switch (rules.eventIdFormat) {
    case 'server':
      if (typeof event.event_id !== 'string') throw new TypeError(`room version ${rules.id} events carry their event_id`);
      return event.event_id;
    case 'hash-base64': {
      const { event_id: _e, ...rest } = event;
      return '$' + encodeBase64(referenceHash(rest as PDU, rules));
    }
    case 'hash-base64url': {
      const { event_id: _e, ...rest } = event;
      return '$' + encodeBase64Url(referenceHash(rest as PDU, rules));
    }
  }
}

/** The event's identity: a given `event_id` is kept (v1–v2, and made-up ids in test material); otherwise computed. */
export function eventIdOf(event: PDU, rules: RoomVersionRules): string {
  return typeof event.event_id === 'string' ? event.event_id : computeEventId(event, rules);
}

/** Room version 12: the room id is the create event's id with `!` in place of `$` (MSC4291). */
export function roomIdFromCreateEventId(createEventId: string): string {
  return '!' + createEventId.slice(1);
}
/** Room version 12: the create event's id from a room id. */
export function createEventIdFromRoomId(roomId: string): string {
  return '$' + roomId.slice(1);
}

/** Adds `hashes.sha256` and the server's signature over the redacted event. */
export async function hashAndSignEvent<E extends PDU>(event: E, rules: RoomVersionRules, serverName: string, key: SigningKey): Promise<E> {
  const hashed = hashEvent(event);
  return { ...hashed, signatures: await eventSignatures(hashed, rules, serverName, key) } as E;
}

/** The event with its content hash (`hashes.sha256`) added. Its id is known from here on: the reference hash leaves signatures out. */
export function hashEvent<E extends PDU>(event: E): E {
  return { ...event, hashes: { sha256: encodeBase64(contentHash(event)) } } as E;
}

/** The `signatures` of a hashed event once the server has signed it: its existing ones and the server's, over the redacted event. */
export async function eventSignatures(hashed: PDU, rules: RoomVersionRules, serverName: string, key: SigningKey): Promise<NonNullable<PDU['signatures']>> {
  const redacted = redactEvent(hashed, rules) as unknown as JsonObject;
  return (await signJson(redacted, serverName, key)).signatures as NonNullable<PDU['signatures']>;
}

/**
 * Whether the event's `hashes.sha256` matches its content (a mismatch means it must be redacted).
 * `hashedBytes`, when given, is the canonical JSON of the event without `unsigned`, `signatures` and
 * `hashes`, already encoded by the caller.
 */
export function checkContentHash(event: PDU, hashedBytes?: Uint8Array): boolean {
  const h = event.hashes?.sha256;
  if (typeof h !== 'string') return false;
  let given: Uint8Array;
  try {
    given = decodeBase64(h);
  } catch {
    return false;
  }
  const want = hashedBytes ? sha256(hashedBytes) : contentHash(event);
  if (given.length !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (given[i] !== want[i]) return false;
  return true;
}

/** Whether the redacted event carries a valid signature from `serverName`'s key. */
export async function verifyEventSignature(
  event: PDU,
  rules: RoomVersionRules,
  serverName: string,
  keyId: string,
  publicKey: Uint8Array,
): Promise<boolean> {
  let redacted: JsonObject;
  try {
    redacted = redactEvent(event, rules) as unknown as JsonObject;
  } catch {
    return false;
  }
  return verifyJson(redacted, serverName, keyId, publicKey);
}
