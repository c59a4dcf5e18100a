// Send idempotency (spec: client-server API, "Transaction identifiers"): a retry gets the first event's id back
// while the transaction id is remembered, TXN_RETENTION_MS (a day, as Synapse); older ones are swept away.
import { describe, expect, it } from 'vitest';
import { createMemoryHomeserver } from '../src/index.ts';
import { TXN_RETENTION_MS } from '../src/services/rooms.ts';
import { enc, TestClient } from './helpers/hs.ts';
import { waitFor } from './federation/helpers.ts';

describe('transaction ids of sends', () => {
  it('are remembered for a day, then swept: by the first send of a run and every so many sends after', async () => {
    let now = 1_800_000_000_000;
    const hs = await createMemoryHomeserver({ clock: () => now });
    const alice = await new TestClient(hs).register('alice');
    const roomId = (await alice.post('/_matrix/client/v3/createRoom', {})).body.room_id as string;
    const send = async (txn: string) => (await alice.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${txn}`, { msgtype: 'm.text', body: txn })).body.event_id as string;
    const who = await hs.auth.resolveToken(alice.token!);
    const remembered = async (txn: string) => (await hs.store.rooms.txn(alice.userId!, who!.deviceId, txn)) !== undefined;

    const first = await send('t1');
    now += TXN_RETENTION_MS - 60_000;
    expect(await send('t1')).toBe(first); // a retry within the day
    const second = await send('t2');
    now += 2 * 60_000; // t1 is now over a day old, t2 is not
    await hs.rooms.sweepTxns();
    expect(await remembered('t1')).toBe(false);
    expect(await remembered('t2')).toBe(true);
    expect(await send('t2')).toBe(second);
    const again = await send('t1'); // forgotten: a new event
    expect(again).not.toBe(first);

    // Sends sweep on their own: t2 and the new t1 expire, and a later send clears them away.
    now += TXN_RETENTION_MS + 1;
    for (let i = 0; i < 201; i++) await send(`bulk${i}`);
    await waitFor('t1 and t2 swept', async () => !(await remembered('t1')) && !(await remembered('t2')));
    expect(await remembered('bulk0')).toBe(true);
    await hs.stop();
  });
});
