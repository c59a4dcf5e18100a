/**
 * The Store's conformance suite: the access-pattern methods the homeserver relies on, run against a
 * Store over any StorageEngine (memory; IndexedDB under fake-indexeddb in Node; real IndexedDB in
 * Chromium). Like engine-conformance.ts it takes the test functions as parameters.
 */
import type { ConformanceHarness } from './engine-conformance.ts';
import type { Migration, StorageEngine } from './engine.ts';
import { MIGRATIONS } from './schema.ts';
import { Store } from './store.ts';
import type { StoredEvent } from './records.ts';

/** `make(migrations, dbName?)`: a fresh engine, or (persistent engines) the named database re-opened. */
export type StoreEngineFactory = (migrations: Migration[], dbName?: string) => Promise<StorageEngine>;

let counter = 0;

function ev(roomId: string, stream: number, extra: Partial<StoredEvent> = {}): StoredEvent {
  const eventId = `$e${stream}-${roomId}`;
  return {
    eventId, roomId, stream, depth: stream, type: 'm.room.message', sender: '@u:x',
    pdu: { type: 'm.room.message', sender: '@u:x', room_id: roomId, content: { body: `m${stream}` } },
    ...extra,
  };
}

export function storeConformance(name: string, make: StoreEngineFactory, t: ConformanceHarness, opts: { persistent?: boolean } = {}): void {
  const { describe, it, expect } = t;
  const open = async () => Store.open(await make([...MIGRATIONS]));

  describe(`Store conformance: ${name}`, () => {
    it('allocates increasing stream positions and commits a batch atomically', async () => {
      const s = await open();
      expect(s.stream).toBe(0);
      const b = s.batch();
      const p1 = b.nextStream();
      const p2 = b.nextStream();
      expect(p2 > p1).toBe(true);
      b.put('events', ev('!a', p1)).put('events', ev('!a', p2));
      expect(await b.commit()).toBe(p2);
      expect(s.stream).toBe(p2);
      // A failing batch (unknown store) leaves nothing behind and does not move the stream.
      const bad = s.batch();
      bad.put('events', ev('!a', bad.nextStream()));
      bad.put('no_such_store', { x: 1 });
      let failed = false;
      try {
        await bad.commit();
      } catch {
        failed = true;
      }
      expect(failed).toBe(true);
      expect(s.stream).toBe(p2);
      expect((await s.rooms.timeline('!a', { dir: 'b', limit: 10 })).length).toBe(2);
      await s.close();
    });

    it('reads a room timeline by stream order in both directions, bounded and limited', async () => {
      const s = await open();
      const b = s.batch();
      for (let i = 0; i < 10; i++) {
        const p = b.nextStream();
        b.put('events', ev(i % 2 ? '!odd' : '!even', p));
      }
      await b.commit();
      const back = await s.rooms.timeline('!even', { dir: 'b', limit: 3 });
      expect(back.map((e) => e.stream)).toEqual([9, 7, 5]);
      const fwd = await s.rooms.timeline('!even', { dir: 'f', from: 3, limit: 2 });
      expect(fwd.map((e) => e.stream)).toEqual([5, 7]);
      const between = await s.rooms.timeline('!odd', { dir: 'b', from: 10, to: 4, limit: 10 });
      expect(between.map((e) => e.stream)).toEqual([8, 6]);
      const since = await s.rooms.eventsSince(6, 9);
      expect(since.map((e) => e.stream)).toEqual([7, 8, 9]);
      expect((await s.rooms.event('$e3-!even'))?.stream).toBe(3);
      expect([...(await s.rooms.events(['$e3-!even', '$missing'])).keys()]).toEqual(['$e3-!even']);
      await s.close();
    });

    it('keeps state groups as deltas and snapshots, and current state by room', async () => {
      const s = await open();
      const b = s.batch();
      const g1 = b.newStateGroupId();
      const g2 = b.newStateGroupId();
      b.put('state_groups', { id: g1, roomId: '!r', entries: [['m.room.create\u0000', '$c'], ['m.room.member\u0000@a:x', '$j']], chain: 0 });
      b.put('state_groups', { id: g2, roomId: '!r', prev: g1, entries: [['m.room.member\u0000@a:x', '$j2']], chain: 1 });
      b.put('current_state', { roomId: '!r', type: 'm.room.create', stateKey: '', eventId: '$c' });
      b.put('current_state', { roomId: '!r', type: 'm.room.member', stateKey: '@a:x', eventId: '$j2' });
      b.put('current_state', { roomId: '!r2', type: 'm.room.create', stateKey: '', eventId: '$other' });
      await b.commit();
      expect([...(await s.rooms.stateGroup(g1))]).toEqual([['m.room.create\u0000', '$c'], ['m.room.member\u0000@a:x', '$j']]);
      expect(Object.fromEntries(await s.rooms.stateGroup(g2))).toEqual({ 'm.room.create\u0000': '$c', 'm.room.member\u0000@a:x': '$j2' });
      expect(Object.fromEntries(await s.rooms.currentState('!r'))).toEqual({ 'm.room.create\u0000': '$c', 'm.room.member\u0000@a:x': '$j2' });
      await s.close();
    });

    it('finds memberships by user and by room', async () => {
      const s = await open();
      const b = s.batch();
      b.put('memberships', { userId: '@a:x', roomId: '!1', membership: 'join', eventId: '$1', stream: 1 });
      b.put('memberships', { userId: '@a:x', roomId: '!2', membership: 'invite', eventId: '$2', stream: 2 });
      b.put('memberships', { userId: '@b:x', roomId: '!1', membership: 'join', eventId: '$3', stream: 3 });
      await b.commit();
      expect((await s.rooms.membershipsOfUser('@a:x')).map((m) => m.roomId)).toEqual(['!1', '!2']);
      expect((await s.rooms.membersOfRoom('!1')).map((m) => m.userId)).toEqual(['@a:x', '@b:x']);
      expect((await s.rooms.membersOfRoom('!2', 'invite')).map((m) => m.userId)).toEqual(['@a:x']);
      // overwriting moves the record between index entries
      await s.batch().put('memberships', { userId: '@a:x', roomId: '!1', membership: 'leave', eventId: '$4', stream: 4 }).commit();
      expect((await s.rooms.membersOfRoom('!1')).map((m) => m.userId)).toEqual(['@b:x']);
      expect((await s.rooms.membership('!1', '@a:x'))?.membership).toBe('leave');
      await s.close();
    });

    it('returns account data, receipts, to-device and device-list changes after a stream position', async () => {
      const s = await open();
      const b = s.batch();
      b.put('account_data', { userId: '@a:x', roomId: '', type: 'm.direct', content: {}, stream: b.nextStream() });
      b.put('account_data', { userId: '@a:x', roomId: '!r', type: 'm.tag', content: { tags: {} }, stream: b.nextStream() });
      b.put('receipts', { roomId: '!r', receiptType: 'm.read', userId: '@a:x', threadId: '', eventId: '$e', ts: 1, stream: b.nextStream() });
      b.put('to_device', { userId: '@a:x', deviceId: 'D', stream: b.nextStream(), message: { type: 't', sender: '@b:x', content: {} } });
      b.put('device_list_changes', { stream: b.nextStream(), userId: '@b:x' });
      await b.commit();
      expect((await s.userData.accountDataSince('@a:x', 0)).map((a) => a.type)).toEqual(['m.direct', 'm.tag']);
      expect((await s.userData.accountDataSince('@a:x', 1)).map((a) => a.type)).toEqual(['m.tag']);
      expect((await s.rooms.receiptsSince('!r', 2)).map((r) => r.eventId)).toEqual(['$e']);
      expect((await s.rooms.receiptsSince('!r', 3)).length).toBe(0);
      expect((await s.keys.toDevice('@a:x', 'D', 0)).length).toBe(1);
      expect((await s.keys.toDevice('@a:x', 'D', 4)).length).toBe(0);
      expect([...(await s.keys.deviceListChangesSince(4))]).toEqual(['@b:x']);
      await s.close();
    });

    it('accounts, devices, tokens and send idempotency', async () => {
      const s = await open();
      await s.batch()
        .put('accounts', { userId: '@a:x', createdTs: 1, displayname: 'Alice' })
        .put('devices', { userId: '@a:x', deviceId: 'D1' })
        .put('devices', { userId: '@a:x', deviceId: 'D2' })
        .put('access_tokens', { token: 'tok1', userId: '@a:x', deviceId: 'D1' })
        .put('txns', { userId: '@a:x', deviceId: 'D1', txnId: 't', eventId: '$e' })
        .commit();
      expect((await s.accounts.get('@a:x'))?.displayname).toBe('Alice');
      expect((await s.accounts.devices('@a:x')).map((d) => d.deviceId)).toEqual(['D1', 'D2']);
      expect((await s.accounts.token('tok1'))?.deviceId).toBe('D1');
      expect((await s.accounts.tokensOfDevice('@a:x', 'D1')).map((t) => t.token)).toEqual(['tok1']);
      expect((await s.rooms.txn('@a:x', 'D1', 't'))?.eventId).toBe('$e');
      expect(await s.rooms.txn('@a:x', 'D2', 't')).toBe(undefined);
      await s.close();
    });

    it("bounds the depth of a room's stored events: every kind of row, raised by each batch, per room", async () => {
      const s = await open();
      expect(await s.storedDepthBound('!a')).toBe(-Infinity);
      const b = s.batch();
      b.put('events', ev('!a', b.nextStream(), { depth: 7 }));
      b.put('events', { ...ev('!b', 0, { depth: 50 }), stream: undefined }); // an outlier of another room
      b.put('events', { ...ev('!a', 0, { eventId: '$rejected', depth: 40 }), stream: undefined, rejected: 'no' });
      await b.commit();
      expect(await s.storedDepthBound('!a')).toBe(40);
      expect(await s.storedDepthBound('!b')).toBe(50);
      // A batch raises the bound as it is committed (before it is durable).
      const b2 = s.batch();
      b2.put('events', ev('!a', b2.nextStream(), { eventId: '$deeper', depth: 41 }));
      const committing = b2.commit();
      expect(await s.storedDepthBound('!a')).toBe(41);
      await committing;
      await s.close();
    });

    if (opts.persistent) {
      it('finds the depth bound of a room again after a re-open, from the store', async () => {
        const db = `store-conformance-${++counter}`;
        const s1 = await Store.open(await make([...MIGRATIONS], db));
        const b = s1.batch();
        b.put('events', ev('!r', b.nextStream(), { depth: 12 }));
        b.put('events', { ...ev('!r', 0, { eventId: '$outlier', depth: 30 }), stream: undefined });
        b.put('events', ev('!q', b.nextStream(), { eventId: '$q', depth: 99 }));
        await b.commit();
        await s1.close();
        const s2 = await Store.open(await make([...MIGRATIONS], db));
        expect(await s2.storedDepthBound('!r')).toBe(30);
        expect(await s2.storedDepthBound('!q')).toBe(99);
        expect(await s2.storedDepthBound('!none')).toBe(-Infinity);
        await s2.close();
      });

      it('keeps data and counters across a re-open (a restarted worker)', async () => {
        const db = `store-conformance-${++counter}`;
        const s1 = await Store.open(await make([...MIGRATIONS], db));
        const b = s1.batch();
        const p = b.nextStream();
        b.newStateGroupId();
        b.put('events', ev('!r', p));
        await b.commit();
        await s1.close();
        const s2 = await Store.open(await make([...MIGRATIONS], db));
        expect(s2.stream).toBe(p);
        const b2 = s2.batch();
        expect(b2.nextStream() > p).toBe(true);
        expect(b2.newStateGroupId()).toBe(2);
        expect((await s2.rooms.event(`$e${p}-!r`))?.stream).toBe(p);
        await s2.close();
      });
    }
  });
}
