/**
 * Profiles, presence and the user directory (spec: client-server API, "Profiles", "Presence",
 * "User directory"). A profile change is propagated as a new `m.room.member` join event in every
 * room the user is joined to.
 */
import { MatrixError, forbidden, notFound } from '../api/errors.ts';
import type { JsonObject } from '../kernel/types.ts';
import type { Homeserver } from '../homeserver.ts';
import { kickAll, stagePresence } from '../federation/edus-out.ts';
import type { AccountRecord } from '../store/records.ts';
import type { PresenceRecord } from '../store/user-data.ts';
import { isUserId, localpartOf } from '../util/ids.ts';

export type ProfileField = 'displayname' | 'avatar_url';

/** Longest display name and avatar URL accepted (as Synapse). */
export const MAX_DISPLAYNAME_LENGTH = 256;
export const MAX_AVATAR_URL_LENGTH = 1000;

/** A user counts as `currently_active` when online and active within this long. */
export const CURRENTLY_ACTIVE_MS = 5 * 60 * 1000;

/** Member content keys not carried over when the profile refreshes a join (they belong to the original join). */
const NOT_CARRIED = ['reason', 'join_authorised_via_users_server'];

/** A local, active account (404 M_NOT_FOUND otherwise; remote profiles need federation). */
export async function localAccount(hs: Homeserver, userId: string): Promise<AccountRecord> {
  if (!isUserId(userId)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid user id');
  const acct = hs.isLocal(userId) ? await hs.store.accounts.get(userId) : undefined;
  if (!acct || acct.deactivated) throw notFound('Profile not found');
  return acct;
}

export function profileOf(acct: AccountRecord): { displayname?: string; avatar_url?: string } {
  const p: { displayname?: string; avatar_url?: string } = {};
  if (acct.displayname !== undefined) p.displayname = acct.displayname;
  if (acct.avatarUrl !== undefined) p.avatar_url = acct.avatarUrl;
  return p;
}

/**
 * Set (or clear, with undefined) a profile field of a local user, then send an updated join event
 * into each room they are joined to. A room that refuses the event (e.g. a power-level quirk) does not
 * fail the others or the profile change.
 */
export async function setProfileField(hs: Homeserver, userId: string, field: ProfileField, value: string | undefined): Promise<void> {
  await hs.writeLock.run(async () => {
    const acct = await hs.store.accounts.get(userId);
    if (!acct || acct.deactivated) throw notFound('Profile not found');
    const next: AccountRecord = { ...acct };
    if (field === 'displayname') next.displayname = value;
    else next.avatarUrl = value;
    if (next.displayname === undefined) delete next.displayname;
    if (next.avatarUrl === undefined) delete next.avatarUrl;
    const b = hs.store.batch();
    b.put('accounts', next);
    await b.commit();
  });
  const joined = (await hs.store.rooms.membershipsOfUser(userId)).filter((m) => m.membership === 'join');
  for (const m of joined) {
    try {
      await hs.rooms.write(m.roomId, async (w) => {
        const cur = await w.stateEvent('m.room.member', userId);
        const content = cur?.content as JsonObject | undefined;
        if (!content || content.membership !== 'join') return;
        const old = content[field];
        if (old === value || (old === undefined && value === undefined)) return;
        const next: JsonObject = { ...content };
        for (const k of NOT_CARRIED) delete next[k];
        if (value === undefined) delete next[field];
        else next[field] = value;
        await hs.rooms.append(w, { type: 'm.room.member', sender: userId, stateKey: userId, content: next });
      });
    } catch {
      // The profile is changed; this room keeps the old member event.
    }
  }
}

// --- presence -------------------------------------------------------------------------------------

/** Set a local user's presence; servers sharing a room with them get an `m.presence` EDU in the same commit. */
export async function setPresence(hs: Homeserver, userId: string, presence: string, statusMsg: string | null | undefined): Promise<void> {
  const dests = await hs.writeLock.run(async () => {
    const b = hs.store.batch();
    const rec: PresenceRecord = { userId, presence, lastActiveTs: hs.clock(), stream: b.nextStream() };
    if (typeof statusMsg === 'string') rec.statusMsg = statusMsg;
    b.put('presence', rec);
    const out = await stagePresence(hs, b, rec);
    hs.notifier.notify(await b.commit());
    return out;
  });
  kickAll(hs, dests);
}

/** Whether `viewer` may see `target`'s presence: themselves, or a user they share a joined room with. */
async function sharesRoom(hs: Homeserver, viewer: string, target: string): Promise<boolean> {
  if (viewer === target) return true;
  const [a, b] = await Promise.all([hs.store.rooms.membershipsOfUser(viewer), hs.store.rooms.membershipsOfUser(target)]);
  const mine = new Set(a.filter((m) => m.membership === 'join').map((m) => m.roomId));
  return b.some((m) => m.membership === 'join' && mine.has(m.roomId));
}

export async function getPresence(hs: Homeserver, viewer: string, userId: string): Promise<JsonObject> {
  // Remote users: what their server's m.presence EDUs said (offline when nothing was heard).
  if (!(hs.federation.enabled && isUserId(userId) && !hs.isLocal(userId))) await localAccount(hs, userId);
  if (!(await sharesRoom(hs, viewer, userId))) throw forbidden('You are not allowed to see their presence');
  const rec = await hs.store.userData.presence(userId);
  if (!rec) return { presence: 'offline' };
  const ago = Math.max(0, hs.clock() - rec.lastActiveTs);
  const out: JsonObject = { presence: rec.presence, last_active_ago: ago, currently_active: rec.presence === 'online' && ago < CURRENTLY_ACTIVE_MS };
  if (rec.statusMsg !== undefined) out.status_msg = rec.statusMsg;
  return out;
}

// --- user directory --------------------------------------------------------------------------------

export interface UserDirectoryResult {
  user_id: string;
  display_name?: string;
  avatar_url?: string;
}

/**
 * Search local users and the members of rooms the searcher is joined to (remote users included), by
 * user id or display name, case-insensitively. Users whose localpart or display name starts with the
 * term come first.
 */
export async function searchUsers(hs: Homeserver, searcher: string, term: string, limit: number): Promise<{ results: UserDirectoryResult[]; limited: boolean }> {
  const t = term.trim().toLowerCase();
  const found = new Map<string, UserDirectoryResult>();
  for (const a of await hs.store.accounts.search(t, Number.MAX_SAFE_INTEGER)) {
    const r: UserDirectoryResult = { user_id: a.userId };
    if (a.displayname) r.display_name = a.displayname;
    if (a.avatarUrl) r.avatar_url = a.avatarUrl;
    found.set(a.userId, r);
  }
  const rooms = (await hs.store.rooms.membershipsOfUser(searcher)).filter((m) => m.membership === 'join');
  for (const m of rooms) {
    for (const e of await hs.store.rooms.currentStateEvents(m.roomId, 'm.room.member')) {
      const c = e.pdu.content as JsonObject;
      const uid = e.stateKey;
      if (!uid || c.membership !== 'join' || found.has(uid)) continue;
      const dn = typeof c.displayname === 'string' ? c.displayname : undefined;
      if (!(uid.toLowerCase().includes(t) || (dn !== undefined && dn.toLowerCase().includes(t)))) continue;
      const r: UserDirectoryResult = { user_id: uid };
      if (dn) r.display_name = dn;
      if (typeof c.avatar_url === 'string') r.avatar_url = c.avatar_url;
      found.set(uid, r);
    }
  }
  const rank = (r: UserDirectoryResult) =>
    localpartOf(r.user_id).toLowerCase().startsWith(t) || r.display_name?.toLowerCase().startsWith(t) ? 0 : 1;
  const all = [...found.values()].sort((a, b) => rank(a) - rank(b) || (a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0));
  return { results: all.slice(0, limit), limited: all.length > limit };
}
