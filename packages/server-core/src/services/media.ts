/**
 * The content repository (spec: client-server API, "Content repository"): storing uploads, `mxc://`
 * URIs, and serving media with the headers the spec asks for ("Serving inline content",
 * Content-Disposition, Content-Security-Policy, Cross-Origin-Resource-Policy).
 *
 * Remote media (`mxc://<other server>/<id>`) is fetched through the authenticated client endpoints from its
 * server with the federation media API (`GET /_matrix/federation/v1/media/download/{mediaId}`, a
 * `multipart/mixed` answer), falling back to the deprecated `/_matrix/media/v3/download` on `404
 * M_UNRECOGNIZED` as the spec says, and cached in the media store under `remote/<server>/<id>`. The
 * deprecated unauthenticated endpoints serve cached remote media only (spec: v1.11 freeze).
 *
 * Thumbnails are the original image (no image codecs in a Service Worker); the spec allows returning the
 * original when it cannot be scaled down.
 */
import { MatrixError, forbidden, notFound, tooLarge } from '../api/errors.ts';
import { FederationError } from '../federation/service.ts';
import { CORS_HEADERS } from '../api/router.ts';
import type { Homeserver } from '../homeserver.ts';
import type { MediaRecord } from '../store/records.ts';
import { randomId } from '../util/ids.ts';

/** A media id: only `A-Za-z0-9`, `_` and `-` (spec: "Security considerations"). */
export const MEDIA_ID = /^[A-Za-z0-9_-]{1,255}$/;

/** The recommended policy (spec: "Content repository"). */
export const MEDIA_CSP =
  "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; object-src 'self';";

/** Content types that may be served `inline` (spec: "Serving inline content"); all others are `attachment`. */
export const INLINE_TYPES: ReadonlySet<string> = new Set([
  'text/css', 'text/plain', 'text/csv', 'application/json', 'application/ld+json',
  'image/jpeg', 'image/gif', 'image/png', 'image/apng', 'image/webp', 'image/avif',
  'video/mp4', 'video/webm', 'video/ogg', 'video/quicktime',
  'audio/mp4', 'audio/webm', 'audio/aac', 'audio/mpeg', 'audio/ogg', 'audio/wave', 'audio/wav', 'audio/x-wav', 'audio/x-pn-wav', 'audio/flac', 'audio/x-flac',
]);

/** The content types a thumbnail may have (authed-content-repo.yaml, thumbnail `Content-Type` enum). */
const THUMBNAIL_TYPES: Readonly<Record<string, string>> = {
  'image/jpeg': 'jpg', 'image/png': 'png', 'image/apng': 'png', 'image/gif': 'gif', 'image/webp': 'webp',
};

/** How long a media id from `POST /_matrix/media/v1/create` stays usable (the spec recommends 24 hours). */
export const UNUSED_MEDIA_LIFETIME_MS = 24 * 60 * 60 * 1000;
/** Default and maximum of `timeout_ms` while waiting for created-but-not-uploaded media. */
export const DEFAULT_DOWNLOAD_WAIT_MS = 20_000;
export const MAX_DOWNLOAD_WAIT_MS = 60_000;
const WAIT_POLL_MS = 250;

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
/** `type/subtype` with optional parameters: anything else is "obviously wrong" and served as octet-stream. */
const MIME = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$/;

/** A media record; a created-but-not-yet-uploaded one is `pending` (bytes empty) until `unusedExpiresAt`. */
export interface StoredMedia extends MediaRecord {
  pending?: true;
  unusedExpiresAt?: number;
}

export function mxcUri(hs: Homeserver, mediaId: string): string {
  return `mxc://${hs.serverName}/${mediaId}`;
}

/** The `Content-Type` an upload is stored with: the header as given (trimmed), or octet-stream when absent or malformed. */
export function uploadContentType(header: string | null): string {
  const ct = (header ?? '').trim();
  return ct && ct.length <= 255 && MIME.test(ct) ? ct : DEFAULT_CONTENT_TYPE;
}

/** `type/subtype`, lower-cased, without parameters. */
export function essence(contentType: string): string {
  return contentType.split(';')[0].trim().toLowerCase();
}

