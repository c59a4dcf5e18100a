import { describe, expect, it } from 'vitest';
import { createMemoryHomeserver, type Homeserver } from '../src/index.ts';
import { contentDisposition, MEDIA_CSP } from '../src/services/media.ts';
import { newHomeserver, TestClient } from './helpers/hs.ts';

const BASE = 'http://localhost';

async function setup(hs?: Homeserver) {
  const server = hs ?? (await newHomeserver());
  const alice = await new TestClient(server).register('alice');
  return { hs: server, alice };
}

/** A raw request (binary bodies and responses), optionally authenticated. */
function call(hs: Homeserver, method: string, path: string, opts: { token?: string; body?: Uint8Array; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  return hs.handle(new Request(BASE + path, { method, headers, body: opts.body as BodyInit | undefined }));
}

async function upload(hs: Homeserver, token: string, bytes: Uint8Array, contentType?: string, filename?: string): Promise<string> {
  const q = filename !== undefined ? `?filename=${encodeURIComponent(filename)}` : '';
  const res = await call(hs, 'POST', `/_matrix/media/v3/upload${q}`, { token, body: bytes, headers: contentType ? { 'content-type': contentType } : {} });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { content_uri: string };
  return body.content_uri;
}

const mxcPath = (mxc: string) => mxc.slice('mxc://'.length);

describe('media: upload and download', () => {
  it('round-trips every byte value through the authenticated and legacy download paths', async () => {
    const { hs, alice } = await setup();
    const bytes = new Uint8Array(1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff;
    const mxc = await upload(hs, alice.token!, bytes, 'image/png', 'cat.png');
    expect(mxc).toMatch(new RegExp(`^mxc://${hs.serverName}/[A-Za-z0-9_-]+$`));
    for (const prefix of ['/_matrix/client/v1/media', '/_matrix/media/v3', '/_matrix/media/r0']) {
      const res = await call(hs, 'GET', `${prefix}/download/${mxcPath(mxc)}`, { token: prefix.includes('client') ? alice.token : undefined });
      expect(res.status).toBe(200);
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(res.headers.get('content-length')).toBe('1024');
      expect(res.headers.get('content-disposition')).toBe('inline; filename="cat.png"');
      expect(res.headers.get('content-security-policy')).toBe(MEDIA_CSP);
      expect(res.headers.get('content-security-policy')).toMatch(/^sandbox; default-src 'none'/);
      expect(res.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it('requires a token on the v1 endpoints and accepts none on the legacy ones', async () => {
    const { hs, alice } = await setup();
    const mxc = await upload(hs, alice.token!, new Uint8Array([1, 2, 3]), 'text/plain');
    const c = new TestClient(hs);
    for (const p of [`/_matrix/client/v1/media/download/${mxcPath(mxc)}`, `/_matrix/client/v1/media/download/${mxcPath(mxc)}/x.txt`, `/_matrix/client/v1/media/thumbnail/${mxcPath(mxc)}?width=32&height=32`, '/_matrix/client/v1/media/config']) {
      expect(await c.get(p)).toMatchObject({ status: 401, body: { errcode: 'M_MISSING_TOKEN' } });
    }
    expect((await c.get(`/_matrix/client/v1/media/download/${mxcPath(mxc)}`, { token: 'bogus' })).body.errcode).toBe('M_UNKNOWN_TOKEN');
    expect((await c.get(`/_matrix/media/v3/download/${mxcPath(mxc)}`)).status).toBe(200);
    // Uploading needs a token too.
    const anon = await call(hs, 'POST', '/_matrix/media/v3/upload', { body: new Uint8Array([1]) });
    expect(anon.status).toBe(401);
  });

  it('chooses inline or attachment from the content type, and encodes file names', async () => {
    const { hs, alice } = await setup();
    const html = await upload(hs, alice.token!, new TextEncoder().encode('<script>alert(1)</script>'), 'text/html', 'page.html');
    let res = await call(hs, 'GET', `/_matrix/client/v1/media/download/${mxcPath(html)}`, { token: alice.token });
    expect(res.headers.get('content-type')).toBe('text/html');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="page.html"');

    const svg = await upload(hs, alice.token!, new TextEncoder().encode('<svg/>'), 'image/svg+xml');
    res = await call(hs, 'GET', `/_matrix/media/v3/download/${mxcPath(svg)}`);
    expect(res.headers.get('content-disposition')).toBe('attachment');

    const text = await upload(hs, alice.token!, new TextEncoder().encode('hi'), 'text/plain; charset=utf-8', 'Grüße "x".txt');
    res = await call(hs, 'GET', `/_matrix/media/v3/download/${mxcPath(text)}`);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(`inline; filename*=utf-8''Gr%C3%BC%C3%9Fe%20%22x%22.txt`);

    // The file name in the path overrides the uploaded one.
    res = await call(hs, 'GET', `/_matrix/client/v1/media/download/${mxcPath(text)}/other%20name.txt`, { token: alice.token });
    expect(res.headers.get('content-disposition')).toBe('inline; filename="other name.txt"');
    expect(await res.text()).toBe('hi');

    expect(contentDisposition('attachment')).toBe('attachment');
    expect(contentDisposition('inline', "it's (1).png")).toBe(`inline; filename="it's (1).png"`);
    expect(contentDisposition('inline', 'a\\b')).toBe(`inline; filename*=utf-8''a%5Cb`);
  });

  it('defaults the content type to application/octet-stream, and omits the file name when none was given', async () => {
    const { hs, alice } = await setup();
    const mxc = await upload(hs, alice.token!, new Uint8Array([0, 255, 0]));
    let res = await call(hs, 'GET', `/_matrix/media/v3/download/${mxcPath(mxc)}`);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-disposition')).toBe('attachment');
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(new Uint8Array([0, 255, 0]));

    const bad = await upload(hs, alice.token!, new Uint8Array([9]), 'not a mime type');
    res = await call(hs, 'GET', `/_matrix/media/v3/download/${mxcPath(bad)}`);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');

    const empty = await upload(hs, alice.token!, new Uint8Array(0), 'text/plain');
    res = await call(hs, 'GET', `/_matrix/media/v3/download/${mxcPath(empty)}`);
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  it('accepts the r0 upload path (Hydrogen)', async () => {
    const { hs, alice } = await setup();
    const res = await call(hs, 'POST', '/_matrix/media/r0/upload?filename=a.bin', { token: alice.token, body: new Uint8Array([4, 2]) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { content_uri: string }).content_uri).toMatch(/^mxc:\/\//);
  });

  it('refuses uploads over the size limit with 413 M_TOO_LARGE and advertises the limit', async () => {
    const hs = await createMemoryHomeserver({ maxUploadBytes: 100, log: (e) => console.error(e) });
    const { alice } = await setup(hs);
    const res = await call(hs, 'POST', '/_matrix/media/v3/upload', { token: alice.token, body: new Uint8Array(101) });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ errcode: 'M_TOO_LARGE' });
    expect((await call(hs, 'POST', '/_matrix/media/v3/upload', { token: alice.token, body: new Uint8Array(100) })).status).toBe(200);
    expect((await alice.get('/_matrix/client/v1/media/config')).body).toEqual({ 'm.upload.size': 100 });
    expect((await alice.get('/_matrix/media/v3/config')).body).toEqual({ 'm.upload.size': 100 });
    expect((await alice.get('/_matrix/media/v3/config', { token: null })).body).toEqual({ 'm.upload.size': 100 });
  });

  it('answers 404 M_NOT_FOUND for unknown, malformed and remote media', async () => {
    const { hs, alice } = await setup();
    const mxc = await upload(hs, alice.token!, new Uint8Array([1]), 'image/png');
    const id = mxcPath(mxc).split('/')[1];
    const paths = [
      `/_matrix/client/v1/media/download/${hs.serverName}/nope`,
      `/_matrix/client/v1/media/download/other.example/${id}`,
      `/_matrix/client/v1/media/download/${hs.serverName}/..%2F..%2Fetc`,
      `/_matrix/client/v1/media/download/${hs.serverName}/%E2%82%AC`,
      `/_matrix/client/v1/media/thumbnail/other.example/${id}?width=1&height=1`,
      `/_matrix/media/v3/download/${hs.serverName}/nope/file.txt`,
      `/_matrix/media/v3/thumbnail/${hs.serverName}/nope?width=1&height=1`,
    ];
    for (const p of paths) expect(await alice.get(p), p).toMatchObject({ status: 404, body: { errcode: 'M_NOT_FOUND' } });
    // A malformed percent-escape is a bad parameter, not a crash.
    expect(await alice.get(`/_matrix/client/v1/media/download/${hs.serverName}/%E0%A4%A`)).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    expect((await alice.get(`/_matrix/client/v1/media/download/${hs.serverName}/${id}?timeout_ms=soon`)).body.errcode).toBe('M_INVALID_PARAM');
    expect(await alice.get('/_matrix/client/v1/media/preview_url?url=https://example.org')).toMatchObject({ status: 404, body: { errcode: 'M_UNRECOGNIZED' } });
  });
});

describe('media: thumbnails', () => {
  it('serves the original image inline as the thumbnail', async () => {
    const { hs, alice } = await setup();
    const bytes = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]);
    const mxc = await upload(hs, alice.token!, bytes, 'image/png', 'photo.png');
    for (const [prefix, token] of [['/_matrix/client/v1/media', alice.token], ['/_matrix/media/v3', undefined]] as const) {
      const res = await call(hs, 'GET', `${prefix}/thumbnail/${mxcPath(mxc)}?width=32&height=32&method=crop&animated=false`, { token });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(res.headers.get('content-disposition')).toBe('inline; filename="thumbnail.png"');
      expect(res.headers.get('content-security-policy')).toBe(MEDIA_CSP);
      expect(res.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
    }
    const jpeg = await upload(hs, alice.token!, new Uint8Array([0xff, 0xd8]), 'image/jpeg');
    const res = await call(hs, 'GET', `/_matrix/media/v3/thumbnail/${mxcPath(jpeg)}?width=640&height=480&method=scale`);
    expect(res.headers.get('content-disposition')).toBe('inline; filename="thumbnail.jpg"');
  });

  it('refuses to thumbnail content that is not an image, and bad parameters', async () => {
    const { hs, alice } = await setup();
    const pdf = await upload(hs, alice.token!, new Uint8Array([0x25, 0x50]), 'application/pdf');
    expect(await alice.get(`/_matrix/client/v1/media/thumbnail/${mxcPath(pdf)}?width=32&height=32`)).toMatchObject({ status: 400, body: { errcode: 'M_UNKNOWN' } });
    const svg = await upload(hs, alice.token!, new TextEncoder().encode('<svg/>'), 'image/svg+xml');
    expect((await alice.get(`/_matrix/client/v1/media/thumbnail/${mxcPath(svg)}?width=32&height=32`)).status).toBe(400);
    const png = await upload(hs, alice.token!, new Uint8Array([1]), 'image/png');
    for (const q of ['width=-1&height=32', 'width=abc&height=32', 'width=32&height=32&method=stretch', 'width=32&height=32&animated=maybe']) {
      expect(await alice.get(`/_matrix/client/v1/media/thumbnail/${mxcPath(png)}?${q}`), q).toMatchObject({ status: 400, body: { errcode: 'M_INVALID_PARAM' } });
    }
  });
});

describe('media: create, then upload (asynchronous uploads)', () => {
  it('reserves an mxc URI, answers M_NOT_YET_UPLOADED until the upload, then serves it', async () => {
    const { hs, alice } = await setup();
    const created = await alice.post('/_matrix/media/v1/create');
    expect(created.status).toBe(200);
    expect(created.body.content_uri).toMatch(new RegExp(`^mxc://${hs.serverName}/`));
    expect(created.body.unused_expires_at).toBeGreaterThan(Date.now());
    const path = mxcPath(created.body.content_uri);

    expect(await alice.get(`/_matrix/client/v1/media/download/${path}?timeout_ms=0`)).toMatchObject({ status: 504, body: { errcode: 'M_NOT_YET_UPLOADED' } });

    // Another user may not upload to it.
    const bob = await new TestClient(hs).register('bob');
    let res = await call(hs, 'PUT', `/_matrix/media/v3/upload/${path}`, { token: bob.token, body: new Uint8Array([1]) });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_FORBIDDEN');

    // A download waiting for the content gets it as soon as it is uploaded.
    const waiting = call(hs, 'GET', `/_matrix/client/v1/media/download/${path}?timeout_ms=5000`, { token: alice.token });
    res = await call(hs, 'PUT', `/_matrix/media/v3/upload/${path}?filename=late.txt`, { token: alice.token, body: new TextEncoder().encode('late'), headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    const got = await waiting;
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('late');
    expect(got.headers.get('content-disposition')).toBe('inline; filename="late.txt"');

    res = await call(hs, 'PUT', `/_matrix/media/v3/upload/${path}`, { token: alice.token, body: new Uint8Array([1]) });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_CANNOT_OVERWRITE_MEDIA');
  });

  it('refuses uploads to unknown or expired media ids', async () => {
    let now = 1_000_000;
    const hs = await createMemoryHomeserver({ clock: () => now, log: (e) => console.error(e) });
    const { alice } = await setup(hs);
    let res = await call(hs, 'PUT', `/_matrix/media/v3/upload/${hs.serverName}/unknownid`, { token: alice.token, body: new Uint8Array([1]) });
    expect(res.status).toBe(404);
    res = await call(hs, 'PUT', `/_matrix/media/v3/upload/elsewhere.example/unknownid`, { token: alice.token, body: new Uint8Array([1]) });
    expect(res.status).toBe(404);
    const created = await alice.post('/_matrix/media/v1/create');
    now += 25 * 60 * 60 * 1000;
    res = await call(hs, 'PUT', `/_matrix/media/v3/upload/${mxcPath(created.body.content_uri)}`, { token: alice.token, body: new Uint8Array([1]) });
    expect(res.status).toBe(404);
    expect((await alice.get(`/_matrix/client/v1/media/download/${mxcPath(created.body.content_uri)}`)).status).toBe(404);
  });
});
