/**
 * Signing JSON objects (spec: appendices, "Signing Details" and "Checking for a Signature"):
 * the signature covers the canonical JSON of the object without `signatures` and `unsigned`.
 */
import { decodeBase64, encodeBase64 } from './base64.ts';
import { canonicalJsonBytes } from './canonical-json.ts';
import { ed25519 } from './crypto.ts';
import type { JsonObject } from './types.ts';

export interface SigningKey {
  /** e.g. `ed25519:1` */
  keyId: string;
  seed: Uint8Array;
  publicKey: Uint8Array;
}

export async function signingKeyFromSeed(seed: Uint8Array, keyId = 'ed25519:1'): Promise<SigningKey> {
  if (seed.length !== 32) throw new RangeError('an ed25519 seed has 32 bytes');
  if (!keyId.startsWith('ed25519:')) throw new RangeError('only ed25519 keys are supported');
  return { keyId, seed, publicKey: await (await ed25519()).publicKeyFromSeed(seed) };
}

/** The part of an object a signature covers. */
export function signedPart(obj: JsonObject): JsonObject {
  const { signatures: _s, unsigned: _u, ...rest } = obj;
  return rest;
}

/** The unpadded-base64 signature of an object by a key. */
export async function signatureOf(obj: JsonObject, key: SigningKey): Promise<string> {
  const sig = await (await ed25519()).sign(key.seed, canonicalJsonBytes(signedPart(obj)));
  return encodeBase64(sig);
}

/** A copy of `obj` with `key`'s signature added under `signatures[entity][keyId]`; existing signatures are kept. */
export async function signJson<T extends JsonObject>(obj: T, entity: string, key: SigningKey): Promise<T> {
  const sig = await signatureOf(obj, key);
  const previous = (obj.signatures ?? {}) as Record<string, Record<string, string>>;
  return {
    ...obj,
    signatures: { ...previous, [entity]: { ...(previous[entity] ?? {}), [key.keyId]: sig } },
  };
}

/**
 * Whether `obj` carries a valid signature by `entity` with `keyId`, checked with `publicKey`.
 * Missing entries, undecodable base64 and wrong algorithms are `false`, never exceptions.
 */
export async function verifyJson(obj: JsonObject, entity: string, keyId: string, publicKey: Uint8Array): Promise<boolean> {
  if (!keyId.startsWith('ed25519:')) return false;
  const sigs = obj.signatures;
  if (typeof sigs !== 'object' || sigs === null || Array.isArray(sigs)) return false;
  const byEntity = (sigs as JsonObject)[entity];
  if (typeof byEntity !== 'object' || byEntity === null || Array.isArray(byEntity)) return false;
  const sig = (byEntity as JsonObject)[keyId];
  if (typeof sig !== 'string') return false;
  let sigBytes: Uint8Array;
  let message: Uint8Array;
  try {
    sigBytes = decodeBase64(sig);
    message = canonicalJsonBytes(signedPart(obj));
  } catch {
    return false;
  }
  return (await ed25519()).verify(publicKey, message, sigBytes);
}