/**
 * A Content-Disposition value (RFC 6266): `filename="..."` for printable ASCII names without quotes
 * or backslashes, else the RFC 5987 `filename*=utf-8''...` form.
 */
export function contentDisposition(kind: 'inline' | 'attachment', filename?: string): string {
  if (!filename) return kind;
  if (/^[\x20-\x7e]*$/.test(filename) && !/["\\]/.test(filename)) return `${kind}; filename="${filename}"`;
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  return `${kind}; filename*=utf-8''${encoded}`;
}

/** The response for a piece of media: its bytes with the content repository's headers and CORS. */
export function mediaResponse(rec: StoredMedia, opts: { filename?: string; thumbnail?: boolean } = {}): Response {
  const type = rec.contentType || DEFAULT_CONTENT_TYPE;
  let disposition: string;
  if (opts.thumbnail) {
    disposition = contentDisposition('inline', `thumbnail.${(Object.hasOwn(THUMBNAIL_TYPES, essence(type)) ? THUMBNAIL_TYPES[essence(type)] : 'png')}`);
  } else {
    const kind = INLINE_TYPES.has(essence(type)) ? 'inline' : 'attachment';
    disposition = contentDisposition(kind, opts.filename ?? rec.filename);
  }
  return new Response(rec.bytes as Uint8Array<ArrayBuffer>, {
    status: 200,
    headers: {
      ...CORS_HEADERS,
      'content-type': type,
      'content-length': String(rec.bytes.byteLength),
      'content-disposition': disposition,
      'content-security-policy': MEDIA_CSP,
      'cross-origin-resource-policy': 'cross-origin',
      'x-content-type-options': 'nosniff',
      'cache-control': 'private, max-age=86400',
    },
  });
}

function checkSize(hs: Homeserver, bytes: Uint8Array): void {
  if (bytes.byteLength > hs.maxUploadBytes) throw tooLarge(`Uploads are limited to ${hs.maxUploadBytes} bytes`);
}

function cleanFilename(filename: string | undefined): string | undefined {
  return filename ? filename : undefined;
}

/** Store an upload under a new media id (POST /upload); returns the media id. */
export async function storeUpload(hs: Homeserver, uploader: string, bytes: Uint8Array, contentType: string, filename?: string): Promise<string> {
  checkSize(hs, bytes);
  const mediaId = randomId(18);
  const rec: StoredMedia = { mediaId, contentType, bytes, uploader, createdTs: hs.clock() };
  const name = cleanFilename(filename);
  if (name) rec.filename = name;
  await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    b.put('media', rec);
    await b.commit();
  });
  return mediaId;
}

/** Reserve a media id for a later `PUT /upload/{serverName}/{mediaId}` (POST /_matrix/media/v1/create). */
export async function createPendingMedia(hs: Homeserver, uploader: string): Promise<{ mediaId: string; unusedExpiresAt: number }> {
  const mediaId = randomId(18);
  const now = hs.clock();
  const unusedExpiresAt = now + UNUSED_MEDIA_LIFETIME_MS;
  const rec: StoredMedia = { mediaId, contentType: DEFAULT_CONTENT_TYPE, bytes: new Uint8Array(0), uploader, createdTs: now, pending: true, unusedExpiresAt };
  await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    b.put('media', rec);
    await b.commit();
  });
  return { mediaId, unusedExpiresAt };
}

function isExpired(hs: Homeserver, rec: StoredMedia): boolean {
  return !!rec.pending && rec.unusedExpiresAt !== undefined && rec.unusedExpiresAt < hs.clock();
}

/** Upload the content of a media id reserved with `create` (PUT /_matrix/media/v3/upload/{serverName}/{mediaId}). */
export async function uploadToPending(
  hs: Homeserver, uploader: string, serverName: string, mediaId: string, bytes: Uint8Array, contentType: string, filename?: string,
): Promise<void> {
  if (serverName !== hs.serverName || !MEDIA_ID.test(mediaId)) throw notFound('Unknown media ID');
  checkSize(hs, bytes);
  await hs.writeLock.run(async () => {
    const rec = (await hs.store.userData.media(mediaId)) as StoredMedia | undefined;
    if (!rec || isExpired(hs, rec)) throw notFound('Unknown media ID');
    if (rec.uploader !== uploader) throw forbidden('This media ID was created by another user');
    if (!rec.pending) throw new MatrixError(409, 'M_CANNOT_OVERWRITE_MEDIA', 'Media already uploaded');
    const done: StoredMedia = { mediaId, contentType, bytes, uploader, createdTs: rec.createdTs };
    const name = cleanFilename(filename);
    if (name) done.filename = name;
    const b = hs.store.batch();
    b.put('media', done);
    await b.commit();
  });
}

