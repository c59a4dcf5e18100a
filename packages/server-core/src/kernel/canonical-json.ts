/**
 * Canonical JSON (spec: appendices, "Signing JSON" > "Canonical JSON"; rooms/v6 "Canonical JSON").
 *
 * - object keys sorted by Unicode code point (a plain JS sort compares UTF-16 code units, which orders
 *   astral characters before U+E000–U+FFFF: wrong);
 * - no insignificant whitespace; UTF-8 (we return a JS string; encode it with TextEncoder);
 * - only integers in [-(2^53)+1, (2^53)-1]; `-0` becomes `0`; no floats;
 * - strings escape only `"`, `\` and the C0 controls (`\b \t \n \f \r` short forms, `\u00xx` lowercase
 *   otherwise); lone UTF-16 surrogates cannot be encoded in UTF-8 and are refused.
 */
import type { JsonObject, JsonValue } from './types.ts';

export class CanonicalJsonError extends Error {
  override name = 'CanonicalJsonError';
}

export const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2^53 - 1

/** Compare two strings by Unicode code point. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (D800–DFFF) encode code points ≥ U+10000: move them above E000–FFFF.
    if (x >= 0xd800) x = x <= 0xdfff ? x + 0x2000 : x - 0x800;
    if (y >= 0xd800) y = y <= 0xdfff ? y + 0x2000 : y - 0x800;
    return x - y;
  }
  return a.length - b.length;
}

const hasIsWellFormed = typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function';
const LONE_SURROGATE = /[\uD800-\uDFFF]/u; // in `u` mode only unpaired surrogates match

function isWellFormed(s: string): boolean {
  return hasIsWellFormed ? (s as unknown as { isWellFormed(): boolean }).isWellFormed() : !LONE_SURROGATE.test(s);
}

function encodeString(s: string): string {
  if (!isWellFormed(s)) throw new CanonicalJsonError('string contains a lone UTF-16 surrogate');
  // JSON.stringify escapes exactly what canonical JSON wants for well-formed strings:
  // ", \, \b \t \n \f \r and other C0 controls as lowercase \u00xx; nothing else.
  return JSON.stringify(s);
}

function encodeNumber(n: number): string {
  if (!Number.isInteger(n)) throw new CanonicalJsonError(`not an integer: ${n}`);
  if (n > MAX_SAFE || n < -MAX_SAFE) throw new CanonicalJsonError(`integer out of range: ${n}`);
  return n === 0 ? '0' : String(n);
}

function encode(v: unknown, out: string[]): void {
  switch (typeof v) {
    case 'string':
      out.push(encodeString(v));
      return;
    case 'number':
      out.push(encodeNumber(v));
      return;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'object': {
      if (v === null) {
        out.push('null');
        return;
      }
      if (Array.isArray(v)) {
        out.push('[');
        for (let i = 0; i < v.length; i++) {
          if (i) out.push(',');
          encode(v[i], out);
        }
        out.push(']');
        return;
      }
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
      keys.sort(compareCodePoints);
      out.push('{');
      for (let i = 0; i < keys.length; i++) {
        if (i) out.push(',');
        out.push(encodeString(keys[i]), ':');
        encode(obj[keys[i]], out);
      }
      out.push('}');
      return;
    }
    default:
      throw new CanonicalJsonError(`cannot encode a value of type ${typeof v}`);
  }
}

/** The canonical JSON text of a value. Throws CanonicalJsonError for values canonical JSON cannot hold. */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  encode(value, out);
  return out.join('');
}

const utf8 = new TextEncoder();
/** The canonical JSON of a value as UTF-8 bytes (what gets hashed and signed). */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return utf8.encode(canonicalJson(value));
}

export interface ParseOptions {
  /** Refuse numbers that are not integers (default true: canonical JSON has no floats). */
  rejectFloats?: boolean;
}

/**
 * Parse JSON text, refusing numbers that `JSON.parse` would silently round: integers beyond
 * ±(2^53−1) (and, unless `rejectFloats` is false, non-integers). `1e10` and `-0` are integers and
 * are accepted. Throws SyntaxError for malformed JSON and CanonicalJsonError for refused numbers.
 */
export function parseJson(text: string, opts: ParseOptions = {}): JsonValue {
  const value = JSON.parse(text) as JsonValue; // syntax first: a malformed text is a SyntaxError
  checkNumberTokens(text, opts.rejectFloats !== false);
  return value;
}

/** Parse JSON text that must be an object. */
export function parseJsonObject(text: string, opts?: ParseOptions): JsonObject {
  const v = parseJson(text, opts);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CanonicalJsonError('not a JSON object');
  return v;
}

const MAX_SAFE_DIGITS = '9007199254740991';

/** Scan the number tokens of (syntactically valid) JSON text, outside strings. */
function checkNumberTokens(text: string, rejectFloats: boolean): void {
  const len = text.length;
  let i = 0;
  while (i < len) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i++;
      while (i < len) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      i++;
      continue;
    }
    if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const start = i;
      let simple = true;
      i++;
      while (i < len) {
        const d = text.charCodeAt(i);
        if (d >= 0x30 && d <= 0x39) i++;
        else if (d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) {
          simple = false;
          i++;
        } else break;
      }
      checkNumberToken(text.slice(start, i), simple, rejectFloats);
      continue;
    }
    i++;
  }
}

function checkNumberToken(tok: string, simple: boolean, rejectFloats: boolean): void {
  if (simple) {
    const digits = tok.charCodeAt(0) === 0x2d ? tok.slice(1) : tok;
    if (digits.length < MAX_SAFE_DIGITS.length) return;
    if (digits.length > MAX_SAFE_DIGITS.length || digits > MAX_SAFE_DIGITS) {
      throw new CanonicalJsonError(`integer out of range: ${tok}`);
    }
    return;
  }
  // Fraction or exponent: decide on the exact decimal value, not on the rounded double
  // (`1.00000000000000001` is not an integer; `9007199254740993e0` is out of range).
  const m = /^-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(tok);
  if (!m) throw new CanonicalJsonError(`malformed number: ${tok}`);
  const [, int, frac = '', exp = '0'] = m;
  let digits = (int + frac).replace(/^0+/, '');
  let e = Number(exp) - frac.length;
  while (e < 0 && digits.endsWith('0')) {
    digits = digits.slice(0, -1);
    e++;
  }
  if (digits === '') return; // zero
  if (e < 0) {
    if (rejectFloats) throw new CanonicalJsonError(`not an integer: ${tok}`);
    if (!Number.isFinite(Number(tok))) throw new CanonicalJsonError(`number out of range: ${tok}`);
    return;
  }
  if (digits.length + e > MAX_SAFE_DIGITS.length || BigInt(digits) * 10n ** BigInt(e) > BigInt(MAX_SAFE)) {
    throw new CanonicalJsonError(`integer out of range: ${tok}`);
  }
}
