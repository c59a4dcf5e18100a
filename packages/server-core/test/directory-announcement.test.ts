/**
 * Directory announcements (kernel/directory-announcement.ts): what a node accepts of another's signed
 * list of published rooms. The origin's name is its key, so a signature is checked without fetching.
 */
import { describe, expect, it } from 'vitest';
import {
  announcedRoomProblem, canonicalJsonBytes, checkAnnouncement, checkAnnouncementBytes, directoryAnnouncement, encodeAnnouncement, MAX_ANNOUNCED_ROOMS,
  parseAnnouncement, randomSeed, sanitizeAnnouncedRoom, signJson, signingKeyFromSeed, verifyAnnouncement, type AnnouncedRoom, type JsonObject, type SigningKey,
} from '../src/kernel/index.ts';
import { serverNameOf } from '../src/homeserver.ts';
import { publicKeyOfServer } from '../src/federation/x-matrix.ts';

const NOW = 1_700_000_000_000;
const opts = { now: NOW, maxAgeMs: 20_000, maxFutureMs: 10_000, publicKeyOf: publicKeyOfServer };

async function node(): Promise<{ key: SigningKey; name: string }> {
  const key = await signingKeyFromSeed(randomSeed(), 'ed25519:p2p');
  return { key, name: serverNameOf(key.publicKey) };
}

function room(origin: string, over: Partial<AnnouncedRoom> = {}): AnnouncedRoom {
  return {
    room_id: `!abc:${origin}`, aliases: [`#cheese:${origin}`], canonical_alias: '#cheese:elsewhere', name: 'Cheese', topic: 'Tasty',
    num_joined_members: 3, join_rule: 'public', guest_can_join: false, world_readable: true, ...over,
  };
}

async function signed(n: { key: SigningKey; name: string }, rooms: AnnouncedRoom[], ts = NOW, origin = n.name): Promise<JsonObject> {
  return signJson(directoryAnnouncement(origin, ts, rooms) as unknown as JsonObject, origin, n.key);
}

