import { it } from 'vitest';
import { startNodeHost } from '../src/index.ts';
it('diag', async () => {
  const node = await startNodeHost({ port: 0 });
  const sdk = await import('matrix-js-sdk');
  const r = (await (await fetch(node.url + '/_matrix/client/v3/register', { method: 'POST', body: JSON.stringify({ username: 'a', password: 'p', auth: { type: 'm.login.dummy' } }) })).json()) as any;
  const c = sdk.createClient({ baseUrl: node.url, userId: r.user_id, accessToken: r.access_token, deviceId: r.device_id });
  for (let i = 0; i < 3; i++) {
    let t = Date.now();
    const up = await c.uploadContent(new Blob([new Uint8Array(70000)], { type: 'application/octet-stream' }), { name: 'x' });
    console.log('DIAG upload', Date.now() - t);
    t = Date.now();
    await fetch(node.url + '/_matrix/media/v3/upload', { method: 'POST', headers: { authorization: 'Bearer ' + r.access_token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(70000) });
    console.log('DIAG raw fetch upload', Date.now() - t);
    t = Date.now();
    await fetch(node.url + '/_matrix/media/v3/upload', { method: 'POST', headers: { authorization: 'Bearer ' + r.access_token, 'content-type': 'application/octet-stream' }, body: new Blob([new Uint8Array(70000)]) });
    console.log('DIAG raw fetch blob upload', Date.now() - t);
  }
  await node.close();
});
