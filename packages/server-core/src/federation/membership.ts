/**
 * Memberships that need another server (spec: server-server API, "Inviting to a room", "Leaving
 * Rooms (Rejecting Invites)", "Knocking upon a room"). Placeholder signatures: filled in by the
 * federation membership work.
 */
import { MatrixError } from '../api/errors.ts';
import type { RoomVersionRules } from '../kernel/room-versions.ts';
import type { JsonObject, PDU } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';

/**
 * Send a signed invite event to the invitee's server (`PUT /v2/invite`); resolves with the event as
 * returned, carrying the invitee server's signature too.
 */
export async function sendInviteToRemote(_hs: Homeserver, _rules: RoomVersionRules, _eventId: string, _pdu: PDU, _inviteRoomState: JsonObject[]): Promise<PDU> {
  throw new MatrixError(501, 'M_UNRECOGNIZED', 'Inviting remote users is not implemented yet');
}

/** Reject an invite (or rescind a knock) for a room this server is not in: make_leave / send_leave through `via`. */
export async function leaveRemote(_hs: Homeserver, _userId: string, _roomId: string, _via: string[]): Promise<void> {
  throw new MatrixError(501, 'M_UNRECOGNIZED', 'Leaving remote rooms is not implemented yet');
}

/** Knock on a room this server is not in: make_knock / send_knock through `via`. */
export async function knockRemote(_hs: Homeserver, _userId: string, _roomId: string, _via: string[], _reason?: string): Promise<void> {
  throw new MatrixError(501, 'M_UNRECOGNIZED', 'Knocking on remote rooms is not implemented yet');
}
