/** The member panel of the open room: joined and invited members, and an invite form. */
import type { MatrixClient, Room, RoomMember } from 'matrix-js-sdk';
import { h, reconcile, setChildren } from '../dom.ts';
import { normalizeUserRef, shortId } from '../format.ts';
import { errorMessage } from '../session.ts';
import { avatar } from './avatar.ts';
import { icon } from './icons.ts';

export class MembersPanel {
  readonly el: HTMLElement;
  private readonly joined: HTMLUListElement;
  private readonly invited: HTMLUListElement;
  private readonly invitedHead: HTMLElement;
  private readonly title: HTMLElement;
  private readonly inviteInput: HTMLInputElement;
  private readonly inviteStatus: HTMLElement;
  private readonly inviteForm: HTMLFormElement;
  private room: Room | null = null;

  constructor(
    private readonly client: MatrixClient,
    private readonly serverName: string,
    onClose: () => void,
  ) {
    this.title = h('h2', { id: 'mxc-members-title' }, 'Members');
    this.joined = h('ul', { class: 'mxc-member-list', testid: 'member-list', 'aria-labelledby': 'mxc-members-title' });
    this.invitedHead = h('h3', { class: 'mxc-section-title' }, 'Invited');
    this.invited = h('ul', { class: 'mxc-member-list', testid: 'invited-list', 'aria-label': 'Invited' });
    this.inviteInput = h('input', { type: 'text', autocomplete: 'off', placeholder: 'Username or user ID', testid: 'invite-user-input', id: 'mxc-invite-user' });
    this.inviteStatus = h('p', { class: 'mxc-hint', role: 'status', testid: 'invite-user-status' });
    this.inviteForm = h(
      'form',
      { class: 'mxc-invite-form', testid: 'invite-user-form' },
      h('label', { for: 'mxc-invite-user' }, 'Invite someone'),
      h('div', { class: 'mxc-row' }, this.inviteInput, h('button', { type: 'submit', class: 'mxc-button', testid: 'invite-user-submit' }, 'Invite')),
      this.inviteStatus,
    );
    this.inviteForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.invite();
    });
    this.el = h(
      'aside',
      { class: 'mxc-members', testid: 'member-panel', 'aria-labelledby': 'mxc-members-title' },
      h('div', { class: 'mxc-panel-head' }, this.title, h('button', { type: 'button', class: 'mxc-icon-button', 'aria-label': 'Close member list', testid: 'close-members', onclick: onClose }, icon('close'))),
      this.inviteForm,
      this.joined,
      this.invitedHead,
      this.invited,
    );
  }

  private async invite(): Promise<void> {
    const room = this.room;
    const userId = normalizeUserRef(this.inviteInput.value, this.serverName);
    if (!room || !userId) return;
    this.inviteStatus.textContent = `Inviting ${shortId(userId)}…`;
    try {
      await this.client.invite(room.roomId, userId);
      this.inviteInput.value = '';
      this.inviteStatus.textContent = `Invited ${shortId(userId)}.`;
    } catch (e) {
      this.inviteStatus.textContent = `Could not invite ${shortId(userId)}: ${errorMessage(e)}`;
    }
  }

  setRoom(room: Room | null): void {
    if (room !== this.room) {
      this.inviteStatus.textContent = '';
      this.inviteInput.value = '';
    }
    this.room = room;
    this.render();
  }

  render(): void {
    const room = this.room;
    if (!room) return;
    const byName = (a: RoomMember, b: RoomMember) => (b.powerLevel - a.powerLevel) || a.name.localeCompare(b.name);
    const joined = room.getMembersWithMembership('join').sort(byName);
    const invited = room.getMembersWithMembership('invite').sort(byName);
    setChildren(this.title, `Members (${joined.length})`);
    const canInvite = room.canInvite(this.client.getUserId() ?? '');
    this.inviteForm.hidden = !canInvite;
    const row = (m: RoomMember) =>
      h(
        'li',
        { class: 'mxc-member', testid: 'member-item', 'data-user-id': m.userId, 'data-membership': m.membership ?? '' },
        avatar(m.userId, m.name, 'sm'),
        h('div', { class: 'mxc-member-text' }, h('div', { class: 'mxc-member-name' }, m.name, m.userId === this.client.getUserId() ? h('span', { class: 'mxc-muted' }, ' (you)') : null), h('div', { class: 'mxc-muted mxc-small', title: m.userId }, shortId(m.userId))),
        m.powerLevel >= 100 ? h('span', { class: 'mxc-tag' }, 'Admin') : m.powerLevel >= 50 ? h('span', { class: 'mxc-tag' }, 'Mod') : null,
      );
    const sig = (m: RoomMember) => `${m.userId}|${m.name}|${m.powerLevel}|${m.membership}`;
    const create = (m: RoomMember) => {
      const el = row(m);
      el.dataset.sig = sig(m);
      return el;
    };
    for (const [list, members] of [[this.joined, joined], [this.invited, invited]] as const) {
      reconcile(list, members, (m) => m.userId, create, (el, m) => (el.dataset.sig === sig(m) ? undefined : create(m)));
    }
    this.invitedHead.hidden = invited.length === 0;
  }
}
