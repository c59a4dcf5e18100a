/**
 * What a hostile or broken peer can send, and what must come of it (spec: server-server API,
 * "Transactions", "Checks performed on receipt of a PDU", "Request Authentication"):
 *  - a request whose X-Matrix origin is not the connected peer, or a transaction whose `origin` is not
 *    the authenticated server: refused whole;
 *  - in one transaction: a bad signature, a forged sender, an oversized event, a sender not in the
 *    room, a state change beyond the sender's power, an event for an unknown room: each rejected on
 *    its own; a content-hash mismatch: accepted redacted (not rejected); the good events land.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  authEventTypes, computeEventId, createNetworkedMemoryHomeserver, hashAndSignEvent, InProcessNetwork, roomVersion, stateKey,
  type Homeserver, type JsonObject, type PDU,
} from '../../src/index.ts';
import { xMatrixHeader } from '../../src/federation/x-matrix.ts';
import { ed25519 } from '../../src/kernel/crypto.ts';
import { enc, TestClient } from '../helpers/hs.ts';
import { waitFor } from './helpers.ts';


let net: InProcessNetwork;
let a: Homeserver;
let b: Homeserver;
let e: Homeserver;
let alice: TestClient;
let bob: TestClient;
let eve: TestClient;
let roomId: string;

beforeEach(async () => {
  net = new InProcessNetwork();
  a = await createNetworkedMemoryHomeserver(net);
  b = await createNetworkedMemoryHomeserver(net);
  // E is the peer that misbehaves: a real node (so it is in the room) whose key the test uses directly.
  e = await createNetworkedMemoryHomeserver(net, { log: () => {} });
  alice = await new TestClient(a).register('alice');
  bob = await new TestClient(b).register('bob');
  eve = await new TestClient(e).register('eve');
  roomId = (await alice.post('/_matrix/client/v3/createRoom', { preset: 'public_chat' })).body.room_id;
  for (const c of [bob, eve]) expect((await c.post(`/_matrix/client/v3/join/${enc(roomId)}?via=${a.serverName}`)).status).toBe(200);
  for (const u of [bob, eve]) await waitFor('joined on A', async () => (await a.store.rooms.membership(roomId, u.userId!))?.membership === 'join');
  // Nothing E sends on its own from now on: the test speaks for it.
  e.federation.stop();
});
afterEach(async () => {
  for (const h of [a, b, e]) await h.stop();
});

/** An event built on A's current state (its extremities, depth and auth events), signed by `signer`. */
async function craft(signer: Homeserver, fields: Partial<PDU> & { type: string; sender: string; content: JsonObject }, prev?: string[]): Promise<{ pdu: PDU; id: string }> {
  const room = (await a.store.rooms.room(roomId))!;
  const rules = roomVersion(room.version)!;
  const state = await a.store.rooms.currentState(roomId);
  const draft: PDU = {
    room_id: roomId, origin_server_ts: Date.now(), depth: room.maxDepth + 1, prev_events: prev ?? [...room.extremities], auth_events: [], ...fields,
  };
  draft.auth_events = authEventTypes(draft, rules).map(([t, k]) => state.get(stateKey(t, k))).filter((x): x is string => !!x);
  const pdu = await hashAndSignEvent(draft, rules, signer.serverName, signer.signingKey);
  return { pdu, id: computeEventId(pdu, rules) };
}

/** `PUT /send/{txnId}` from E to A with the header E's key signs, delivered as coming from `peer`. */
async function sendTxn(body: JsonObject, opts: { peer?: string; origin?: string } = {}): Promise<{ status: number; body: any }> {
  const txnId = `t${Math.random()}`;
  const uri = `/_matrix/federation/v1/send/${txnId}`;
  const origin = opts.origin ?? e.serverName;
  const auth = await xMatrixHeader(e.signingKey, origin, a.serverName, 'PUT', uri, body);
  const res = await a.handle(new Request(`http://${a.serverName}${uri}`, { method: 'PUT', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify(body) }), { peer: opts.peer ?? e.serverName });
  return { status: res.status, body: await res.json() };
}
const txn = (pdus: PDU[], origin = e.serverName): JsonObject => ({ origin, origin_server_ts: Date.now(), pdus: pdus as unknown as JsonObject[], edus: [] });
const message = (sender: string, body: string) => ({ type: 'm.room.message', sender, content: { msgtype: 'm.text', body } });

