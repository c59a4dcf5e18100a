/**
 * The Element Web embedding kit: `dist/element-kit/sw.js` dropped into a third-party page that registers
 * `sw.js` the way Element Web does (relative URL, classic script, no claim or reload of its own).
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveStatic } from '../scripts/static-server.mjs';
import { expect, mx, ok, register, ROOT, test } from './fixtures.ts';

const INDEX = `<!doctype html><html><head><meta charset="utf-8"><title>element-like</title></head><body>
<p id="state">loading</p>
<script src="app.js"></script></body></html>`;
// What Element Web's WebPlatform does: register "sw.js" next to index.html, as a classic script.
const APP = `navigator.serviceWorker.register('sw.js').then(() => navigator.serviceWorker.ready).then(async () => {
  const cfg = await (await fetch('config.json')).json();
  const base = cfg.default_server_config['m.homeserver'].base_url;
  // Until the worker has claimed this page, requests still reach the static server (404): a client retries.
  for (let i = 0; i < 50; i++) {
    const r = await fetch(base + '/_matrix/client/versions');
    if (r.ok) {
      document.getElementById('state').textContent = 'versions ' + (await r.json()).versions.join(',');
      return;
    }
    await new Promise((t) => setTimeout(t, 100));
  }
});`;

test('Element kit: sw.js in a third-party deployment turns its origin into the homeserver', async ({ browser }) => {
  const dir = mkdtempSync(join(tmpdir(), 'element-kit-'));
  copyFileSync(join(ROOT, 'dist/element-kit/sw.js'), join(dir, 'sw.js'));
  writeFileSync(join(dir, 'index.html'), INDEX);
  writeFileSync(join(dir, 'app.js'), APP);
  const server = await serveStatic({ root: dir, port: 0 });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ default_server_config: { 'm.homeserver': { base_url: server.url } } }));
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    await expect(page.locator('#state')).toContainText('v1.11');
    await page.waitForFunction(() => !!navigator.serviceWorker.controller); // the worker claims the page
    const wk = await ok(mx(page, 'GET', '/.well-known/matrix/client'));
    expect(wk['m.homeserver'].base_url).toBe(server.url);
    const alice = await register(page, 'alice');
    expect(alice.userId).toMatch(/^@alice:[0-9a-f]{64}$/);

    // Second visit with the worker in place keeps Element's files; then it opens offline.
    await page.reload();
    await expect(page.locator('#state')).toContainText('v1.11');
    await server.close();
    await context.setOffline(true);
    await page.reload();
    await expect(page.locator('#state')).toContainText('v1.11');
    expect((await ok(mx(page, 'GET', '/_matrix/client/v3/account/whoami', { token: alice.token }))).user_id).toBe(alice.userId);
  } finally {
    await context.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
