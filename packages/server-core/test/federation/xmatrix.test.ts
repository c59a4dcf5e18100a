/**
 * X-Matrix request authentication (spec: server-server API, "Request Authentication"): parsing the
 * header as RFC 9110 auth-params (quoted values with commas and escapes, tokens, unquoted colons for
 * older servers, whitespace, case-insensitive names, unknown parameters), and verification end to end
 * through `hs.handle`: a missing destination is accepted, a wrong one is 401, and the signature covers
 * the method, the exact request target with its query, and the body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryHomeserver, signatureOf, signingKeyFromSeed, type Homeserver, type JsonObject, type SigningKey } from '../../src/index.ts';
import { parseXMatrix, xMatrixHeader } from '../../src/federation/x-matrix.ts';
import { serverNameOf } from '../../src/homeserver.ts';

describe('parseXMatrix', () => {
  const O = 'a'.repeat(64);
  it('parses the header servers send', () => {
    expect(parseXMatrix(`X-Matrix origin="${O}",destination="d.example",key="ed25519:p2p",sig="c2ln"`)).toEqual({ origin: O, destination: 'd.example', key: 'ed25519:p2p', sig: 'c2ln' });
  });
  it('takes quoted values with commas, equals signs and escapes', () => {
    const p = parseXMatrix(String.raw`X-Matrix origin="o,1=2",key="ed25519:a\"b\\c",sig="s\,x"`);
    expect(p).toEqual({ origin: 'o,1=2', destination: undefined, key: 'ed25519:a"b\\c', sig: 's,x' });
  });
  it('takes token values unquoted, and colons unquoted (older servers)', () => {
    expect(parseXMatrix('X-Matrix origin=example.org:8448,key=ed25519:abc,sig=c2ln+/=,destination=d')).toEqual({
      origin: 'example.org:8448', destination: 'd', key: 'ed25519:abc', sig: 'c2ln+/=',
    });
  });
  it('allows spaces and tabs around commas and equals signs, several spaces after the scheme, any case', () => {
    expect(parseXMatrix('x-matrix   Origin = "o" ,\tKEY="k" , sig="s"')).toEqual({ origin: 'o', destination: undefined, key: 'k', sig: 's' });
  });
  it('ignores unknown parameters and empty list elements', () => {
    expect(parseXMatrix('X-Matrix ,origin="o",, foo="bar, baz",key="k",sig="s",')).toEqual({ origin: 'o', destination: undefined, key: 'k', sig: 's' });
  });
  it('refuses malformed or incomplete headers', () => {
    for (const h of [
      'Bearer abc',
      'X-Matrix',
      'X-Matrixorigin="o",key="k",sig="s"',
      'X-Matrix origin="o",key="k"',
      'X-Matrix origin="o,key="k",sig="s"',
      'X-Matrix origin="o" key="k",sig="s"',
      'X-Matrix origin="o",key="k",sig="s\\',
      'X-Matrix origin="o",origin="p",key="k",sig="s"',
      'X-Matrix origin=,key="k",sig="s"',
      'X-Matrix =o,key="k",sig="s"',
      'X-Matrix origin="o"x,key="k",sig="s"',
    ]) expect(parseXMatrix(h), h).toBeUndefined();
  });
});

describe('X-Matrix verification through hs.handle', () => {
  let hs: Homeserver;
  let key: SigningKey;
  let origin: string;
  beforeAll(async () => {
    hs = await createMemoryHomeserver({ log: () => {} });
    key = await signingKeyFromSeed(new Uint8Array(32).fill(7), 'ed25519:x');
    origin = serverNameOf(key.publicKey);
  });
  afterAll(() => hs.stop());

  /** A request as sent: `target` exactly as on the wire, signed over `signed` (defaults to the same). */
  async function request(method: string, target: string, opts: { body?: JsonObject; signedBody?: JsonObject; signedUri?: string; signedMethod?: string; destination?: string | null; header?: string } = {}) {
    let header = opts.header;
    if (header === undefined) {
      const obj: JsonObject = { method: opts.signedMethod ?? method, uri: opts.signedUri ?? target, origin };
      if (opts.destination !== null) obj.destination = opts.destination ?? hs.serverName;
      else obj.destination = hs.serverName; // older servers: the receiver checks against its own name
      const content = opts.signedBody ?? opts.body;
      if (content !== undefined) obj.content = content;
      const sig = await signatureOf(obj, key);
      header = `X-Matrix origin="${origin}",key="${key.keyId}",sig="${sig}"` + (opts.destination === null ? '' : `,destination="${opts.destination ?? hs.serverName}"`);
    }
    const res = await hs.handle(new Request(`http://localhost${target}`, {
      method, headers: { authorization: header, ...(opts.body ? { 'content-type': 'application/json' } : {}) }, body: opts.body ? JSON.stringify(opts.body) : undefined,
    }));
    return { status: res.status, body: await res.json().catch(() => undefined) };
  }
  const txn = () => ({ origin, origin_server_ts: 1, pdus: [], edus: [] });
  // make_join with a query: the signed uri must carry it.
  let makeJoin = '';
  beforeAll(() => {
    makeJoin = `/_matrix/federation/v1/make_join/${encodeURIComponent('!nope:x')}/${encodeURIComponent(`@u:${origin}`)}?ver=10&ver=11`;
  });

  it('accepts a correctly signed request (a transaction)', async () => {
    const r = await request('PUT', '/_matrix/federation/v1/send/t1', { body: txn() });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({ pdus: {} });
  });
  it('accepts a header without destination (older servers), signed with this server as destination', async () => {
    const r = await request('PUT', '/_matrix/federation/v1/send/t2', { body: txn(), destination: null });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  });
  it('refuses a header for another destination with 401, even when correctly signed for it', async () => {
    const r = await request('PUT', '/_matrix/federation/v1/send/t3', { body: txn(), destination: 'c'.repeat(64) });
    expect(r.status).toBe(401);
    expect(r.body.errcode).toBe('M_UNAUTHORIZED');
  });
  it('covers the exact request target with its query', async () => {
    // Correctly signed: authentication passes, and the endpoint answers (the room is unknown here).
    const ok = await request('GET', makeJoin);
    expect(ok.status, JSON.stringify(ok.body)).toBe(404);
    // The same signature over the path without its query, or another query: 401.
    expect((await request('GET', makeJoin, { signedUri: makeJoin.split('?')[0] })).status).toBe(401);
    expect((await request('GET', makeJoin, { signedUri: makeJoin.replace('ver=10&', '') })).status).toBe(401);
    expect((await request('GET', makeJoin, { signedUri: makeJoin.replace('?ver=10&ver=11', '?ver=11&ver=10') })).status).toBe(401);
  });
  it('covers the method and the body', async () => {
    expect((await request('PUT', '/_matrix/federation/v1/send/t4', { body: txn(), signedMethod: 'POST' })).status).toBe(401);
    expect((await request('PUT', '/_matrix/federation/v1/send/t5', { body: txn(), signedBody: { ...txn(), origin_server_ts: 2 } })).status).toBe(401);
    expect((await request('PUT', '/_matrix/federation/v1/send/t6', { body: txn(), signedUri: '/_matrix/federation/v1/send/t7' })).status).toBe(401);
  });
  it('refuses missing, malformed, non-key-named and badly signed headers with 401', async () => {
    const good = await xMatrixHeader(key, origin, hs.serverName, 'PUT', '/_matrix/federation/v1/send/t8', txn());
    for (const header of [
      '',
      'X-Matrix origin="x"',
      good.replace(`origin="${origin}"`, 'origin="example.org"'),
      good.replace(`origin="${origin}"`, `origin="${'d'.repeat(64)}"`),
      good.replace(/sig="[^"]*"/, 'sig="!!!"'),
      good.replace(/sig="[^"]*"/, 'sig="AAAA"'),
    ]) {
      const r = await request('PUT', '/_matrix/federation/v1/send/t8', { body: txn(), header });
      expect(r.status, header).toBe(401);
    }
    // The unmodified header passes.
    expect((await request('PUT', '/_matrix/federation/v1/send/t8', { body: txn(), header: good })).status).toBe(200);
  });
  it('accepts the header in the forms the spec allows (unquoted, reordered, spaced, upper case)', async () => {
    const uri = '/_matrix/federation/v1/send/t9';
    const sig = await signatureOf({ method: 'PUT', uri, origin, destination: hs.serverName, content: txn() }, key);
    for (const header of [
      `X-Matrix sig="${sig}", key=${key.keyId} ,destination=${hs.serverName},\torigin=${origin}`,
      `X-MATRIX ORIGIN="${origin}",DESTINATION="${hs.serverName}",KEY="${key.keyId}",SIG="${sig}",extra="x, y"`,
    ]) {
      const r = await request('PUT', uri, { body: txn(), header });
      expect(r.status, `${header}: ${JSON.stringify(r.body)}`).toBe(200);
    }
  });
});
