import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeBase64, decodeBase64Url, ed25519, encodeBase64, encodeBase64Url, sha256, signingKeyFromSeed,
  signJson, useEd25519Backend, verifyJson,
} from '../src/index.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('unpadded base64', () => {
  it('matches the spec examples (appendices, Unpadded Base64)', () => {
    const enc = (s: string) => encodeBase64(new TextEncoder().encode(s));
    expect(enc('')).toBe('');
    expect(enc('f')).toBe('Zg');
    expect(enc('fo')).toBe('Zm8');
    expect(enc('foo')).toBe('Zm9v');
    expect(enc('foob')).toBe('Zm9vYg');
    expect(enc('fooba')).toBe('Zm9vYmE');
    expect(enc('foobar')).toBe('Zm9vYmFy');
  });
  it('round-trips, standard and URL-safe, and agrees with Node', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        const s = encodeBase64(b);
        expect(s).toBe(Buffer.from(b).toString('base64').replace(/=+$/, ''));
        expect(encodeBase64Url(b)).toBe(Buffer.from(b).toString('base64url'));
        expect(decodeBase64(s)).toEqual(b);
        expect(decodeBase64Url(encodeBase64Url(b))).toEqual(b);
        expect(decodeBase64(Buffer.from(b).toString('base64'))).toEqual(b); // padded input accepted
      }),
    );
  });
  it('refuses malformed input', () => {
    expect(() => decodeBase64('a')).toThrow();
    expect(() => decodeBase64('ab-_')).toThrow();
    expect(() => decodeBase64Url('ab+/')).toThrow();
    expect(() => decodeBase64('ab$c')).toThrow();
  });
});

describe('sha256', () => {
  it('hashes the standard test vectors', () => {
    expect(hex(sha256(new Uint8Array()))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(hex(sha256(new TextEncoder().encode('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

const SPEC_SEED = decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1');

describe('ed25519', () => {
  it('uses WebCrypto in Node', async () => {
    expect((await ed25519()).name).toBe('webcrypto');
  });
  for (const name of ['webcrypto', 'noble'] as const) {
    it(`${name}: derives the spec's public key and signs the spec's vector`, async () => {
      await useEd25519Backend(name);
      const key = await signingKeyFromSeed(SPEC_SEED);
      expect(encodeBase64(key.publicKey)).toBe('XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI');
      const signed = await signJson({}, 'domain', key);
      expect(signed).toEqual({
        signatures: { domain: { 'ed25519:1': 'K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ' } },
      });
      expect(await verifyJson(signed, 'domain', 'ed25519:1', key.publicKey)).toBe(true);
      expect(await verifyJson({ ...signed, extra: 1 }, 'domain', 'ed25519:1', key.publicKey)).toBe(false);
      expect(await verifyJson(signed, 'other', 'ed25519:1', key.publicKey)).toBe(false);
      expect(await verifyJson({ signatures: { domain: { 'ed25519:1': '!!' } } }, 'domain', 'ed25519:1', key.publicKey)).toBe(false);
    });
  }
  it('ignores unsigned and keeps existing signatures', async () => {
    await useEd25519Backend('webcrypto');
    const key = await signingKeyFromSeed(SPEC_SEED);
    const a = await signJson({ x: 1, unsigned: { age: 5 }, signatures: { other: { 'ed25519:9': 'abc' } } }, 'domain', key);
    expect(a.signatures).toMatchObject({ other: { 'ed25519:9': 'abc' } });
    expect(await verifyJson({ ...a, unsigned: { age: 9 } }, 'domain', 'ed25519:1', key.publicKey)).toBe(true);
  });
});
