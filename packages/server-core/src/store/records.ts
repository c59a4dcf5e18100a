/** The records the Store keeps, one interface per object store (see schema.ts). */
import type { JsonObject, PDU } from '../kernel/types.ts';

export interface AccountRecord {
  userId: string;
  /** PBKDF2-SHA256: `pbkdf2$<iterations>$<salt b64>$<hash b64>`; absent for accounts that cannot log in with a password. */
  passwordHash?: string;
  displayname?: string;
  avatarUrl?: string;
  createdTs: number;
  deactivated?: boolean;
}

export interface DeviceRecord {
  userId: string;
  deviceId: string;
  displayName?: string;
  lastSeenTs?: number;
  lastSeenIp?: string;
}

export interface TokenRecord {
  /** The access token itself (it lives only in this origin's storage). */
  token: string;
  userId: string;
  deviceId: string;
}

export interface StoredEvent {
  eventId: string;
  roomId: string;
  /** The event in federation format (hashes, signatures); redacted in place when redacted. */
  pdu: PDU;
  /** Position in the global stream; absent for outliers (auth-chain events not in the timeline). */
  stream?: number;
  depth: number;
  type: string;
  sender: string;
  stateKey?: string;
  /** State group holding the room state before this event. */
  stateBefore?: number;
  /** State group holding the room state after this event (differs from before for state events). */
  stateAfter?: number;
  /** The local device that sent it, for `unsigned.transaction_id`. */
  txn?: { userId: string; deviceId: string; txnId: string };
  /** The redaction event that redacted this one. */
  redactedBy?: string;
  /** `m.relates_to.event_id` and `rel_type` of the content, for relations and threads. */
  relatesTo?: string;
  relType?: string;
  /** Why it was rejected, when it was. */
  rejected?: string;
  /** Received over federation, allowed by the state before it but not by the current state (spec: "Soft failure"). */
  softFailed?: boolean;
  /** For membership events, the membership (so state-map readers need not load the event). */
  membership?: string;
  /** For state events: the event this one replaced in the room state, its content and sender (`unsigned.prev_content`). */
  replacesState?: string;
  prevContent?: JsonObject;
  prevSender?: string;
  /** The redaction event, in client format, once redacted (`unsigned.redacted_because`). */
  redactedBecause?: JsonObject;
}

export interface StateGroupRecord {
  id: number;
  roomId: string;
  /** The group this one is a delta over; absent for a full snapshot. */
  prev?: number;
  /** [stateKey (`type\0state_key`), eventId] entries: the whole state for a snapshot, else the changes. */
  entries: [string, string][];
  /** Number of deltas since the last snapshot (bounded, so reading a state walks a short chain). */
  chain: number;
}

export interface RoomRecord {
  roomId: string;
  version: string;
  /** Forward extremities: the events new local events point at. */
  extremities: string[];
  maxDepth: number;
  /** The state group of the current state. */
  stateGroup: number;
  /** Published in the local room directory: 1 (IndexedDB cannot index booleans). */
  published?: 1;
  createdTs: number;
}

export interface CurrentStateRecord {
  roomId: string;
  type: string;
  stateKey: string;
  eventId: string;
}

export interface MembershipRecord {
  userId: string;
  roomId: string;
  membership: string;
  eventId: string;
  stream: number;
  /** A user forgot the room after leaving it. */
  forgotten?: boolean;
}

export interface AccountDataRecord {
  userId: string;
  roomId: string;
  type: string;
  content: JsonObject;
  stream: number;
}

export interface ReceiptRecord {
  roomId: string;
  receiptType: string;
  userId: string;
  threadId: string;
  eventId: string;
  ts: number;
  stream: number;
}

export interface ToDeviceRecord {
  userId: string;
  deviceId: string;
  stream: number;
  message: { type: string; sender: string; content: JsonObject };
}

export interface MediaRecord {
  mediaId: string;
  contentType: string;
  filename?: string;
  bytes: Uint8Array;
  uploader: string;
  createdTs: number;
}

/**
 * The StoredEvent fields derived from an event's own fields, which the Store indexes or reads without
 * loading the PDU: its state key, its membership, and what it relates to (relations, threads).
 */
export function derivedEventFields(e: { type: string; state_key?: string; content: JsonObject }): Pick<StoredEvent, 'stateKey' | 'membership' | 'relatesTo' | 'relType'> {
  const out: Pick<StoredEvent, 'stateKey' | 'membership' | 'relatesTo' | 'relType'> = {};
  if (e.state_key !== undefined) out.stateKey = e.state_key;
  if (e.type === 'm.room.member' && typeof e.content.membership === 'string') out.membership = e.content.membership;
  const rel = e.content['m.relates_to'];
  if (rel && typeof rel === 'object' && !Array.isArray(rel) && typeof rel.event_id === 'string') {
    out.relatesTo = rel.event_id;
    if (typeof rel.rel_type === 'string') out.relType = rel.rel_type;
  }
  return out;
}
