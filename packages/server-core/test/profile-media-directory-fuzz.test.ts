/** No input to the profile, media and directory endpoints may produce a 500. */
import { describe, expect, it } from 'vitest';
import { createMemoryHomeserver } from '../src/index.ts';
import { directoryEndpoints } from '../src/client/directory.ts';
import { mediaEndpoints } from '../src/client/media.ts';
import { profileEndpoints } from '../src/client/profile.ts';
import { TestClient } from './helpers/hs.ts';

const PARAMS = ['x', '%00', '%FF', '%E0%A4%A', '%40', '%23', '!', '%21x%3Ay', '%40a%3A', '..', '%2F..%2F', 'a'.repeat(600), '%F0%9F%98%80'];
const BODIES: (string | undefined)[] = [
  undefined, '', '{}', '[]', 'null', '0', '"s"', '{', '\u00ff', '{"a":1.5}', '{"limit":1e400}', '{"limit":123456789012345678901234567890}',
  '{"room_id":null,"visibility":null,"displayname":{},"avatar_url":7,"presence":[],"search_term":null,"filter":[],"limit":-5,"since":{}}',
  '{"filter":{"generic_search_term":"","room_types":[1]}}', '{"presence":"online","status_msg":null}', '{"displayname":null}', '{"avatar_url":""}',
];
const QUERIES = ['', '?limit=-1', '?limit=99999999999999999999', '?since=%FF', '?since=f', '?server=', '?width=x&height=1', '?timeout_ms=-1', '?filename=%00', '?animated=1', '?access_token='];

describe('profile, media and directory endpoints never answer 500', () => {
  it('survives malformed path parameters, queries and bodies', async () => {
    const errors: unknown[] = [];
    const hs = await createMemoryHomeserver({ log: (e) => errors.push(e) });
    const c = await new TestClient(hs).register('alice');
    await hs.rooms.createRoom(c.userId!, { preset: 'public_chat', visibility: 'public', room_alias_name: 'fuzz' });
    let n = 0;
    for (const e of [...mediaEndpoints, ...directoryEndpoints, ...profileEndpoints]) {
      const names = [...e.path.matchAll(/:(\w+)/g)].map((m) => m[1]);
      for (const p of PARAMS) {
        const path = names.reduce((acc, name) => acc.replace(`:${name}`, p), e.path);
        const cases: [string, string | undefined, string | null | undefined][] = [
          ...QUERIES.map((q) => [q, e.method === 'GET' ? undefined : '{}', c.token] as [string, string | undefined, string]),
          ...(e.method === 'GET' ? [] : BODIES.map((b) => ['', b, c.token] as [string, string | undefined, string])),
          ['', undefined, null],
        ];
        for (const [q, body, token] of cases) {
          const r = await c.request(e.method, path + q, undefined, { token, raw: body, headers: body === undefined ? {} : { 'content-type': 'application/json' } });
          n++;
          expect(r.status, `${e.method} ${path}${q} ${body}`).toBeLessThan(500);
        }
      }
    }
    expect(errors).toEqual([]);
    expect(n).toBeGreaterThan(2000);
  }, 120_000);
});
