/** matrix-js-sdk, the SDK Element Web is built on, inside a page, against the homeserver worker. */
import { expect, test } from './fixtures.ts';

test('matrix-js-sdk in the page: register, create a room, invite, join, send, and receive through sync', async ({ app, server }) => {
  const home = await app(); // installs the worker and waits until it controls the origin
  const page = await home.context().newPage();
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(`${server.url}/__e2e/js-sdk.html`);
  expect(await page.evaluate(() => !!navigator.serviceWorker.controller)).toBe(true);
  await page.waitForFunction(() => typeof window.sdkScenario === 'function');
  const r = await page.evaluate((base) => window.sdkScenario(base), server.url);
  expect(r.serverName).toMatch(/^[0-9a-f]{64}$/);
  expect(r.versions).toContain('v1.11');
  const want = [expect.stringMatching(/: hello from alice$/), expect.stringMatching(/: hello from bob$/), expect.stringMatching(/: how are you\?$/)];
  expect(r.alice).toEqual(want);
  expect(r.bob).toEqual(want);
});
