/**
 * The content repository (spec: client-server API, "Content repository"): storing uploads, `mxc://`
 * URIs, and serving media with the headers the spec asks for ("Serving inline content",
 * Content-Disposition, Content-Security-Policy, Cross-Origin-Resource-Policy).
 *
 * Only local media for now: remote media needs federation (a later issue). Thumbnails are the
 * original image (no image codecs in a Service Worker); the spec allows returning the original when
 * it cannot be scaled down.
 */
import { MatrixError, forbidden, notFound, tooLarge } from '../api/errors.ts';
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
 * The media an `mxc://serverName/mediaId` names, on this server. Remote media needs federation: 404
 * for now. Created-but-not-uploaded media is waited for up to `timeoutMs`, then 504 M_NOT_YET_UPLOADED.
 */
export async function loadMedia(hs: Homeserver, serverName: string, mediaId: string, timeoutMs = DEFAULT_DOWNLOAD_WAIT_MS): Promise<StoredMedia> {
  if (serverName !== hs.serverName) throw notFound('Remote media is not available (federation is not enabled)');
  if (!MEDIA_ID.test(mediaId)) throw notFound('Unknown media ID');
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
