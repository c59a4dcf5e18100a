/**
 * Unpadded Base64 (spec: appendices, "Unpadded Base64" and "URL-safe unpadded Base64").
 * Encoders never pad; decoders accept input with or without padding (the spec asks receivers to
 * accept padded input too) and refuse anything else that is not base64.
 */
const STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function makeDecodeTable(alphabet: string): Int16Array {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
}
const STD_DEC = makeDecodeTable(STD);
const URL_DEC = makeDecodeTable(URL);

function encode(bytes: Uint8Array, alphabet: string): string {
  let out = '';
  const n = bytes.length;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += alphabet[v >> 18] + alphabet[(v >> 12) & 63] + alphabet[(v >> 6) & 63] + alphabet[v & 63];
  }
  if (n - i === 1) {
    const v = bytes[i] << 16;
    out += alphabet[v >> 18] + alphabet[(v >> 12) & 63];
  } else if (n - i === 2) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += alphabet[v >> 18] + alphabet[(v >> 12) & 63] + alphabet[(v >> 6) & 63];
  }
  return out;
}

function decode(s: string, table: Int16Array): Uint8Array {
  let len = s.length;
  while (len > 0 && s.charCodeAt(len - 1) === 0x3d /* = */) len--;
  if (s.length - len > 2 || len % 4 === 1) throw new SyntaxError('invalid base64 length');
  const out = new Uint8Array(Math.floor((len * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? table[c] : -1;
    if (v < 0) throw new SyntaxError('invalid base64 character');
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

export const encodeBase64 = (bytes: Uint8Array): string => encode(bytes, STD);
export const encodeBase64Url = (bytes: Uint8Array): string => encode(bytes, URL);
export const decodeBase64 = (s: string): Uint8Array => decode(s, STD_DEC);
export const decodeBase64Url = (s: string): Uint8Array => decode(s, URL_DEC);
