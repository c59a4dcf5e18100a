/**
 * Display names of users the room state does not name (an invitee whose invite event has no
 * `displayname`, an inviter seen only through an invite): looked up once with the profile API, then
 * the view re-renders.
 */
import type { MatrixClient } from 'matrix-js-sdk';

export class ProfileNames {
  private readonly names = new Map<string, string | null>();

  constructor(
    private readonly client: MatrixClient,
    private readonly onChange: () => void,
  ) {}

  /** The user's profile display name if known; starts a lookup (once) otherwise. */
  get(userId: string): string | undefined {
    if (this.names.has(userId)) return this.names.get(userId) ?? undefined;
    this.names.set(userId, null);
    this.client.getProfileInfo(userId).then(
      (p) => {
        if (typeof p.displayname === 'string' && p.displayname) {
          this.names.set(userId, p.displayname);
          this.onChange();
        }
      },
      () => {},
    );
    return undefined;
  }

  /** Record a name learnt elsewhere (e.g. our own profile change). */
  set(userId: string, name: string): void {
    this.names.set(userId, name);
  }
}

let current: ProfileNames | null = null;
/** The profile cache of the signed-in client (one client at a time). */
export function setProfileNames(p: ProfileNames | null): void {
  current = p;
}
export function profileName(userId: string): string | undefined {
  return current?.get(userId);
}