async function timelineIds(hs: Homeserver): Promise<string[]> {
  return (await hs.store.rooms.timeline(roomId, { dir: 'f', limit: 1000 })).map((x) => x.eventId);
}

describe('forged origins', () => {
  it('an X-Matrix origin that is not the connected peer: 401, nothing stored', async () => {
    const { pdu, id } = await craft(e, message(eve.userId!, 'through the wrong door'));
    const r = await sendTxn(txn([pdu]), { peer: b.serverName });
    expect(r.status).toBe(401);
    expect(r.body.errcode).toBe('M_UNAUTHORIZED');
    expect(await a.store.rooms.event(id)).toBeUndefined();
    // Its signature checks began before the header was refused (Ingester.verifyEarly): they left nothing
    // behind, and the same event through the right door lands.
    const ok = await sendTxn(txn([pdu]));
    expect(ok.status).toBe(200);
    expect(ok.body.pdus[id]).toEqual({});
    expect(await timelineIds(a)).toContain(id);
  });

  it("a transaction's PDU signatures are checked beside its X-Matrix header, not after it", async () => {
    const { pdu, id } = await craft(e, message(eve.userId!, 'checked side by side'));
    const backend = await ed25519();
    const verify = backend.verify.bind(backend);
    const steps: string[] = [];
    const spy = vi.spyOn(backend, 'verify').mockImplementation(async (pub, msg, sig) => {
      // The X-Matrix check signs a JSON object naming the method; an event's signed bytes do not.
      const what = new TextDecoder().decode(msg).includes('"method":"PUT"') ? 'x-matrix' : 'pdu';
      steps.push(`${what} starts`);
      const ok = await verify(pub, msg, sig);
      steps.push(`${what} done`);
      return ok;
    });
    try {
      const r = await sendTxn(txn([pdu]));
      expect(r.status).toBe(200);
      expect(r.body.pdus[id]).toEqual({});
    } finally {
      spy.mockRestore();
    }
    expect(steps.indexOf('pdu starts')).toBeGreaterThanOrEqual(0);
    expect(steps.indexOf('pdu starts')).toBeLessThan(steps.indexOf('x-matrix done'));
  });

  it('an event deeper than any A holds is taken without looking it up; sent again, it is looked up and not taken twice', async () => {
    const { pdu, id } = await craft(e, message(eve.userId!, 'new, then again'));
    const lookups = vi.spyOn(a.store.rooms, 'event');
    try {
      const first = await sendTxn(txn([pdu]));
      expect(first.body.pdus[id]).toEqual({});
      expect(lookups.mock.calls.map(([x]) => x)).not.toContain(id);
      const again = await sendTxn(txn([pdu]));
      expect(again.body.pdus[id]).toEqual({});
      expect(lookups.mock.calls.map(([x]) => x)).toContain(id);
    } finally {
      lookups.mockRestore();
    }
    expect((await timelineIds(a)).filter((x) => x === id)).toHaveLength(1);
  });

  it('a transaction whose origin is not the authenticated server: refused, nothing stored', async () => {
    const { pdu, id } = await craft(e, message(eve.userId!, 'claims to come from B'));
    const r = await sendTxn(txn([pdu], b.serverName));
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(await a.store.rooms.event(id)).toBeUndefined();
  });

  it('an X-Matrix header signed by E claiming to be B: 401', async () => {
    const { pdu, id } = await craft(e, message(eve.userId!, 'impersonation'));
    const r = await sendTxn(txn([pdu], b.serverName), { origin: b.serverName, peer: b.serverName });
    expect(r.status).toBe(401);
    expect(await a.store.rooms.event(id)).toBeUndefined();
  });

  it('events of a third server relayed by E are accepted when that server signed them', async () => {
    net.setLink(a.serverName, b.serverName, false);
    const sent = await bob.put(`/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/relay`, { msgtype: 'm.text', body: 'from B, via E' });
    const ev = (await b.store.rooms.event(sent.body.event_id))!;
    const r = await sendTxn(txn([ev.pdu]));
    expect(r.status).toBe(200);
    expect(r.body.pdus[ev.eventId]).toEqual({});
    expect(await timelineIds(a)).toContain(ev.eventId);
  });
});

