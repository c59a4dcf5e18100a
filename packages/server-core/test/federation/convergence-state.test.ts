/**
 * The pieces the federation core's performance rests on, checked against the plain versions:
 *  - LayeredState (a state as a base plus changes, federation/state.ts) behaves as the Map it stands
 *    for, through many layers and flattening, for every read a Map offers, and refuses writes;
 *  - verifyPdu's single-encoding path (event id and signature from the same bytes, the content hash and
 *    the size from the hashed bytes) agrees with the kernel's computeEventId / verifyEventSignature /
 *    checkContentHash, across room versions, for good, tampered and oversized events.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalJsonBytes, checkContentHash, computeEventId, hashAndSignEvent, redactEvent, roomVersion, serverNameOf, signingKeyFromSeed, verifyEventSignature,
  type PDU,
} from '../../src/index.ts';
import { LayeredState } from '../../src/federation/state.ts';
import { verifyPdu } from '../../src/federation/ingest.ts';

describe('LayeredState', () => {
  it('reads like the Map it stands for, through many layers', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 5 })), { maxLength: 10 }),
        fc.array(fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 5 })), { maxLength: 4 }), { maxLength: 40 }),
        (base, layers) => {
          const plain = new Map(base.map(([k, v]) => [`k${k}`, `v${v}`]));
          let layered: Map<string, string> = new Map(plain);
          for (const changes of layers) {
            const c = changes.map(([k, v]) => [`k${k}`, `w${v}`] as const);
            for (const [k, v] of c) plain.set(k, v);
            layered = LayeredState.over(layered, c);
            expect(layered.size).toBe(plain.size);
          }
          expect(Object.fromEntries(layered)).toEqual(Object.fromEntries(plain));
          expect(new Map(layered)).toEqual(plain);
          expect([...layered.keys()].sort()).toEqual([...plain.keys()].sort());
          expect([...layered.values()].sort()).toEqual([...plain.values()].sort());
          const viaForEach: [string, string][] = [];
          layered.forEach((v, k) => viaForEach.push([k, v]));
          expect(new Map(viaForEach)).toEqual(plain);
          for (let k = 0; k <= 40; k++) {
            expect(layered.get(`k${k}`)).toBe(plain.get(`k${k}`));
            expect(layered.has(`k${k}`)).toBe(plain.has(`k${k}`));
          }
          if (layered instanceof LayeredState) expect(layered.depth).toBeLessThanOrEqual(LayeredState.MAX_LAYERS);
        },
      ),
    );
  });

  it('is read-only', () => {
    const s = LayeredState.over(new Map([['a', '1']]), [['b', '2']]);
    expect(() => s.set('c', '3')).toThrow(/read-only/);
    expect(() => s.delete('a')).toThrow(/read-only/);
    expect(() => s.clear()).toThrow(/read-only/);
    const copy = new Map(s).set('c', '3');
    expect(copy.size).toBe(3);
    expect(s.size).toBe(2);
  });
});

describe('verifyPdu agrees with the kernel', () => {
  it('on ids, signatures, content hashes and sizes, across room versions', async () => {
    const key = await signingKeyFromSeed(new Uint8Array(32).fill(9), 'ed25519:p2p');
    const name = serverNameOf(key.publicKey);
    const other = await signingKeyFromSeed(new Uint8Array(32).fill(8), 'ed25519:p2p');
    for (const version of ['3', '4', '6', '10', '11', '12']) {
      const rules = roomVersion(version)!;
      const base: PDU = {
        type: 'm.room.member', room_id: `!r:${name}`, sender: `@u:${name}`, state_key: `@u:${name}`,
        content: { membership: 'join', displayname: 'Ünïcödé 🎉', avatar_url: 'mxc://x/y' },
        origin_server_ts: 1_700_000_000_000, depth: 7, prev_events: ['$' + 'a'.repeat(43)], auth_events: ['$' + 'b'.repeat(43)],
        unsigned: { age: 5 },
      } as PDU;
      const good = await hashAndSignEvent(base, rules, name, key);
      const tampered = { ...good, content: { ...good.content, displayname: 'changed' } };
      const badSig = await hashAndSignEvent(base, rules, name, other);
      const big = await hashAndSignEvent({ ...base, content: { membership: 'join', displayname: 'é'.repeat(30_000) } } as PDU, rules, name, key);
      const justUnder = await hashAndSignEvent({ ...base, content: { membership: 'join', displayname: '' } } as PDU, rules, name, key);
      const pad = 65_536 - canonicalJsonBytes(justUnder).length;
      const atLimit = await hashAndSignEvent({ ...base, content: { membership: 'join', displayname: 'x'.repeat(pad) } } as PDU, rules, name, key);
      for (const [label, ev] of Object.entries({ good, tampered, badSig, big, atLimit })) {
        const v = await verifyPdu(ev, rules);
        const size = canonicalJsonBytes(ev).length;
        const sigOk = await verifyEventSignature(ev, rules, name, key.keyId, key.publicKey);
        expect(v.eventId, `${version} ${label} id`).toBe(computeEventId(ev, rules));
        expect(v.ok, `${version} ${label} ok`).toBe(sigOk && size <= 65_536);
        if (v.ok) expect(v.pdu, `${version} ${label} redacted?`).toEqual(checkContentHash(ev) ? ev : redactEvent(ev, rules));
      }
      // The limit itself is allowed, one byte more is not.
      expect(canonicalJsonBytes(atLimit).length).toBeGreaterThan(65_500);
    }
  });
});
