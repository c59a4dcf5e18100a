// A small static file server for the built web app (`npm start`, the e2e suite and the benches).
// It knows nothing of Matrix: `/_matrix/*` is a 404 here, and the Service Worker answers it instead.
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';

export const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'application/javascript; charset=utf-8',
  '.mjs': 'application/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

/** Files that must be revalidated on every load: the worker script and the HTML entry points. */
function cacheControl(path) {
  if (path.endsWith('/sw.js') || path.endsWith('.html')) return 'no-cache';
  if (/\/assets\/[^/]+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/.test(path)) return 'public, max-age=31536000, immutable';
  return 'no-cache';
}

/** The file for a URL path under one of the mounts ({ '/': dir, '/__e2e/': dir2 }), or undefined. */
function resolveFile(mounts, pathname) {
  let decoded;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  const prefixes = Object.keys(mounts).sort((a, b) => b.length - a.length);
  for (const prefix of prefixes) {
    if (!decoded.startsWith(prefix)) continue;
    const dir = mounts[prefix];
    const file = normalize(join(dir, decoded.slice(prefix.length)));
    if (file !== dir && !file.startsWith(dir.endsWith(sep) ? dir : dir + sep)) return undefined;
    for (const candidate of [file, join(file, 'index.html')]) {
      try {
        if (statSync(candidate).isFile()) return candidate;
      } catch {
        /* next */
      }
    }
    return undefined;
  }
  return undefined;
}

function isNavigation(req, pathname) {
  if (pathname.startsWith('/_matrix/') || pathname.startsWith('/.well-known/') || pathname.startsWith('/__e2e/')) return false;
  if (/\.[A-Za-z0-9]+$/.test(pathname)) return false;
  return (req.headers['sec-fetch-mode'] === 'navigate') || (req.headers.accept ?? '').includes('text/html');
}

/**
 * Serve `root` (and optional extra mounts) on host:port. Resolves to { url, port, close() } once listening.
 * `port: 0` picks a free port.
 */
export function serveStatic({ root, mounts = {}, host = '127.0.0.1', port = 8080, log = () => {} }) {
  const all = { ...mounts, '/': normalize(root) };
  for (const k of Object.keys(all)) all[k] = normalize(all[k]);
  const sockets = new Set();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const headers = { 'x-content-type-options': 'nosniff' };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    let file = resolveFile(all, url.pathname);
    // Client-side routes: a page navigation to an extension-less path gets the app's index.html
    // (never under /_matrix or /.well-known: this server has no homeserver behind it, on purpose).
    if (!file && isNavigation(req, url.pathname)) file = resolveFile(all, '/index.html');
    if (!file) {
      log(`404 ${url.pathname}`);
      res.writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end('not found\n');
      return;
    }
    const st = statSync(file);
    Object.assign(headers, {
      'content-type': MIME[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': String(st.size),
      'cache-control': cacheControl(file),
      'last-modified': st.mtime.toUTCString(),
    });
    if (file.endsWith(`${sep}sw.js`)) headers['service-worker-allowed'] = '/';
    res.writeHead(200, headers);
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const actual = server.address().port;
      resolve({
        url: `http://${host}:${actual}`,
        port: actual,
        server,
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            for (const s of sockets) s.destroy();
          }),
      });
    });
  });
}
