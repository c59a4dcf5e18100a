/**
 * What remote peers may ask for. Remote peers reach federation, key and media endpoints only, never the
 * client API (docs/ARCHITECTURE.md). server-core enforces this too when it is given `{ peer }`; the transport
 * refuses everything else before it reaches the core (defence in depth).
 */

/** A placeholder origin for federation URLs (server-core's FEDERATION_ORIGIN): transports route by destination. */
export const FEDERATION_ORIGIN = 'http://federation.invalid';

const REMOTE_PATH = /^\/_matrix\/(federation|key|media)\//;

/** Whether a remote peer may request `pathname` (already normalised by `new URL`: no `..` segments left). */
export function isRemotePathAllowed(pathname: string): boolean {
  return REMOTE_PATH.test(pathname);
}

/**
 * The URL a path from the wire resolves to, or undefined if it is not a plain origin-relative path. Resolving
 * first and checking the normalised pathname afterwards defeats `/_matrix/federation/../client/...` and its
 * percent-encoded spellings.
 */
export function resolveRemotePath(path: string): URL | undefined {
  if (!path.startsWith('/') || path.startsWith('//') || path.includes('\\')) return undefined;
  try {
    const url = new URL(path, FEDERATION_ORIGIN);
    if (url.origin !== FEDERATION_ORIGIN) return undefined;
    return url;
  } catch {
    return undefined;
  }
}
