/**
 * Every endpoint of the table, fed malformed input: no request from a client may yield a 500.
 * Derived from the endpoint table itself, so new endpoints are covered automatically.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMemoryHomeserver, ENDPOINTS } from '../src/index.ts';
import { TestClient } from './helpers/hs.ts';

const SAMPLE_PARAMS = ['x', '%21r%3Ax', '%40u%3Ax', '%23a%3Ax', '%24e', 'global', 'override', '.m.rule.master', '%E2%82%AC', '..', '%00', 'm.room.message'];
const BODIES: (string | undefined)[] = [undefined, '', '{}', '[]', 'null', '"s"', '12', '{"a":', '{"x":9007199254740993}', '\u00ff\u00fe', '{"user_id":5,"type":[],"content":"c","auth":7}'];

function fill(path: string, pick: (i: number) => string): string {
  let i = 0;
  return path.replace(/:[A-Za-z]+/g, () => pick(i++));
}

describe('every endpoint answers malformed input without a 500', () => {
  it('fixed samples over the whole table', async () => {
    const errors: unknown[] = [];
    const hs = await createMemoryHomeserver({ log: (e) => errors.push(e) });
    const c = await new TestClient(hs).register('fuzz');
    const roomId = (await c.post('/_matrix/client/v3/createRoom', {})).body.room_id;
    const failures: string[] = [];
    for (const e of ENDPOINTS) {
      for (const [pi, p] of [...SAMPLE_PARAMS, encodeURIComponent(roomId)].entries()) {
        const body = e.method === 'GET' ? undefined : BODIES[pi % BODIES.length];
        const r = await c.request(e.method, fill(e.path, () => p) + (pi % 3 === 0 ? '?limit=abc&from=zz&dir=q&timeout=-5' : ''), undefined, {
          raw: body,
          headers: body !== undefined ? { 'content-type': 'application/json' } : {},
        });
        if (r.status >= 500 && r.status !== 501 && r.status !== 502 && r.status !== 504) failures.push(`${e.method} ${e.path} [${p}] → ${r.status} ${JSON.stringify(r.body)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(errors).toEqual([]);
  }, 60_000);

  it('random bodies and parameters', async () => {
    const errors: unknown[] = [];
    const hs = await createMemoryHomeserver({ log: (e) => errors.push(e) });
    const c = await new TestClient(hs).register('fuzz2');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ENDPOINTS.filter((e) => e.auth !== 'server')),
        fc.array(fc.string({ maxLength: 12 }), { minLength: 6, maxLength: 6 }),
        fc.oneof(fc.json(), fc.string()),
        async (e, params, body) => {
          const path = fill(e.path, (i) => encodeURIComponent(params[i % params.length]) || 'x');
          const r = await c.request(e.method, path, undefined, { raw: e.method === 'GET' ? undefined : body, headers: { 'content-type': 'application/json' } });
          expect(r.status < 500 || r.status === 501 || r.status === 502 || r.status === 504, `${e.method} ${path} → ${r.status} ${JSON.stringify(r.body)}`).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
    expect(errors).toEqual([]);
  }, 60_000);
});
