/**
 * Events as clients see them (spec: client-server API, "Room Events" / ClientEvent): federation-only
 * fields dropped, `unsigned` filled in (age, transaction_id for the sending device, prev_content,
 * redacted_because), `redacts` served both top-level and in content (clients.md; rooms/v11).
 */
import type { JsonObject } from '../kernel/types.ts';
import type { StoredEvent } from '../store/records.ts';

export interface ClientEvent {
  event_id: string;
  type: string;
  content: JsonObject;
  sender: string;
  origin_server_ts: number;
  room_id: string;
  state_key?: string;
  redacts?: string;
  unsigned?: JsonObject;
}

export interface Viewer {
  userId?: string;
  deviceId?: string;
  now: number;
}

export function toClientEvent(e: StoredEvent, viewer: Viewer, includeRoomId = true): ClientEvent {
  const pdu = e.pdu;
  const out: ClientEvent = {
    event_id: e.eventId,
    type: e.type,
    content: (pdu.content ?? {}) as JsonObject,
    sender: e.sender,
    origin_server_ts: pdu.origin_server_ts ?? 0,
    room_id: e.roomId,
  };
  if (!includeRoomId) delete (out as Partial<ClientEvent>).room_id;
  if (e.stateKey !== undefined) out.state_key = e.stateKey;
  if (e.type === 'm.room.redaction') {
    const redacts = (typeof pdu.content?.redacts === 'string' ? pdu.content.redacts : pdu.redacts) as string | undefined;
    if (redacts) {
      out.redacts = redacts;
      if (out.content.redacts === undefined && !e.redactedBy) out.content = { ...out.content, redacts };
    }
  }
  const unsigned: JsonObject = { age: Math.max(0, viewer.now - out.origin_server_ts) };
  if (e.txn && viewer.userId === e.txn.userId && viewer.deviceId === e.txn.deviceId) unsigned.transaction_id = e.txn.txnId;
  if (e.prevContent) unsigned.prev_content = e.prevContent;
  if (e.replacesState) unsigned.replaces_state = e.replacesState;
  if (e.prevSender) unsigned.prev_sender = e.prevSender;
  if (e.redactedBecause) unsigned.redacted_because = e.redactedBecause as unknown as JsonObject;
  const pduUnsigned = pdu.unsigned as JsonObject | undefined;
  if (pduUnsigned?.invite_room_state) unsigned.invite_room_state = pduUnsigned.invite_room_state;
  if (pduUnsigned?.knock_room_state) unsigned.knock_room_state = pduUnsigned.knock_room_state;
  out.unsigned = unsigned;
  return out;
}

/** Stripped state (spec: client-server API, "Stripped state"): type, state_key, sender, content. */
export function strippedState(e: StoredEvent): JsonObject {
  return { type: e.type, state_key: e.stateKey ?? '', sender: e.sender, content: (e.pdu.content ?? {}) as JsonObject };
}
