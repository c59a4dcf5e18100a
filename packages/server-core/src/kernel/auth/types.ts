import type { AuthResult, JsonObject, PDU } from '../types.ts';

/**
 * The room state the authorization rules consult: the event of a `(type, state_key)` pair, if any.
 * It must answer `('m.room.create', '')` with the room's create event, also in v12 where the create
 * event is not among an event's `auth_events`.
 */
export type StateLookup = (type: string, stateKey: string) => PDU | undefined;

/**
 * Hooks for the parts of the rules that need cryptography or knowledge the pure rules lack.
 * All optional; the defaults are documented on each.
 */
export interface CheckAuthOptions {
  /**
   * Whether `event` is validly signed by `serverName` (rule "If content has a
   * join_authorised_via_users_server key: if the event is not validly signed by the homeserver of
   * the user ID denoted by the key, reject", v8+). ed25519 is asynchronous in this kernel, so the
   * caller verifies beforehand and answers here. Default: structural only — `signatures[serverName]`
   * must be a non-empty object of strings.
   */
  hasServerSignature?: (event: PDU, serverName: string) => boolean;
  /**
   * Whether some signature in `signed` (a member event's `content.third_party_invite.signed`) is
   * valid for `publicKey` (unpadded base64, from the `m.room.third_party_invite` event's
   * `public_key` / `public_keys[].public_key`). Default: structural only — `signed.signatures` must
   * hold at least one signature string and the third-party invite event at least one public key.
   */
  verifyThirdPartyInvite?: (signed: JsonObject, publicKey: string) => boolean;
  /** The id of an event (the create event, for the first-join rule and the v12 room id rule).
   *  Default: `eventIdOf` from `events.ts` (the given `event_id`, else the reference-hash id). */
  eventId?: (event: PDU) => string | undefined;
}

export interface CheckAuthEventsOptions {
  /** Rule "If there are entries which were themselves rejected ... reject": whether an auth event
   *  was rejected. The rules cannot know; without this hook the rule is not applied. */
  isRejected?: (event: PDU) => boolean;
}

export type { AuthResult };
