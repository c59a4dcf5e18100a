/**
 * The homeserver worker in real Chromium: it controls the page and answers /_matrix with no server
 * behind it; it survives being stopped mid-session; the app opens offline; Element's media job.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  createRoom, expect, messagesIn, mx, ok, openApp, register, ROOT, send, startServer, stopWorkers, sync, test, waitControlled, WEB_DIR, workerStatus,
} from './fixtures.ts';

test('the worker controls the page and answers /_matrix itself: the static server has no /_matrix', async ({ app, server, request }) => {
  const page = await app();
  const scriptURL = await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL);
  expect(scriptURL).toBe(`${server.url}/sw.js`);

  // Straight to the static server (not through the browser): no /_matrix there.
  const direct = await request.get(`${server.url}/_matrix/client/versions`);
  expect(direct.status()).toBe(404);
  expect(await direct.text()).toBe('not found\n');
  const sw = await request.get(`${server.url}/sw.js`);
  expect(sw.headers()['content-type']).toBe('application/javascript; charset=utf-8');
  expect(sw.headers()['service-worker-allowed']).toBe('/');
  expect(sw.headers()['cache-control']).toBe('no-cache');

  // Through the page: the worker answers.
  const versions = await ok(mx(page, 'GET', '/_matrix/client/versions'));
  expect(versions.versions).toContain('v1.11');
  const wellKnown = await ok(mx(page, 'GET', '/.well-known/matrix/client'));
  expect(wellKnown['m.homeserver'].base_url).toBe(server.url);
  const unknown = await mx(page, 'GET', '/_matrix/client/v3/definitely-not-an-endpoint');
  expect(unknown.status).toBe(404);
  expect(unknown.body.errcode).toBe('M_UNRECOGNIZED');
  // Any origin: a client pointed at another homeserver URL still reaches this one (no network needed).
  const elsewhere = await page.evaluate(async () => (await fetch('https://matrix.example.org/_matrix/client/versions')).status);
  expect(elsewhere).toBe(200);

  // The status panel: server name (the node's key, hex), worker state, storage.
  const status = await workerStatus(page);
  expect(status.serverName).toMatch(/^[0-9a-f]{64}$/);
  await expect(page.locator('#server-name')).toHaveText(status.serverName);
  await expect(page.locator('#worker-state')).toHaveAttribute('data-state', 'ok');
  await expect(page.locator('#worker-state')).toContainText('activated');
  await expect(page.locator('#storage')).toContainText(' of ');
  // The chat client was mounted (whatever it renders).
  await expect(page.locator('#chat')).not.toBeEmpty();
  // The node's data is in IndexedDB.
  await ok(mx(page, 'GET', '/_matrix/client/v3/login'));
  expect(await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name))).toContain('matrix-p2p');
});

test('a worker stopped mid-session restarts on the next request, losing nothing; a pending /sync recovers', async ({ app }) => {
  const page = await app();
  const alice = await register(page, 'alice');
  const roomId = await createRoom(page, alice, { name: 'restarts' });
  await send(page, alice, roomId, 'before the stop');
  const first = await sync(page, alice);
  expect(messagesIn(first, roomId)).toEqual(['before the stop']);
  const before = await workerStatus(page);

  // A client long-poll, retrying on failure as real clients do.
  await page.evaluate(
    ({ since, token }) => {
      const w = window as unknown as { poll: Promise<unknown>; pollFailures: string[] };
      w.pollFailures = [];
      w.poll = (async () => {
        for (let attempt = 0; attempt < 50; attempt++) {
          try {
            const r = await fetch(`/_matrix/client/v3/sync?since=${encodeURIComponent(since)}&timeout=30000`, { headers: { authorization: `Bearer ${token}` } });
            if (r.status === 200) return { attempts: attempt + 1, body: await r.json() };
            w.pollFailures.push(`HTTP ${r.status}`);
          } catch (e) {
            w.pollFailures.push(String(e));
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error('sync never recovered');
      })();
    },
    { since: first.next_batch as string, token: alice.token },
  );
  await page.waitForTimeout(300); // the long-poll is now waiting inside the worker

  await stopWorkers(page);

  // The next request starts the worker again: same node, same data.
  await send(page, alice, roomId, 'after the restart');
  const after = await workerStatus(page);
  expect(after.startId).not.toBe(before.startId);
  expect(after.serverName).toBe(before.serverName);
  // The pending long-poll comes back with the new message: Chromium hands the interrupted request to
  // the restarted worker, or the request fails and the client's retry reaches it.
  const polled = (await page.evaluate(() => (window as unknown as { poll: Promise<unknown> }).poll)) as { attempts: number; body: Record<string, any> };
  const failures = await page.evaluate(() => (window as unknown as { pollFailures: string[] }).pollFailures);
  test.info().annotations.push({ type: 'long-poll', description: `answered after ${polled.attempts} attempt(s); failures: ${JSON.stringify(failures)}` });
  expect(messagesIn(polled.body, roomId)).toEqual(['after the restart']);
  expect(messagesIn(await sync(page, alice), roomId)).toEqual(['before the stop', 'after the restart']);
  const who = await ok(mx(page, 'GET', '/_matrix/client/v3/account/whoami', { token: alice.token }));
  expect(who.user_id).toBe(alice.userId);

  // Several stops in a row, each followed by a write: nothing lost.
  for (let i = 0; i < 3; i++) {
    await stopWorkers(page);
    await send(page, alice, roomId, `round ${i}`);
  }
  expect(messagesIn(await sync(page, alice), roomId)).toEqual(['before the stop', 'after the restart', 'round 0', 'round 1', 'round 2']);
});

test('offline: after the first visit the app shell opens with no network and no server', async ({ browser }) => {
  const server = await startServer();
  const context = await browser.newContext();
  try {
    const page = await openApp(context, server.url);
    const alice = await register(page, 'alice');
    const roomId = await createRoom(page, alice, { name: 'offline' });
    const name = (await workerStatus(page)).serverName;

    await server.close();
    await context.setOffline(true);
    await page.reload();
    await waitControlled(page);
    await expect(page.locator('#server-name')).toHaveText(name);
    // The homeserver needs no network at all.
    await send(page, alice, roomId, 'written offline');
    expect(messagesIn(await sync(page, alice), roomId)).toEqual(['written offline']);

    // A deep link opened offline gets the cached app shell too.
    const other = await context.newPage();
    await other.goto(`${server.url}/rooms/some-room?via=x`);
    await waitControlled(other);
    await expect(other.locator('#server-name')).toHaveText(name);
  } finally {
    await context.close();
    await server.close();
  }
});

test("authenticated media in <img> from a page of ours is served without a token (Element's sw.js job)", async ({ app }) => {
  const page = await app();
  const alice = await register(page, 'alice');
  // A 1×1 PNG.
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
  const mxc = await page.evaluate(
    async ({ png, token }) => {
      const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
      const r = await fetch('/_matrix/media/v3/upload?filename=dot.png', { method: 'POST', body: bytes, headers: { authorization: `Bearer ${token}`, 'content-type': 'image/png' } });
      return ((await r.json()) as { content_uri: string }).content_uri;
    },
    { png, token: alice.token },
  );
  const path = mxc.replace('mxc://', '');
  const loaded = await page.evaluate(async (path) => {
    const load = (src: string) =>
      new Promise<number>((resolve) => {
        const img = new Image();
        img.onload = () => resolve(img.naturalWidth);
        img.onerror = () => resolve(-1);
        img.src = src;
        document.body.append(img);
      });
    return {
      download: await load(`/_matrix/client/v1/media/download/${path}`),
      thumbnail: await load(`/_matrix/client/v1/media/thumbnail/${path}?width=32&height=32&method=scale`),
      legacy: await load(`/_matrix/media/v3/download/${path}`),
      missing: await load(`/_matrix/client/v1/media/download/${path.split('/')[0]}/doesnotexist`),
    };
  }, path);
  expect(loaded).toEqual({ download: 1, thumbnail: 1, legacy: 1, missing: -1 });
  // A wrong token is still refused: only token-less requests are taken as the page's own.
  const wrong = await mx(page, 'GET', `/_matrix/client/v1/media/download/${path}`, { token: 'not-a-token' });
  expect(wrong.status).toBe(401);
});

test('sw.js is one classic script within the 200 KB gzip budget, and the Element kit is built', async () => {
  const code = readFileSync(join(WEB_DIR, 'sw.js'));
  expect(gzipSync(code, { level: 9 }).byteLength).toBeLessThanOrEqual(200 * 1024);
  expect(code.toString('utf8')).not.toMatch(/^\s*(import|export)\s/m);
  const kit = join(WEB_DIR, '../element-kit');
  expect(readFileSync(join(kit, 'sw.js')).byteLength).toBeGreaterThan(1000);
  expect(readFileSync(join(kit, 'README.md'), 'utf8')).toContain('default_server_config');
});

test('npm start serves dist/web and prints a ready line with its URL', async ({ browser }) => {
  const child = spawn(process.execPath, [join(ROOT, 'scripts/start.mjs'), '--no-build'], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /ready: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
        if (m) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`npm start exited ${code}: ${out}`)));
    });
    const context = await browser.newContext();
    const page = await openApp(context, url);
    expect((await ok(mx(page, 'GET', '/_matrix/client/versions'))).versions).toContain('v1.11');
    await context.close();
  } finally {
    child.kill('SIGTERM');
  }
});
