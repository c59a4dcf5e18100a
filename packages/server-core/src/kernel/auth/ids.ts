/**
 * Identifier helpers the authorization rules need: server names, user ids, domains.
 * Spec: appendices "Server Name", "User Identifiers" (incl. "Historical User IDs"), "Room IDs".
 */
import type { JsonObject, JsonValue } from '../types.ts';

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function hasOwn(o: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

/** `o[key]` if `o` is an object that has `key` as an own property (never the prototype's). */
export function getOwn(o: unknown, key: string): JsonValue | undefined {
  return isObject(o) && hasOwn(o, key) ? o[key] : undefined;
}

/**
 * The domain of a `&localpart:domain` identifier: everything after the first `:`.
 * Undefined for non-strings and identifiers without a `:` (e.g. v12 room ids).
 */
export function domainOf(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  const i = id.indexOf(':');
  return i < 0 ? undefined : id.slice(i + 1);
}

const DNS_NAME = /^[A-Za-z0-9.-]{1,255}$/;
const IPV6_BODY = /^[0-9A-Fa-f:.]{2,45}$/;
const PORT = /^[0-9]{1,5}$/;

/**
 * Appendices "Server Name": `hostname [":" port]`, hostname = IPv4 / "[" IPv6 "]" / dns-name.
 * (An IPv4 literal is also a dns-name by this grammar's character set.)
 */
export function isValidServerName(s: string): boolean {
  let host: string;
  let rest: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) return false;
    if (!IPV6_BODY.test(s.slice(1, close))) return false;
    host = s.slice(0, close + 1);
    rest = s.slice(close + 1);
  } else {
    const colon = s.indexOf(':');
    host = colon < 0 ? s : s.slice(0, colon);
    rest = colon < 0 ? '' : s.slice(colon);
    if (!DNS_NAME.test(host)) return false;
  }
  if (rest === '') return true;
  return rest.startsWith(':') && PORT.test(rest.slice(1));
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * A user id servers must accept in events: appendices "User Identifiers" with the "Historical
 * User IDs" relaxation (the localpart may be empty and hold any non-surrogate code point but `:`
 * and NUL), a valid server name, and at most 255 bytes. This is "the same user ID validation
 * applied to `sender`" that rooms/v12 rule 1.4 (`additional_creators`) refers to, and what
 * "valid user IDs" means for the keys of `users` in `m.room.power_levels`.
 */
export function isValidUserId(s: unknown): s is string {
  if (typeof s !== 'string' || !s.startsWith('@')) return false;
  const colon = s.indexOf(':');
  if (colon < 0) return false;
  if (utf8Length(s) > 255) return false;
  const localpart = s.slice(1, colon);
  if (localpart.includes('\u0000') || LONE_SURROGATE.test(localpart)) return false;
  return isValidServerName(s.slice(colon + 1));
}
