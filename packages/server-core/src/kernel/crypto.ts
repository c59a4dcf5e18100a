/**
 * Cryptographic primitives of the kernel: SHA-256 and ed25519.
 *
 * - SHA-256 is synchronous (@noble/hashes): event ids and content hashes are computed in pure code.
 * - ed25519 uses WebCrypto where the runtime has it (Node ≥ 18.4, Chromium ≥ 137, Firefox ≥ 129,
 *   Safari ≥ 17): native code, measured several times faster than the pure-JS fallback. Where it is
 *   missing, @noble/curves is loaded on demand (a separate chunk, not in the main bundle).
 * This module keeps no state but a cache of imported public keys, which is safe to lose.
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

export function sha256(data: Uint8Array): Uint8Array {
  return nobleSha256(data);
}

/** The bytes of an ed25519 PKCS#8 private key, before the 32-byte seed (RFC 8410). */
const PKCS8_PREFIX = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

export interface Ed25519Backend {
  name: 'webcrypto' | 'noble';
  publicKeyFromSeed(seed: Uint8Array): Promise<Uint8Array>;
  sign(seed: Uint8Array, message: Uint8Array): Promise<Uint8Array>;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

function subtle(): SubtleCrypto | undefined {
  return (globalThis as { crypto?: Crypto }).crypto?.subtle;
}

/** Bytes as an ArrayBuffer-backed view, which WebCrypto's types insist on. */
function buf(u: Uint8Array): Uint8Array<ArrayBuffer> {
  return u.buffer instanceof ArrayBuffer ? (u as Uint8Array<ArrayBuffer>) : new Uint8Array(u);
}

function webCryptoBackend(s: SubtleCrypto): Ed25519Backend {
  const ALG = { name: 'Ed25519' } as const;
  const privateKeys = new Map<string, Promise<CryptoKey>>();
  const publicKeys = new Map<string, Promise<CryptoKey>>();
  const keyOf = (bytes: Uint8Array) => String.fromCharCode(...bytes);
  const importPrivate = (seed: Uint8Array) => {
    const k = keyOf(seed);
    let p = privateKeys.get(k);
    if (!p) {
      const der = new Uint8Array(PKCS8_PREFIX.length + 32);
      der.set(PKCS8_PREFIX);
      der.set(seed, PKCS8_PREFIX.length);
      p = s.importKey('pkcs8', der, ALG, true, ['sign']);
      if (privateKeys.size > 16) privateKeys.clear();
      privateKeys.set(k, p);
    }
    return p;
  };
  const importPublic = (pub: Uint8Array) => {
    const k = keyOf(pub);
    let p = publicKeys.get(k);
    if (!p) {
      p = s.importKey('raw', buf(pub), ALG, false, ['verify']);
      p.catch(() => publicKeys.delete(k));
      if (publicKeys.size > 4096) publicKeys.clear();
      publicKeys.set(k, p);
    }
    return p;
  };
  return {
    name: 'webcrypto',
    async publicKeyFromSeed(seed) {
      const jwk = await s.exportKey('jwk', await importPrivate(seed));
      return decodeJwkB64(jwk.x!);
    },
    async sign(seed, message) {
      return new Uint8Array(await s.sign(ALG, await importPrivate(seed), buf(message)));
    },
    async verify(publicKey, message, signature) {
      if (publicKey.length !== 32 || signature.length !== 64) return false;
      try {
        return await s.verify(ALG, await importPublic(publicKey), buf(signature), buf(message));
      } catch {
        return false;
      }
    },
  };
}

function decodeJwkB64(x: string): Uint8Array {
  const bin = atob(x.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((x.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

async function nobleBackend(): Promise<Ed25519Backend> {
  const { ed25519 } = await import('@noble/curves/ed25519.js');
  return {
    name: 'noble',
    publicKeyFromSeed: async (seed) => ed25519.getPublicKey(seed),
    sign: async (seed, message) => ed25519.sign(message, seed),
    async verify(publicKey, message, signature) {
      if (publicKey.length !== 32 || signature.length !== 64) return false;
      try {
        return ed25519.verify(signature, message, publicKey);
      } catch {
        return false;
      }
    },
  };
}

let backend: Promise<Ed25519Backend> | undefined;

/** The ed25519 implementation in use: WebCrypto when it supports Ed25519, else @noble/curves. */
export function ed25519(): Promise<Ed25519Backend> {
  backend ??= (async () => {
    const s = subtle();
    if (s) {
      try {
        const probe = webCryptoBackend(s);
        const seed = new Uint8Array(32);
        const pub = await probe.publicKeyFromSeed(seed);
        const sig = await probe.sign(seed, new Uint8Array([1]));
        if (pub.length === 32 && (await probe.verify(pub, new Uint8Array([1]), sig))) return probe;
      } catch {
        /* no Ed25519 in this runtime's WebCrypto */
      }
    }
    return nobleBackend();
  })();
  return backend;
}

/** Force a backend (benchmarks and tests compare them). */
export async function useEd25519Backend(name: 'webcrypto' | 'noble'): Promise<Ed25519Backend> {
  const s = subtle();
  backend = Promise.resolve(name === 'webcrypto' && s ? webCryptoBackend(s) : await nobleBackend());
  return backend;
}

/** A fresh random 32-byte ed25519 seed. */
export function randomSeed(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}
