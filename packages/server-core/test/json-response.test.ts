// jsonResponse keeps its text for hosts that re-body or forward answers (the Service Worker, the bridge).
import { describe, expect, it } from 'vitest';
import { jsonResponse, jsonResponseText } from '../src/index.ts';
import { newHomeserver } from './helpers/hs.ts';

describe('jsonResponseText', () => {
  it('is the body of an unread jsonResponse, and undefined once it is read or for other responses', async () => {
    const res = jsonResponse(200, { a: 'é', n: 1 });
    expect(jsonResponseText(res)).toBe('{"a":"é","n":1}');
    expect(await res.clone().text()).toBe(jsonResponseText(res));
    await res.text();
    expect(jsonResponseText(res)).toBeUndefined();
    expect(jsonResponseText(new Response('{}'))).toBeUndefined();
  });

  it("is what the homeserver's answers say", async () => {
    const hs = await newHomeserver();
    const res = await hs.handle(new Request('http://localhost/_matrix/client/v3/nope'));
    const text = jsonResponseText(res);
    expect(JSON.parse(text!)).toMatchObject({ errcode: 'M_UNRECOGNIZED' });
    expect(await res.text()).toBe(text);
    await hs.stop();
  });
});
