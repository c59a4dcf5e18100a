/**
 * X-Matrix request authentication (spec: server-server API, "Request Authentication"): the method,
 * the exact request target (path and query as sent), origin, destination and JSON body are signed with
 * the origin's key and carried in an `Authorization: X-Matrix ...` header (RFC 7235 auth-params).
 * A server's key is known from its name (docs/ARCHITECTURE.md, Identity), so no key is fetched.
 */
import { decodeBase64 } from '../kernel/base64.ts';
import { signatureOf, verifyJson, type SigningKey } from '../kernel/signing.ts';
import type { JsonObject, JsonValue } from '../kernel/types.ts';

export interface XMatrixParams {
  origin: string;
  destination?: string;
  key: string;
  sig: string;
}

/** The public key a server name stands for: its 64 hex characters (undefined for any other name). */
export function publicKeyOfServer(serverName: string): Uint8Array | undefined {
  if (!/^[0-9a-f]{64}$/.test(serverName)) return undefined;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(serverName.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export async function xMatrixHeader(
  key: SigningKey, origin: string, destination: string, method: string, uri: string, content?: JsonValue,
): Promise<string> {
  const obj: JsonObject = { method, uri, origin, destination };
  if (content !== undefined) obj.content = content;
  const sig = await signatureOf(obj, key);
  return `X-Matrix origin="${origin}",destination="${destination}",key="${key.keyId}",sig="${sig}"`;
}

/**
 * Parse `X-Matrix k=v,k="v"` (RFC 9110 auth-param list: tokens or quoted strings with `\` escapes,
 * commas and optional whitespace between; names are case-insensitive, unknown ones ignored). Returns
 * undefined when malformed or incomplete.
 */
export function parseXMatrix(header: string): XMatrixParams | undefined {
  const m = /^\s*X-Matrix\s+/i.exec(header);
  if (!m) return undefined;
  let i = m[0].length;
  const s = header;
  const params: Record<string, string> = {};
  const token = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
  const unquoted = /[!#-+\--~]+/y;
  while (i < s.length) {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
    if (i >= s.length) break;
    token.lastIndex = i;
    const name = token.exec(s);
    if (!name) return undefined;
    i += name[0].length;
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (s[i] !== '=') return undefined;
    i++;
    while (s[i] === ' ' || s[i] === '\t') i++;
    let value = '';
    if (s[i] === '"') {
      i++;
      let closed = false;
      while (i < s.length) {
        const c = s[i];
        if (c === '\\') {
          if (i + 1 >= s.length) return undefined;
          value += s[i + 1];
          i += 2;
        } else if (c === '"') {
          closed = true;
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) return undefined;
    } else {
      // A token; leniently, any run of visible characters but `,` and `"` (the spec asks recipients
      // to take unquoted colons, as in `key=ed25519:abc`, and older servers send unquoted base64).
      unquoted.lastIndex = i;
      const t = unquoted.exec(s);
      if (!t) return undefined;
      value = t[0];
      i += t[0].length;
    }
    const key = name[0].toLowerCase();
    if (key in params) return undefined; // a repeated parameter is ambiguous
    params[key] = value;
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (i < s.length && s[i] !== ',') return undefined;
  }
  if (!params.origin || !params.key || !params.sig) return undefined;
  return { origin: params.origin, destination: params.destination, key: params.key, sig: params.sig };
}

/** Verify a parsed header against the request; true when the origin's key signed exactly this request. */
export async function verifyXMatrix(p: XMatrixParams, method: string, uri: string, destination: string, content: JsonValue | undefined): Promise<boolean> {
  const pub = publicKeyOfServer(p.origin);
  if (!pub) return false;
  try {
    decodeBase64(p.sig);
  } catch {
    return false;
  }
  const obj: JsonObject = { method, uri, origin: p.origin, destination, signatures: { [p.origin]: { [p.key]: p.sig } } };
  if (content !== undefined) obj.content = content;
  return verifyJson(obj, p.origin, p.key, pub);
}