describe('directory announcements', () => {
  it('accepts a well-formed announcement signed by its origin, keeping the signed form', async () => {
    const a = await node();
    const raw = await signed(a, [room(a.name), room(a.name, { room_id: '!other', aliases: [], canonical_alias: undefined, name: undefined, topic: undefined })]);
    const v = await checkAnnouncement(raw, opts);
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.announcement.origin).toBe(a.name);
    expect(v.announcement.rooms.map((r) => r.room_id)).toEqual([`!abc:${a.name}`, '!other']);
    expect(v.raw).toBe(raw);
    // As bytes, as the gossip carries it.
    expect((await checkAnnouncementBytes(encodeAnnouncement(raw as never), opts)).ok).toBe(true);
  });

  it('keeps unknown fields under the signature but only known ones in the result', async () => {
    const a = await node();
    const raw = await signed(a, [{ ...room(a.name), 'org.example.extra': 1 } as AnnouncedRoom]);
    const v = await checkAnnouncement(raw, opts);
    expect(v.ok && (v.announcement.rooms[0] as unknown as JsonObject)['org.example.extra']).toBe(undefined);
    expect(v.ok && ((v.raw.rooms as JsonObject[])[0]['org.example.extra'])).toBe(1);
  });

  it('refuses a forged or altered signature', async () => {
    const a = await node();
    const mallory = await node();
    // Mallory signs in A's name with her key.
    const forged = await signed(mallory, [room(a.name)], NOW, a.name);
    expect(await checkAnnouncement(forged, opts)).toEqual({ ok: false, reason: 'no valid signature by the origin' });
    // A's own announcement, altered after signing.
    const good = await signed(a, [room(a.name)]);
    const altered = { ...good, rooms: [room(a.name, { num_joined_members: 9999 })] };
    expect(await checkAnnouncement(altered, opts)).toMatchObject({ ok: false, reason: 'no valid signature by the origin' });
    // Unsigned, or signatures of the wrong shape.
    const { signatures: _s, ...unsigned } = good;
    for (const sigs of [undefined, 'x', { [a.name]: 'x' }, { [a.name]: { 'ed25519:p2p': '!!' } }, { [a.name]: { 'curve:p2p': (good.signatures as any)[a.name]['ed25519:p2p'] } }]) {
      expect(await checkAnnouncement({ ...unsigned, ...(sigs === undefined ? {} : { signatures: sigs }) } as JsonObject, opts), JSON.stringify(sigs)).toMatchObject({ ok: false });
    }
    // Any ed25519 key id of the origin's own key will do.
    const otherId = await signJson(directoryAnnouncement(a.name, NOW, [room(a.name)]) as unknown as JsonObject, a.name, { ...a.key, keyId: 'ed25519:other' });
    expect((await checkAnnouncement(otherId, opts)).ok).toBe(true);
  });

  it('refuses aliases on another server, even signed by the origin', async () => {
    const a = await node();
    const b = await node();
    // (`#x:foo:<origin>` ends with `:<origin>` but its server is `foo:<origin>`.)
    for (const aliases of [[`#cheese:${b.name}`], [`#cheese:${a.name}`, `#cheese:${b.name}`], [`#x:${a.name}.evil`], [`#cheese:${a.name}x`], [`#x:foo:${a.name}`]]) {
      const v = await checkAnnouncement(await signed(a, [room(a.name, { aliases })]), opts);
      expect(v.ok, aliases.join()).toBe(false);
      expect(!v.ok && v.reason).toMatch(/not on the announcing server|invalid alias/);
    }
    // The canonical alias is the room's (any server's): not restricted.
    expect((await checkAnnouncement(await signed(a, [room(a.name, { canonical_alias: `#cheese:${b.name}` })]), opts)).ok).toBe(true);
  });

  it('refuses announcements too old or dated too far in the future', async () => {
    const a = await node();
    const at = async (ts: number) => checkAnnouncement(await signed(a, [room(a.name)], ts), opts);
    expect((await at(NOW - 20_000)).ok).toBe(true);
    expect(await at(NOW - 20_001)).toEqual({ ok: false, reason: 'too old' });
    expect((await at(NOW + 10_000)).ok).toBe(true);
    expect(await at(NOW + 10_001)).toEqual({ ok: false, reason: 'dated in the future' });
  });

  it('refuses oversized announcements: too many rooms, too many bytes', async () => {
    const a = await node();
    const many = Array.from({ length: MAX_ANNOUNCED_ROOMS + 1 }, (_, i) => room(a.name, { room_id: `!r${i}`, aliases: [] }));
    expect(await checkAnnouncement(await signed(a, many), opts)).toMatchObject({ ok: false, reason: expect.stringMatching(/more than 200 rooms/) });
    expect((await checkAnnouncement(await signed(a, many.slice(0, MAX_ANNOUNCED_ROOMS)), opts)).ok).toBe(true);
    const big = Array.from({ length: 20 }, (_, i) => room(a.name, { room_id: `!r${i}`, aliases: [], topic: 'x'.repeat(4000) }));
    const raw = await signed(a, big);
    expect(canonicalJsonBytes(raw).length).toBeGreaterThan(64 * 1024);
    expect(await checkAnnouncement(raw, opts)).toMatchObject({ ok: false, reason: expect.stringMatching(/larger than/) });
    expect(await checkAnnouncementBytes(canonicalJsonBytes(raw), opts)).toMatchObject({ ok: false, reason: expect.stringMatching(/larger than/) });
  });

  it('refuses malformed announcements', async () => {
    const a = await node();
    const bad: [string, unknown][] = [
      ['not an object', [1]],
      ['wrong type', { ...(await signed(a, [])), type: 'm.other' }],
      ['wrong version', { ...(await signed(a, [])), version: 2 }],
      ['origin not a key', await signed(a, [], NOW, 'example.org')],
      ['bad room id', await signed(a, [room(a.name, { room_id: 'abc' })])],
      ['room twice', await signed(a, [room(a.name), room(a.name)])],
      ['negative members', await signed(a, [room(a.name, { num_joined_members: -1 })])],
      // (Floats cannot be signed: canonical JSON has none. Refused before the signature is looked at.)
      ['fractional members', { ...(await signed(a, [])), rooms: [room(a.name, { num_joined_members: 1.5 })] }],
      ['bad avatar', await signed(a, [room(a.name, { avatar_url: 'https://x' })])],
      ['bad canonical alias', await signed(a, [room(a.name, { canonical_alias: 'cheese' })])],
      ['no join rule', await signed(a, [{ ...room(a.name), join_rule: undefined } as unknown as AnnouncedRoom])],
      ['too many aliases', await signed(a, [room(a.name, { aliases: Array.from({ length: 17 }, (_, i) => `#a${i}:${a.name}`) })])],
      ['rooms not a list', { ...(await signed(a, [])), rooms: {} }],
      ['ts not an integer', { ...(await signed(a, [])), ts: NOW + 0.5 }],
    ];
    for (const [what, raw] of bad) {
      const v = await checkAnnouncement(raw, opts);
      expect(v.ok, what).toBe(false);
      // Each for its own defect, not for a broken signature.
      expect(!v.ok && v.reason, what).not.toBe('no valid signature by the origin');
    }
    for (const bytes of [new TextEncoder().encode('{"a":'), new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]), new TextEncoder().encode('{"x":1.5}')]) {
      expect(await checkAnnouncementBytes(bytes, opts)).toMatchObject({ ok: false });
    }
  });

  it('parses and checks the cheap parts first: the signature is verified separately', async () => {
    const a = await node();
    const good = await signed(a, [room(a.name)]);
    const broken = { ...good, signatures: { [a.name]: { 'ed25519:p2p': 'A'.repeat(86) } } };
    // Parsing does not look at the signature: origin and ts are known before the expensive check.
    const p = parseAnnouncement(broken, opts);
    expect(p.ok && [p.announcement.origin, p.announcement.ts, p.bytes.length]).toEqual([a.name, NOW, canonicalJsonBytes(broken).length]);
    expect(p.ok && (await verifyAnnouncement(p))).toEqual({ ok: false, reason: 'no valid signature by the origin' });
    const q = parseAnnouncement(good, opts);
    expect(q.ok && (await verifyAnnouncement(q)).ok).toBe(true);
    expect(parseAnnouncement({ ...good, ts: NOW - 20_001 }, opts)).toEqual({ ok: false, reason: 'too old' });
  });

  it('exports the per-room check, and a sanitizer a sender uses so that one odd room cannot sink its whole announcement', async () => {
    const a = await node();
    const b = await node();
    const odd = room(a.name, { join_rule: 'x'.repeat(300) });
    expect(announcedRoomProblem(odd, a.name)).toMatch(/join_rule/);
    expect(announcedRoomProblem(room(a.name), a.name)).toBeUndefined();
    // A room whose required fields cannot be announced is dropped; optional fields are clipped or left out.
    expect(sanitizeAnnouncedRoom(odd, a.name)).toBeUndefined();
    expect(sanitizeAnnouncedRoom(room(a.name, { room_id: '!has space' }), a.name)).toBeUndefined();
    const messy = room(a.name, {
      name: 'n'.repeat(2000), topic: '\u{1F600}'.repeat(3000), avatar_url: 'https://x', room_type: 't'.repeat(300), canonical_alias: '#bad alias:x',
      aliases: [`#ok:${a.name}`, `#ok:${a.name}`, `#theirs:${b.name}`, `#x:foo:${a.name}`, '#sp ace:' + a.name, ...Array.from({ length: 20 }, (_, i) => `#a${i}:${a.name}`)],
    });
    const clean = sanitizeAnnouncedRoom(messy, a.name)!;
    expect(announcedRoomProblem(clean, a.name)).toBeUndefined();
    expect(clean.name).toHaveLength(1024);
    expect(clean.topic!.length).toBeLessThanOrEqual(4096);
    expect(clean.topic!.endsWith('\u{1F600}')).toBe(true);
    expect([clean.avatar_url, clean.room_type, clean.canonical_alias]).toEqual([undefined, undefined, undefined]);
    expect(clean.aliases[0]).toBe(`#ok:${a.name}`);
    expect(clean.aliases).toHaveLength(16);
    expect(new Set(clean.aliases).size).toBe(16);
    expect(clean.aliases.every((x) => x.endsWith(`:${a.name}`) && !x.includes('foo') && !x.includes(' '))).toBe(true);
    // An announcement of sanitized rooms passes.
    expect((await checkAnnouncement(await signed(a, [clean]), opts)).ok).toBe(true);
  });
});
