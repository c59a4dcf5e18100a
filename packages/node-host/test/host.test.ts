/**
 * `startNodeHost`: the programmatic door tests and benchmarks use. A free port, the homeserver behind
 * it, URLs as the client sent them, and a clean close that ends long-polling requests.
 */
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startNodeHost, type NodeHost } from '../src/index.ts';

let node: NodeHost | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function register(base: string, username: string): Promise<{ access_token: string; user_id: string }> {
  const r = await fetch(`${base}/_matrix/client/v3/register`, {
    method: 'POST',
    body: JSON.stringify({ username, password: 'pw', auth: { type: 'm.login.dummy' } }),
  });
  expect(r.status).toBe(200);
  return (await r.json()) as { access_token: string; user_id: string };
}

describe('startNodeHost', () => {
  it('listens on a free port of 127.0.0.1 and serves the homeserver', async () => {
    node = await startNodeHost({ port: 0 });
    expect(node.host).toBe('127.0.0.1');
    expect(node.port).toBeGreaterThan(0);
    expect(node.url).toBe(`http://127.0.0.1:${node.port}`);
    expect(node.hs.serverName).toMatch(/^[0-9a-f]{64}$/);
    const { user_id } = await register(node.url, 'alice');
    expect(user_id).toBe(`@alice:${node.hs.serverName}`);
  });

  it('gives the core the URL the client used (Host header and query)', async () => {
    node = await startNodeHost({ port: 0 });
    const wk = (await (await fetch(`${node.url}/.well-known/matrix/client`)).json()) as { 'm.homeserver': { base_url: string } };
    expect(wk['m.homeserver'].base_url).toBe(node.url);
    // Another Host header (a reverse proxy, a LAN name): the core sees it.
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: node!.port, path: '/.well-known/matrix/client?x=1', headers: { host: 'matrix.example.test:8448' } }, (res) => {
        let s = '';
        res.on('data', (d) => (s += d));
        res.on('end', () => resolve(s));
      });
      req.on('error', reject);
      req.end();
    });
    expect(JSON.parse(body)['m.homeserver'].base_url).toBe('http://matrix.example.test:8448');
  });

  it('close() ends a long-polling /sync promptly, stops the homeserver and frees the port; twice is fine', async () => {
    node = await startNodeHost({ port: 0 });
    const { access_token } = await register(node.url, 'bob');
    const auth = { authorization: `Bearer ${access_token}` };
    const first = (await (await fetch(`${node.url}/_matrix/client/v3/sync?timeout=0`, { headers: auth })).json()) as { next_batch: string };
    const longPoll = fetch(`${node.url}/_matrix/client/v3/sync?timeout=30000&since=${encodeURIComponent(first.next_batch)}`, { headers: auth }).then(
      (r) => `answered ${r.status}`,
      () => 'cut',
    );
    await until('the long-poll to be in flight', () => node!.inFlight === 1);
    const t0 = Date.now();
    const closing = node.close();
    expect(await longPoll).toMatch(/answered 200|cut/);
    await closing;
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(node.inFlight).toBe(0);
    await node.close();
    await expect(fetch(`${node.url}/_matrix/client/versions`)).rejects.toThrow();
    node = undefined;
  });

  it('refuses a port that is taken', async () => {
    node = await startNodeHost({ port: 0 });
    await expect(startNodeHost({ port: node.port })).rejects.toThrow(/EADDRINUSE/);
  });
});
