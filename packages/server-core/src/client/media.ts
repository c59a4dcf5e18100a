/**
 * The content repository (spec: client-server API, "Content repository"): upload (`/_matrix/media/v3`),
 * authenticated download, thumbnail and config (`/_matrix/client/v1/media`, v1.11), and the deprecated
 * unauthenticated `/_matrix/media/v3` download, thumbnail and config endpoints.
 * URL previews are not offered: `preview_url` answers 404 M_UNRECOGNIZED from the router.
 * Media of other servers is fetched over federation (services/media.ts).
 */
import * as v from 'valibot';
import { endpoint, type AnyEndpoint } from '../api/endpoint.ts';
import {
  createPendingMedia, loadMedia, mediaResponse, mxcUri, storeUpload, thumbnailResponse, uploadContentType, uploadToPending, DEFAULT_DOWNLOAD_WAIT_MS,
} from '../services/media.ts';
import { QueryBool, QueryInt } from './schemas.ts';

const CS = 'https://spec.matrix.org/latest/client-server-api';

/**
 * The router reads the whole body before the handler runs and its limit is static per endpoint, so
 * uploads are bounded here by a ceiling and the handler enforces `hs.maxUploadBytes` (413 M_TOO_LARGE).
 */

const UploadQuery = v.object({ filename: v.optional(v.pipe(v.string(), v.maxLength(255))) });
const DownloadQuery = v.object({ timeout_ms: v.optional(QueryInt(0)) });
const ThumbnailQuery = v.object({
  width: v.optional(QueryInt(0)),
  height: v.optional(QueryInt(0)),
  method: v.optional(v.picklist(['crop', 'scale'])),
  animated: v.optional(QueryBool),
  timeout_ms: v.optional(QueryInt(0)),
});

type Download = v.InferOutput<typeof DownloadQuery>;
type Thumbnail = v.InferOutput<typeof ThumbnailQuery>;

/**
 * Download and thumbnail endpoints, declared once for the authenticated (v1) and legacy (v3) prefixes.
 * Only the authenticated ones fetch remote media from its server; the legacy ones serve what is cached
 * (spec v1.11: servers should not serve newly fetched remote media without authentication).
 */
function readEndpoints(prefix: string, auth: 'user' | 'none', anchor: (op: string) => string): AnyEndpoint[] {
  const opts = { fetchRemote: auth === 'user' };
  return [
    endpoint<undefined, Download>({
      method: 'GET', path: `${prefix}/download/:serverName/:mediaId`, auth, spec: anchor('download/{serverName}/{mediaId}'), query: DownloadQuery,
      handler: async ({ hs, params, query }) => mediaResponse(await loadMedia(hs, params.serverName, params.mediaId, query.timeout_ms ?? DEFAULT_DOWNLOAD_WAIT_MS, opts)),
    }),
    endpoint<undefined, Download>({
      method: 'GET', path: `${prefix}/download/:serverName/:mediaId/:fileName`, auth, spec: anchor('download/{serverName}/{mediaId}/{fileName}'), query: DownloadQuery,
      handler: async ({ hs, params, query }) =>
        mediaResponse(await loadMedia(hs, params.serverName, params.mediaId, query.timeout_ms ?? DEFAULT_DOWNLOAD_WAIT_MS, opts), { filename: params.fileName }),
    }),
    endpoint<undefined, Thumbnail>({
      method: 'GET', path: `${prefix}/thumbnail/:serverName/:mediaId`, auth, spec: anchor('thumbnail/{serverName}/{mediaId}'), query: ThumbnailQuery,
      handler: async ({ hs, params, query }) => thumbnailResponse(await loadMedia(hs, params.serverName, params.mediaId, query.timeout_ms ?? DEFAULT_DOWNLOAD_WAIT_MS, opts)),
    }),
  ];
}

const anchorOf = (base: string) => (op: string) => `${CS}/#get_${base}${op.replace(/[{}/]/g, '').toLowerCase()}`;

export const mediaEndpoints: AnyEndpoint[] = [
  endpoint<undefined, v.InferOutput<typeof UploadQuery>>({
    method: 'POST', path: '/_matrix/media/v3/upload', auth: 'user', spec: `${CS}/#post_matrixmediav3upload`,
    rawBody: true, maxBodyBytes: (hs) => hs.maxUploadBytes, query: UploadQuery,
    handler: async ({ hs, request, raw, user, query }) => {
      const mediaId = await storeUpload(hs, user.userId, raw ?? new Uint8Array(0), uploadContentType(request.headers.get('content-type')), query.filename);
      return { content_uri: mxcUri(hs, mediaId) };
    },
  }),
  endpoint({
    method: 'POST', path: '/_matrix/media/v1/create', auth: 'user', spec: `${CS}/#post_matrixmediav1create`,
    handler: async ({ hs, user }) => {
      const { mediaId, unusedExpiresAt } = await createPendingMedia(hs, user.userId);
      return { content_uri: mxcUri(hs, mediaId), unused_expires_at: unusedExpiresAt };
    },
  }),
  endpoint<undefined, v.InferOutput<typeof UploadQuery>>({
    method: 'PUT', path: '/_matrix/media/v3/upload/:serverName/:mediaId', auth: 'user', spec: `${CS}/#put_matrixmediav3uploadservernamemediaid`,
    rawBody: true, maxBodyBytes: (hs) => hs.maxUploadBytes, query: UploadQuery,
    handler: async ({ hs, request, raw, user, params, query }) => {
      await uploadToPending(hs, user.userId, params.serverName, params.mediaId, raw ?? new Uint8Array(0), uploadContentType(request.headers.get('content-type')), query.filename);
      return {};
    },
  }),
  endpoint({
    method: 'GET', path: '/_matrix/client/v1/media/config', auth: 'user', spec: `${CS}/#get_matrixclientv1mediaconfig`,
    handler: ({ hs }) => ({ 'm.upload.size': hs.maxUploadBytes }),
  }),
  // Deprecated (spec: requires a token); served with or without one, as older clients expect.
  endpoint({
    method: 'GET', path: '/_matrix/media/v3/config', auth: 'optional-user', spec: `${CS}/#get_matrixmediav3config`,
    handler: ({ hs }) => ({ 'm.upload.size': hs.maxUploadBytes }),
  }),
  ...readEndpoints('/_matrix/client/v1/media', 'user', anchorOf('matrixclientv1media')),
  // Deprecated unauthenticated reads (Hydrogen, and clients before v1.11).
  ...readEndpoints('/_matrix/media/v3', 'none', anchorOf('matrixmediav3')),
];