/**
 * The media an `mxc://serverName/mediaId` names. Local media: created-but-not-uploaded media is waited for
 * up to `timeoutMs`, then 504 M_NOT_YET_UPLOADED. Remote media: from the cache, else (with `fetchRemote`)
 * from its server.
 */
export async function loadMedia(
  hs: Homeserver, serverName: string, mediaId: string, timeoutMs = DEFAULT_DOWNLOAD_WAIT_MS, opts: { fetchRemote?: boolean } = {},
): Promise<StoredMedia> {
  if (!MEDIA_ID.test(mediaId)) throw notFound('Unknown media ID');
  if (serverName !== hs.serverName) return loadRemoteMedia(hs, serverName, mediaId, timeoutMs, opts.fetchRemote ?? false);
  const wait = Math.min(Math.max(timeoutMs, 0), MAX_DOWNLOAD_WAIT_MS);
  const deadline = Date.now() + wait;
  for (;;) {
    const rec = (await hs.store.userData.media(mediaId)) as StoredMedia | undefined;
    if (!rec || isExpired(hs, rec)) throw notFound('Unknown media ID');
    if (!rec.pending) return rec;
    const left = deadline - Date.now();
    if (left <= 0) throw new MatrixError(504, 'M_NOT_YET_UPLOADED', 'Content has not yet been uploaded');
    await new Promise((r) => setTimeout(r, Math.min(WAIT_POLL_MS, left)));
  }
}

/** A thumbnail: the original image when it is of a thumbnail content type (it cannot be scaled here). */
export function thumbnailResponse(rec: StoredMedia): Response {
  if (!Object.hasOwn(THUMBNAIL_TYPES, essence(rec.contentType))) {
    throw new MatrixError(400, 'M_UNKNOWN', 'Cannot generate thumbnails for the requested content');
  }
  return mediaResponse(rec, { thumbnail: true });
}

// --- remote media ------------------------------------------------------------------------------------

/** The media store key of a remote server's media (never a valid local media id: it has slashes). */
export function remoteMediaKey(serverName: string, mediaId: string): string {
  return `remote/${serverName}/${mediaId}`;
}

/** A server name as it may appear in an mxc URI (hostname[:port], IPv6 literal, or our hex names). */
const SERVER_NAME = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::\d{1,5})?$/;

const inflight = new WeakMap<Homeserver, Map<string, Promise<StoredMedia>>>();

async function loadRemoteMedia(hs: Homeserver, serverName: string, mediaId: string, timeoutMs: number, fetchRemote: boolean): Promise<StoredMedia> {
  if (!SERVER_NAME.test(serverName)) throw notFound('Unknown media ID');
  const key = remoteMediaKey(serverName, mediaId);
  const cached = (await hs.store.userData.media(key)) as StoredMedia | undefined;
  if (cached) return cached;
  if (!fetchRemote || !hs.federation.enabled) throw notFound('Remote media is not available here');
  // One download per piece of media at a time.
  let m = inflight.get(hs);
  if (!m) inflight.set(hs, (m = new Map()));
  const running = m.get(key);
  if (running) return running;
  const p = fetchRemoteMedia(hs, serverName, mediaId, timeoutMs).finally(() => m!.delete(key));
  m.set(key, p);
  return p;
}

