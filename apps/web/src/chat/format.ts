/** Small pure helpers: generated usernames and passwords, colours, names, times, sizes. */

/** A Matrix localpart from a display name: ascii letters/digits of the name, then `-` and a random suffix. */
export function usernameFromDisplayName(name: string, random: () => string = () => randomString(5, 'abcdefghijklmnopqrstuvwxyz0123456789')): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '.')
    .replace(/^\.+|\.+$/g, '')
    .slice(0, 20)
    .replace(/\.+$/g, '');
  return `${slug || 'user'}-${random()}`;
}

export function randomString(length: number, alphabet: string): string {
  const bytes = new Uint8Array(length);
  crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

/** A generated password: 24 characters, ~140 bits. */
export function generatePassword(): string {
  return randomString(24, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_');
}

/** The localpart of a user id (`@alice:server` → `alice`). */
export function localpart(userId: string): string {
  const m = /^@([^:]+)/.exec(userId);
  return m ? m[1]! : userId;
}

/** The server name of a Matrix id. */
export function serverOf(id: string): string {
  const i = id.indexOf(':');
  return i >= 0 ? id.slice(i + 1) : '';
}

/** A user id shortened for display: long (hash-like) server names are cut. */
export function shortId(id: string): string {
  const server = serverOf(id);
  if (server.length <= 24) return id;
  return `${id.slice(0, id.length - server.length)}${server.slice(0, 8)}…`;
}

/** An alias for display: `#name` when it is on our own server, else shortened. */
export function displayAlias(alias: string, ownServer: string): string {
  return serverOf(alias) === ownServer ? alias.slice(0, alias.length - ownServer.length - 1) : shortId(alias);
}

/** A stable hue for an id. */
export function hueOf(id: string): number {
  let hash = 0;
  for (let i = 0; i < id.length; i++) hash = (hash * 31 + id.charCodeAt(i)) >>> 0;
  return hash % 360;
}

/** The first letter of a name (skipping `@`, `#`, `!`) for avatars. */
export function initialOf(name: string): string {
  const s = name.replace(/^[@#!+]/, '').trim();
  const first = Array.from(s)[0];
  return first ? first.toUpperCase() : '?';
}

export function formatTime(ts: number): string {
  return new Date(ts).toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' });
}

export function formatDay(ts: number, now = Date.now()): string {
  const d = new Date(ts);
  const today = new Date(now);
  const yesterday = new Date(now - 86_400_000);
  if (d.toDateString() === today.toDateString()) return 'Today';
  if (d.toDateString() === yesterday.toDateString()) return 'Yesterday';
  return d.toLocaleDateString(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Parse an `mxc://server/mediaId` URI. */
export function parseMxc(mxc: string): { server: string; mediaId: string } | null {
  const m = /^mxc:\/\/([^/]+)\/([^/?#]+)$/.exec(mxc);
  return m ? { server: m[1]!, mediaId: m[2]! } : null;
}

/** Whether a string looks like a room id or alias the user typed. */
export function normalizeRoomRef(input: string, ownServer: string): string {
  let s = input.trim();
  if (!s) return s;
  if (s.startsWith('!')) return s.includes(':') ? s : `${s}:${ownServer}`;
  if (!s.startsWith('#')) s = `#${s}`;
  return s.includes(':') ? s : `${s}:${ownServer}`;
}

/** A user id from what the user typed: a full id, or a localpart on our own server. */
export function normalizeUserRef(input: string, ownServer: string): string {
  let s = input.trim();
  if (!s) return s;
  if (!s.startsWith('@')) s = `@${s}`;
  return s.includes(':') ? s : `${s}:${ownServer}`;
}

/** URLs in plain text, for linkifying. */
export const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
