import { describe, expect, it } from 'vitest';
import {
  checkContentHash, computeEventId, contentHash, decodeBase64, encodeBase64, eventIdOf, hashAndSignEvent,
  redactEvent, referenceHash, ROOM_VERSIONS, roomVersion, signingKeyFromSeed, verifyEventSignature, type PDU,
} from '../src/index.ts';

const SPEC_SEED = decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1');
const v = (id: string) => roomVersion(id)!;

const message: PDU = {
  room_id: '!r:domain',
  sender: '@u:domain',
  type: 'm.room.message',
  content: { body: 'hi' },
  origin_server_ts: 1000,
  depth: 3,
  prev_events: ['$a'],
  auth_events: ['$b'],
};

describe('room version records', () => {
  it('knows versions 1 to 12, each spreading the previous', () => {
    expect(Object.keys(ROOM_VERSIONS)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12']);
    expect(v('2').stateRes).toBe('v2');
    expect(v('3').eventIdFormat).toBe('hash-base64');
    expect(v('4').eventIdFormat).toBe('hash-base64url');
    expect(v('7').auth.knocking).toBe(true);
    expect(v('6').auth.knocking).toBe(false);
    expect(v('12').stateRes).toBe('v2.1');
    expect(roomVersion('13')).toBeUndefined();
    expect(roomVersion('constructor')).toBeUndefined();
  });
});

describe('event ids', () => {
  it('v1–v2 keep the server-chosen id, and refuse to invent one', () => {
    expect(eventIdOf({ ...message, event_id: '$x:domain' }, v('1'))).toBe('$x:domain');
    expect(() => computeEventId(message, v('2'))).toThrow();
  });
  it('v3 uses standard base64 of the reference hash; v4+ URL-safe', () => {
    const h = referenceHash(message, v('3'));
    expect(computeEventId(message, v('3'))).toBe('$' + Buffer.from(h).toString('base64').replace(/=+$/, ''));
    const h4 = referenceHash(message, v('4'));
    expect(computeEventId(message, v('4'))).toBe('$' + Buffer.from(h4).toString('base64url'));
    expect(computeEventId(message, v('11'))).toMatch(/^\$[A-Za-z0-9_-]{43}$/);
  });
  it('the reference hash ignores what redaction removes, signatures and unsigned', () => {
    const a = computeEventId(message, v('10'));
    expect(computeEventId({ ...message, content: { body: 'other' } }, v('10'))).toBe(a);
    expect(computeEventId({ ...message, unsigned: { age: 1 }, signatures: { x: { 'ed25519:1': 'y' } } }, v('10'))).toBe(a);
    expect(computeEventId({ ...message, depth: 4 }, v('10'))).not.toBe(a);
    // v10 protects top-level `origin`; v11 does not (rooms/v11 "Redactions").
    expect(computeEventId({ ...message, origin: 'x' }, v('10'))).not.toBe(a);
    expect(computeEventId({ ...message, origin: 'x' }, v('11'))).toBe(computeEventId(message, v('11')));
  });
  it('keeps a given event_id (made-up ids in test material)', () => {
    expect(eventIdOf({ ...message, event_id: '$made-up' }, v('11'))).toBe('$made-up');
  });
});

describe('content hash and signing', () => {
  it('content hash covers content but not unsigned, signatures or hashes', () => {
    const h = encodeBase64(contentHash(message));
    expect(encodeBase64(contentHash({ ...message, unsigned: { a: 1 }, hashes: { sha256: 'x' } }))).toBe(h);
    expect(encodeBase64(contentHash({ ...message, content: { body: 'x' } }))).not.toBe(h);
  });
  it('signs and verifies events; a redacted copy still verifies; a changed one does not', async () => {
    const key = await signingKeyFromSeed(SPEC_SEED);
    for (const id of ['1', '6', '10', '11', '12']) {
      const signed = await hashAndSignEvent(message, v(id), 'domain', key);
      expect(checkContentHash(signed)).toBe(true);
      expect(await verifyEventSignature(signed, v(id), 'domain', 'ed25519:1', key.publicKey)).toBe(true);
      const redacted = redactEvent(signed, v(id));
      expect(await verifyEventSignature(redacted, v(id), 'domain', 'ed25519:1', key.publicKey)).toBe(true);
      expect(checkContentHash(redacted)).toBe(false);
      const tampered = { ...signed, sender: '@mallory:domain' };
      expect(await verifyEventSignature(tampered, v(id), 'domain', 'ed25519:1', key.publicKey)).toBe(false);
    }
  });
  it('a bad hash field is a mismatch, not a crash', () => {
    expect(checkContentHash({ ...message, hashes: { sha256: '%%%' } })).toBe(false);
    expect(checkContentHash(message)).toBe(false);
  });
});