async function fetchRemoteMedia(hs: Homeserver, serverName: string, mediaId: string, timeoutMs: number): Promise<StoredMedia> {
  const wait = Math.min(Math.max(timeoutMs, 0), MAX_DOWNLOAD_WAIT_MS);
  const id = encodeURIComponent(mediaId);
  let part: { contentType: string; filename?: string; bytes: Uint8Array };
  try {
    let res = await hs.federation.rawRequest(serverName, 'GET', `/_matrix/federation/v1/media/download/${id}?timeout_ms=${wait}`, undefined, { timeoutMs: wait + 30_000 });
    if (res.status === 404 && (await errcodeOf(res.clone())) === 'M_UNRECOGNIZED') {
      // An older server: the deprecated endpoint, without letting it fetch from elsewhere (spec: "Content Repository").
      res = await hs.federation.rawRequest(serverName, 'GET', `/_matrix/media/v3/download/${encodeURIComponent(serverName)}/${id}?allow_remote=false&timeout_ms=${wait}`, undefined, { timeoutMs: wait + 30_000 });
      await throwUnlessOk(res, serverName);
      part = { contentType: res.headers.get('content-type') ?? DEFAULT_CONTENT_TYPE, filename: filenameOf(res.headers.get('content-disposition')), bytes: await readLimited(res, hs.maxUploadBytes) };
    } else {
      await throwUnlessOk(res, serverName);
      part = await mediaPartOf(hs, res);
    }
  } catch (e) {
    if (e instanceof MatrixError) throw e;
    if (e instanceof FederationError) throw new MatrixError(502, 'M_UNKNOWN', `Cannot reach ${serverName} for this media`);
    throw new MatrixError(502, 'M_UNKNOWN', 'Remote media could not be fetched');
  }
  const rec: StoredMedia = {
    mediaId: remoteMediaKey(serverName, mediaId),
    contentType: uploadContentType(part.contentType),
    bytes: part.bytes,
    uploader: '',
    createdTs: hs.clock(),
  };
  if (part.filename) rec.filename = part.filename;
  await hs.writeLock.run(async () => {
    await hs.store.batch().put('media', rec).commit();
  });
  return rec;
}

async function errcodeOf(res: Response): Promise<string | undefined> {
  try {
    const j = (await res.json()) as { errcode?: unknown };
    return typeof j?.errcode === 'string' ? j.errcode : undefined;
  } catch {
    return undefined;
  }
}

/** The remote's 404 (and 504 M_NOT_YET_UPLOADED) as is; any other failure 502. */
async function throwUnlessOk(res: Response, serverName: string): Promise<void> {
  if (res.ok) return;
  const code = await errcodeOf(res);
  if (res.status === 404) throw notFound('Unknown media ID');
  if (res.status === 504 && code === 'M_NOT_YET_UPLOADED') throw new MatrixError(504, 'M_NOT_YET_UPLOADED', 'Content has not yet been uploaded');
  if (code === 'M_TOO_LARGE') throw new MatrixError(502, 'M_TOO_LARGE', 'Remote content is too large');
  throw new MatrixError(502, 'M_UNKNOWN', `${serverName} answered ${res.status} for this media`);
}

/** Read a body of at most `max` bytes (502 M_TOO_LARGE beyond). */
async function readLimited(res: Response, max: number): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > max + 64 * 1024) throw new MatrixError(502, 'M_TOO_LARGE', 'Remote content is too large');
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.byteLength > max + 64 * 1024) throw new MatrixError(502, 'M_TOO_LARGE', 'Remote content is too large');
  return bytes;
}

/** The media of a federation download answer: the second part's bytes, or what its `Location` points at. */
async function mediaPartOf(hs: Homeserver, res: Response): Promise<{ contentType: string; filename?: string; bytes: Uint8Array }> {
  const ct = res.headers.get('content-type') ?? '';
  const boundary = /^\s*multipart\/mixed\s*;(?:.*;)?\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(ct);
  if (!boundary) throw new MatrixError(502, 'M_UNKNOWN', 'Remote media answer is not multipart/mixed');
  const body = await readLimited(res, hs.maxUploadBytes);
  const parts = parseMultipart(body, boundary[1] ?? boundary[2]);
  if (!parts || parts.length < 2) throw new MatrixError(502, 'M_UNKNOWN', 'Malformed multipart media answer');
  const media = parts[1];
  const location = media.headers.get('location');
  if (location) {
    let url: URL;
    try {
      url = new URL(location);
    } catch {
      throw new MatrixError(502, 'M_UNKNOWN', 'Bad media location');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new MatrixError(502, 'M_UNKNOWN', 'Bad media location');
    const r = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(60_000) });
    if (!r.ok) throw new MatrixError(502, 'M_UNKNOWN', `Media location answered ${r.status}`);
    return { contentType: r.headers.get('content-type') ?? DEFAULT_CONTENT_TYPE, filename: filenameOf(r.headers.get('content-disposition')), bytes: await readLimited(r, hs.maxUploadBytes) };
  }
  return { contentType: media.headers.get('content-type') ?? DEFAULT_CONTENT_TYPE, filename: filenameOf(media.headers.get('content-disposition')), bytes: media.body };
}