describe('one transaction with good and bad events', () => {
  it('rejects each bad event on its own, redacts the hash mismatch, and lands the good ones', async () => {
    const good1 = await craft(e, message(eve.userId!, 'good one'));
    const good2 = await craft(e, { ...message(eve.userId!, 'good two'), depth: (await a.store.rooms.room(roomId))!.maxDepth + 2 }, [good1.id]);

    // A signature that does not verify.
    const badSig = await craft(e, message(eve.userId!, 'bad signature'));
    const sig = badSig.pdu.signatures![e.serverName];
    const keyId = Object.keys(sig)[0];
    const bytes = sig[keyId];
    badSig.pdu.signatures = { [e.serverName]: { [keyId]: (bytes[0] === 'A' ? 'B' : 'A') + bytes.slice(1) } };
    // A sender of another server (A itself), signed only by E.
    const forgedSender = await craft(e, message(alice.userId!, 'alice did not write this'));
    // Content changed after hashing and signing: the signature (over the redacted form) still holds.
    const badHash = await craft(e, message(eve.userId!, 'original text'));
    badHash.pdu.content = { msgtype: 'm.text', body: 'tampered text' };
    // Over 65,536 bytes, properly signed.
    const oversized = await craft(e, message(eve.userId!, 'x'.repeat(70_000)));
    // A user of E who never joined.
    const notInRoom = await craft(e, message(`@mallory:${e.serverName}`, 'let me in'));
    // A power-levels change beyond eve's power (she is at 0).
    const pl = (await a.store.rooms.stateEvent(roomId, 'm.room.power_levels', ''))!;
    const plGrab = await craft(e, { type: 'm.room.power_levels', state_key: '', sender: eve.userId!, content: { ...pl.pdu.content, users: { [eve.userId!]: 100 } } });
    // A room A does not know.
    const elsewhere = await craft(e, { ...message(eve.userId!, 'other room'), room_id: '!nowhere:' + e.serverName });
    // Auth events that leave out the sender's membership.
    const noMember = await craft(e, message(eve.userId!, 'no membership in auth events'));
    const memberId = (await a.store.rooms.currentState(roomId)).get(stateKey('m.room.member', eve.userId!))!;
    noMember.pdu.auth_events = noMember.pdu.auth_events!.filter((x) => x !== memberId);
    const rules = roomVersion((await a.store.rooms.room(roomId))!.version)!;
    const resigned = await hashAndSignEvent({ ...noMember.pdu, hashes: undefined, signatures: undefined } as PDU, rules, e.serverName, e.signingKey);
    noMember.pdu = resigned;
    noMember.id = computeEventId(resigned, rules);

    const all = [badSig, good1, forgedSender, badHash, oversized, notInRoom, plGrab, elsewhere, noMember, good2];
    const r = await sendTxn(txn(all.map((x) => x.pdu)));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const results = r.body.pdus as Record<string, { error?: string }>;

    // The good events and the hash mismatch: accepted.
    expect(results[good1.id]).toEqual({});
    expect(results[good2.id]).toEqual({});
    expect(results[badHash.id]).toEqual({});
    const timeline = await timelineIds(a);
    for (const x of [good1, good2, badHash]) expect(timeline).toContain(x.id);
    // The mismatch is kept redacted: no body (spec: "the event is redacted before being processed").
    const stored = (await a.store.rooms.event(badHash.id))!;
    expect(stored.pdu.content).toEqual({});
    const seenByAlice = (await alice.get(`/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(badHash.id)}`)).body;
    expect(seenByAlice.content).toEqual({});

    // Every other one: an error of its own, never in the timeline, never in the state.
    for (const [name, x] of Object.entries({ badSig, forgedSender, oversized, notInRoom, plGrab, elsewhere, noMember })) {
      expect(timeline, name).not.toContain(x.id);
      if (results[x.id] !== undefined) expect(results[x.id].error, name).toBeTruthy();
    }
    for (const [name, x] of Object.entries({ badSig, forgedSender, oversized, notInRoom, plGrab, noMember })) expect(results[x.id]?.error, name).toBeTruthy();
    expect(results[oversized.id].error).toMatch(/65536/);
    expect(results[badSig.id].error).toMatch(/signature/);
    expect(results[forgedSender.id].error).toMatch(/signature/);
    expect((await a.store.rooms.currentState(roomId)).get(stateKey('m.room.power_levels', ''))).toBe(pl.eventId);
    expect((await a.store.rooms.membership(roomId, `@mallory:${e.serverName}`))).toBeUndefined();
    expect(await a.store.rooms.room('!nowhere:' + e.serverName)).toBeUndefined();

    // Alice's client shows exactly the good ones (and the redacted one, without a body).
    const msgs = (await alice.get(`/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=50`)).body.chunk
      .filter((x: any) => x.type === 'm.room.message').map((x: any) => x.content.body ?? '(redacted)').sort();
    expect(msgs).toEqual(['(redacted)', 'good one', 'good two']);
  });

  it('a rejected event stays rejected when sent again, and its children are rejected too', async () => {
    const notInRoom = await craft(e, message(`@mallory:${e.serverName}`, 'let me in'));
    const r1 = await sendTxn(txn([notInRoom.pdu]));
    expect(r1.body.pdus[notInRoom.id].error).toBeTruthy();
    const r2 = await sendTxn(txn([notInRoom.pdu]));
    expect(r2.body.pdus[notInRoom.id].error).toBeTruthy();
    // An event citing the rejected one as an auth event.
    const child = await craft(e, message(eve.userId!, 'built on a rejected event'));
    child.pdu.auth_events = [...child.pdu.auth_events!, notInRoom.id];
    const rules = roomVersion((await a.store.rooms.room(roomId))!.version)!;
    const resigned = await hashAndSignEvent({ ...child.pdu, hashes: undefined, signatures: undefined } as PDU, rules, e.serverName, e.signingKey);
    const childId = computeEventId(resigned, rules);
    const r3 = await sendTxn(txn([resigned]));
    expect(r3.body.pdus[childId].error).toBeTruthy();
    expect(await timelineIds(a)).not.toContain(childId);
  });

  it('more than 50 PDUs in one transaction: refused', async () => {
    const pdus: PDU[] = [];
    for (let i = 0; i < 51; i++) pdus.push((await craft(e, message(eve.userId!, `n${i}`))).pdu);
    const r = await sendTxn(txn(pdus));
    expect(r.status).toBe(400);
  });
});

describe('a resident that lies in send_join', () => {
  it('state that leaves out what allowed the join: the join is refused, nothing joined', async () => {
    const c = await createNetworkedMemoryHomeserver(net, { log: () => {} });
    const carol = await new TestClient(c).register('carol');
    const handle = a.handle.bind(a);
    a.handle = async (req, remote) => {
      const res = await handle(req, remote);
      if (!new URL(req.url).pathname.includes('/send_join/')) return res;
      const body = await res.json();
      // Drop the join rules (so the public room looks invite-only).
      body.state = body.state.filter((e: PDU) => e.type !== 'm.room.join_rules');
      return new Response(JSON.stringify(body), { status: res.status, headers: { 'content-type': 'application/json' } });
    };
    const r = await carol.post(`/_matrix/client/v3/join/${enc(roomId)}?via=${a.serverName}`);
    expect(r.status).toBe(502);
    expect(r.body.error).toMatch(/does not allow the join/);
    expect((await c.store.rooms.membership(roomId, carol.userId!))?.membership).not.toBe('join');
    expect(await c.store.rooms.currentState(roomId)).toEqual(new Map());
    await c.stop();
  });
});
