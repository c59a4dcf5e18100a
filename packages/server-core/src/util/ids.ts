/** Identifiers: random ids, user id grammar (spec: appendices, "Identifier Grammar"). */
import { encodeBase64Url } from '../kernel/base64.ts';

export function randomId(bytes = 18): string {
  return encodeBase64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
/** A device id like Synapse's: 10 upper-case letters. */
export function randomDeviceId(): string {
  const b = crypto.getRandomValues(new Uint8Array(10));
  return Array.from(b, (x) => ALNUM[x % 26]).join('');
}

/** Localparts of user ids we create: a-z 0-9 . _ = - / + (appendices, "User Identifiers"). */
export const LOCALPART = /^[a-z0-9._=\-/+]+$/;

/** Whether `s` contains whitespace or a control character (none may appear in an alias or a room id: appendices, "Identifier Grammar"). */
export function hasSpaceOrControl(s: string): boolean {
  return /[\s\x00-\x1f\x7f]/.test(s);
}

/** The server part of an id: everything after its first `:` ('' when there is none). */
export function serverOf(id: string): string {
  const i = id.indexOf(':');
  return i < 0 ? '' : id.slice(i + 1);
}
export function localpartOf(userId: string): string {
  const i = userId.indexOf(':');
  return userId.slice(1, i < 0 ? undefined : i);
}
/** A syntactically valid user id `@localpart:server` (historical localparts allowed, as for remote users). */
export function isUserId(s: unknown): s is string {
  return typeof s === 'string' && /^@[\x21-\x39\x3b-\x7e]+:[^\s:]+(?::\d+)?$/.test(s) && s.length <= 255;
}
export function isRoomId(s: unknown): s is string {
  return typeof s === 'string' && s.startsWith('!') && s.length <= 255 && s.length > 1;
}
export function isRoomAlias(s: unknown): s is string {
  return typeof s === 'string' && /^#[^:]+:.+$/.test(s) && s.length <= 255;
}