/** The file name of a Content-Disposition value (`filename*=utf-8''...` preferred over `filename="..."`). */
export function filenameOf(disposition: string | null): string | undefined {
  if (!disposition) return undefined;
  const star = /filename\*\s*=\s*(?:utf-8|UTF-8)''([^;]+)/.exec(disposition);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim()).slice(0, 255) || undefined;
    } catch {
      /* fall through to the plain form */
    }
  }
  const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/.exec(disposition);
  const name = plain ? (plain[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : plain[2]) : undefined;
  return name ? name.slice(0, 255) : undefined;
}

// --- multipart/mixed (RFC 2046), for the federation media API ----------------------------------------

const te = new TextEncoder();
const latin1 = new TextDecoder('latin1');

/** A federation media answer: a JSON part (`{}`), then the media with its content headers. */
export function multipartMediaResponse(rec: StoredMedia, opts: { thumbnail?: boolean } = {}): Response {
  const inner = mediaResponse(rec, opts);
  const boundary = randomId(24).replace(/[^A-Za-z0-9]/g, 'x');
  const head =
    `--${boundary}\r\nContent-Type: application/json\r\n\r\n{}\r\n` +
    `--${boundary}\r\nContent-Type: ${inner.headers.get('content-type')}\r\nContent-Disposition: ${inner.headers.get('content-disposition')}\r\n\r\n`;
  const tail = `\r\n--${boundary}--\r\n`;
  const h = te.encode(head);
  const t = te.encode(tail);
  const body = new Uint8Array(h.length + rec.bytes.byteLength + t.length);
  body.set(h, 0);
  body.set(rec.bytes, h.length);
  body.set(t, h.length + rec.bytes.byteLength);
  return new Response(body, {
    status: 200,
    headers: { ...CORS_HEADERS, 'content-type': `multipart/mixed; boundary=${boundary}`, 'content-length': String(body.byteLength) },
  });
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  const last = hay.length - needle.length;
  outer: for (let i = hay.indexOf(first, from); i !== -1 && i <= last; i = hay.indexOf(first, i + 1)) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Split a multipart body into parts (headers, body); undefined when malformed. */
export function parseMultipart(body: Uint8Array, boundary: string): { headers: Headers; body: Uint8Array }[] | undefined {
  if (!boundary || boundary.length > 200) return undefined;
  const delim = te.encode(`--${boundary}`);
  let i = indexOfBytes(body, delim, 0);
  if (i < 0) return undefined;
  const parts: { headers: Headers; body: Uint8Array }[] = [];
  for (;;) {
    i += delim.length;
    if (body[i] === 0x2d && body[i + 1] === 0x2d) return parts; // closing delimiter
    // Skip transport padding up to the CRLF ending the delimiter line.
    const eol = indexOfBytes(body, te.encode('\r\n'), i);
    if (eol < 0) return undefined;
    const start = eol + 2;
    const next = indexOfBytes(body, te.encode(`\r\n--${boundary}`), start);
    if (next < 0) return undefined;
    const part = body.subarray(start, next);
    let headerText = '';
    let content: Uint8Array;
    if (part[0] === 0x0d && part[1] === 0x0a) content = part.subarray(2); // no headers
    else {
      const sep = indexOfBytes(part, te.encode('\r\n\r\n'), 0);
      if (sep < 0) return undefined;
      headerText = latin1.decode(part.subarray(0, sep));
      content = part.subarray(sep + 4);
    }
    const headers = new Headers();
    for (const line of headerText.split('\r\n')) {
      const c = line.indexOf(':');
      if (c <= 0) continue;
      try {
        headers.append(line.slice(0, c).trim(), line.slice(c + 1).trim());
      } catch {
        /* an invalid header: ignored */
      }
    }
    parts.push({ headers, body: content });
    i = next + 2;
  }
}
