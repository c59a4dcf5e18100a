/**
 * The signed-in screen: sidebar (me, actions, invites, rooms with unread counts), the open room
 * (header, timeline, typing line, composer), and the member panel.
 */
import {
  ClientEvent,
  HttpApiEvent,
  NotificationCountType,
  RoomEvent,
  RoomMemberEvent,
  RoomStateEvent,
  SyncState,
  type MatrixClient,
  type MatrixEvent,
  type Room,
} from 'matrix-js-sdk';
import { batched, h, reconcile, setChildren } from '../dom.ts';
import { displayAlias, localpart, serverOf, shortId } from '../format.ts';
import type { MediaCache } from '../media.ts';
import { errorMessage, logout } from '../session.ts';
import type { ChatStorage } from '../storage.ts';
import { avatar } from './avatar.ts';
import { Composer } from './composer.ts';
import { confirmDialog, createRoomDialog, directoryDialog, imageViewer, joinRoomDialog, profileDialog, type DialogContext } from './dialogs.ts';
import { MembersPanel } from './members.ts';
import { ProfileNames, setProfileNames } from '../profiles.ts';
import { isShownEvent, nameOf, previewOf, TimelineView } from './timeline.ts';
import { icon } from './icons.ts';

export interface MainDeps {
  /** The chat root (dialogs are appended here). */
  host: HTMLElement;
  client: MatrixClient;
  store: ChatStorage;
  media: MediaCache;
  /** Called after logout, account switch, or when the server ended the session. */
  onSignedOut(message?: string): void;
}

const NARROW = '(max-width: 720px)';

export class MainView {
  readonly el: HTMLElement;
  private readonly client: MatrixClient;
  private readonly me: string;
  private readonly serverName: string;
  private myName: string;
  private readonly meEl: HTMLElement;
  private readonly syncStatus: HTMLElement;
  private readonly toastEl: HTMLElement;
  private toastTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly inviteSection: HTMLElement;
  private readonly inviteList: HTMLUListElement;
  private readonly roomList: HTMLUListElement;
  private readonly roomsEmpty: HTMLElement;
  private readonly pane: HTMLElement;
  private readonly header: HTMLElement;
  private readonly body: HTMLElement;
  private readonly typingEl: HTMLElement;
  private readonly timeline: TimelineView;
  private readonly composer: Composer;
  private readonly members: MembersPanel;
  private selected: string | null = null;
  private membersOpen = false;
  private ready = false;
  private readonly receiptSent = new Map<string, string>();
  private readonly disposers: (() => void)[] = [];
  readonly render = batched(() => this.renderNow());

  constructor(private readonly deps: MainDeps) {
    const client = deps.client;
    this.client = client;
    this.me = client.getUserId() ?? '';
    this.serverName = serverOf(this.me);
    this.myName = deps.store.account(this.me)?.displayName ?? localpart(this.me);

    this.meEl = h('div', { class: 'mxc-me' });
    this.syncStatus = h('div', { class: 'mxc-sync-status', role: 'status', testid: 'sync-status', hidden: true });
    this.toastEl = h('div', { class: 'mxc-toast', role: 'alert', testid: 'chat-toast', hidden: true });
    this.inviteList = h('ul', { class: 'mxc-room-list', testid: 'invite-list', 'aria-labelledby': 'mxc-invites-title' });
    this.inviteSection = h('section', { class: 'mxc-room-section', hidden: true }, h('h2', { class: 'mxc-section-title', id: 'mxc-invites-title' }, 'Invites'), this.inviteList);
    this.roomList = h('ul', { class: 'mxc-room-list', testid: 'room-list', 'aria-labelledby': 'mxc-rooms-title' });
    this.roomsEmpty = h('p', { class: 'mxc-muted mxc-rooms-empty', testid: 'rooms-empty' }, 'No rooms yet. Create one, or explore public rooms.');
    const sidebar = h(
      'aside',
      { class: 'mxc-sidebar', 'aria-label': 'Rooms and account' },
      this.meEl,
      h(
        'div',
        { class: 'mxc-actions' },
        h('button', { type: 'button', class: 'mxc-button mxc-button-primary', testid: 'open-create-room', onclick: () => createRoomDialog(this.dialogContext()) }, '+ New room'),
        h('button', { type: 'button', class: 'mxc-button', testid: 'open-join-room', onclick: () => joinRoomDialog(this.dialogContext()) }, 'Join'),
        h('button', { type: 'button', class: 'mxc-button', testid: 'open-directory', onclick: () => directoryDialog(this.dialogContext()) }, 'Explore'),
      ),
      this.syncStatus,
      h('nav', { class: 'mxc-rooms', 'aria-label': 'Rooms' }, this.inviteSection, h('section', { class: 'mxc-room-section' }, h('h2', { class: 'mxc-section-title', id: 'mxc-rooms-title' }, 'Rooms'), this.roomList, this.roomsEmpty)),
    );

    this.timeline = new TimelineView({
      client,
      media: deps.media,
      onAtBottom: () => this.markRead(),
      openImage: (url, alt) => imageViewer(this.deps.host, url, alt),
    });
    this.composer = new Composer(client, deps.media);
    this.members = new MembersPanel(client, this.serverName, () => this.toggleMembers(false));
    this.header = h('header', { class: 'mxc-room-header' });
    this.typingEl = h('div', { class: 'mxc-typing', 'aria-live': 'polite', testid: 'typing' });
    this.body = h('div', { class: 'mxc-room-body' });
    this.pane = h('section', { class: 'mxc-room', testid: 'room-view', 'aria-label': 'Room' }, this.header, this.body);
    this.composer.acceptDrop(this.pane);
    this.el = h('div', { class: 'mxc-main', testid: 'chat-main' }, sidebar, this.pane, this.members.el, this.toastEl);
  }

  private dialogContext(): DialogContext {
    return {
      host: this.deps.host,
      client: this.client,
      serverName: this.serverName,
      store: this.deps.store,
      selectRoom: (id) => this.select(id),
      onProfileChanged: (name) => {
        this.myName = name;
        this.render();
      },
      logout: () => this.logout(),
      switchAccount: () => {
        this.destroy();
        this.deps.store.deactivate();
        this.deps.onSignedOut();
      },
    };
  }

  /** Subscribe to the client and render; the client must already be started. */
  start(): void {
    const c = this.client;
    setProfileNames(new ProfileNames(c, () => this.render()));
    this.disposers.push(() => setProfileNames(null));
    const on = (event: string, fn: (...args: never[]) => void) => {
      (c as unknown as { on(e: string, f: unknown): void }).on(event, fn);
      this.disposers.push(() => (c as unknown as { off(e: string, f: unknown): void }).off(event, fn));
    };
    on(ClientEvent.Sync, ((state: SyncState) => {
      this.showSyncState(state);
      if ((state === SyncState.Prepared || state === SyncState.Syncing) && !this.ready) {
        this.ready = true;
        this.pickInitialRoom();
      }
      this.render();
    }) as never);
    for (const e of [ClientEvent.Room, ClientEvent.DeleteRoom, RoomEvent.Timeline, RoomEvent.TimelineReset, RoomEvent.LocalEchoUpdated, RoomEvent.Redaction, RoomEvent.Name, RoomEvent.MyMembership, RoomEvent.Receipt, RoomStateEvent.Members, RoomStateEvent.Events, RoomMemberEvent.Name, RoomMemberEvent.Membership, RoomMemberEvent.Typing, RoomMemberEvent.PowerLevel]) {
      on(e, () => this.render());
    }
    on(RoomEvent.MyMembership, ((room: Room, membership: string) => {
      if (room.roomId === this.selected && membership !== 'join' && membership !== 'invite') this.select(null);
    }) as never);
    on(HttpApiEvent.SessionLoggedOut, (() => {
      this.destroy();
      this.deps.store.dropSession(this.me);
      this.deps.onSignedOut('Your session has ended. Please sign in again.');
    }) as never);
    const onVisible = () => {
      if (document.visibilityState === 'visible') this.markRead();
    };
    document.addEventListener('visibilitychange', onVisible);
    this.disposers.push(() => document.removeEventListener('visibilitychange', onVisible));
    const mq = window.matchMedia(NARROW);
    const onMq = () => this.render();
    mq.addEventListener('change', onMq);
    this.disposers.push(() => mq.removeEventListener('change', onMq));
    void this.client.getProfileInfo(this.me).then(
      (p) => {
        if (p.displayname && p.displayname !== this.myName) {
          this.myName = p.displayname;
          this.render();
        }
      },
      () => {},
    );
    if (this.client.isInitialSyncComplete()) {
      this.ready = true;
      this.pickInitialRoom();
    }
    this.renderNow();
  }

  destroy(): void {
    for (const d of this.disposers.splice(0)) d();
  }

  private pickInitialRoom(): void {
    if (this.selected) return;
    const last = this.deps.store.lastRoom(this.me);
    const room = last ? this.client.getRoom(last) : null;
    if (room && (room.getMyMembership() === 'join' || room.getMyMembership() === 'invite')) {
      this.select(room.roomId, false);
      return;
    }
    if (!window.matchMedia(NARROW).matches) {
      const first = this.joinedRooms()[0];
      if (first) this.select(first.roomId, false);
    }
  }

  /** Open a room (or none). */
  select(roomId: string | null, focus = true): void {
    this.selected = roomId;
    this.deps.store.setLastRoom(this.me, roomId);
    this.renderNow();
    if (roomId && focus) this.composer.focus();
  }

  private async logout(): Promise<void> {
    this.destroy();
    await logout(this.client, this.deps.store);
    this.deps.onSignedOut();
  }

  /** A short message at the bottom of the screen (errors of one-click actions). */
  private toast(text: string): void {
    clearTimeout(this.toastTimer);
    this.toastEl.textContent = text;
    this.toastEl.hidden = false;
    this.toastTimer = setTimeout(() => (this.toastEl.hidden = true), 6000);
  }

  private toggleMembers(open = !this.membersOpen): void {
    this.membersOpen = open;
    this.renderNow();
  }

  private showSyncState(state: SyncState): void {
    const text =
      state === SyncState.Error || state === SyncState.Reconnecting
        ? 'Cannot reach the homeserver. Retrying…'
        : state === SyncState.Catchup
          ? 'Reconnecting…'
          : '';
    this.syncStatus.textContent = text;
    this.syncStatus.hidden = !text;
    this.syncStatus.dataset.state = state;
  }

  private joinedRooms(): Room[] {
    return this.client
      .getRooms()
      .filter((r) => r.getMyMembership() === 'join')
      .sort((a, b) => b.getLastActiveTimestamp() - a.getLastActiveTimestamp());
  }

  private invitedRooms(): Room[] {
    return this.client.getRooms().filter((r) => r.getMyMembership() === 'invite');
  }

  /** Send a read receipt for the newest event of the open room, if the user can see it. */
  private markRead(): void {
    const room = this.selected ? this.client.getRoom(this.selected) : null;
    if (!room || room.getMyMembership() !== 'join' || document.visibilityState !== 'visible' || !this.timeline.atBottom()) return;
    const events = room.getLiveTimeline().getEvents();
    let ev: MatrixEvent | undefined;
    for (let i = events.length - 1; i >= 0; i--) {
      const e = events[i]!;
      if (e.status === null && e.getId() && !e.getId()!.startsWith('~')) {
        ev = e;
        break;
      }
    }
    if (!ev) return;
    const id = ev.getId()!;
    if (this.receiptSent.get(room.roomId) === id) return;
    this.receiptSent.set(room.roomId, id);
    if (ev.getSender() === this.me && room.getUnreadNotificationCount(NotificationCountType.Total) === 0) return;
    this.client.sendReadReceipt(ev).catch((e) => {
      this.receiptSent.delete(room.roomId);
      console.warn('read receipt failed', e);
    });
  }

  private renderNow(): void {
    const narrow = window.matchMedia(NARROW).matches;
    this.el.classList.toggle('has-room', !!this.selected);
    this.el.classList.toggle('has-members', this.membersOpen && !!this.selected);
    this.renderMe();
    this.renderRoomList();
    this.renderPane(narrow);
  }

  private renderMe(): void {
    const sig = `${this.myName}|${this.me}`;
    if (this.meEl.dataset.sig === sig) return;
    this.meEl.dataset.sig = sig;
    setChildren(
      this.meEl,
      h(
        'button',
        { type: 'button', class: 'mxc-me-button', testid: 'open-profile', 'aria-label': `Profile and settings for ${this.myName}` },
        avatar(this.me, this.myName),
        h('span', { class: 'mxc-me-text' }, h('span', { class: 'mxc-me-name', testid: 'my-name' }, this.myName), h('span', { class: 'mxc-muted mxc-small', testid: 'my-user-id', title: this.me }, shortId(this.me))),
        h('span', { class: 'mxc-me-gear' }, icon('settings')),
      ),
    );
    (this.meEl.firstElementChild as HTMLButtonElement).onclick = () => profileDialog(this.dialogContext(), this.myName);
  }

  private roomRow(room: Room): { sig: string; build: () => HTMLElement } {
    const selected = room.roomId === this.selected;
    const count = selected ? 0 : room.getUnreadNotificationCount(NotificationCountType.Total);
    const highlight = selected ? 0 : room.getUnreadNotificationCount(NotificationCountType.Highlight);
    const events = room.getLiveTimeline().getEvents();
    let last: MatrixEvent | undefined;
    for (let i = events.length - 1; i >= 0; i--) {
      if (isShownEvent(events[i]!)) {
        last = events[i];
        break;
      }
    }
    const preview = last ? previewOf(room, last) : '';
    const sig = [room.name, selected, count, highlight, preview].join('|');
    const build = () =>
      h(
        'li',
        { class: `mxc-room-item${selected ? ' is-selected' : ''}${count ? ' is-unread' : ''}`, testid: 'room-item', 'data-room-id': room.roomId, 'data-room-name': room.name, 'data-unread': String(count) },
        h(
          'button',
          { type: 'button', class: 'mxc-room-button', 'aria-current': selected ? 'true' : null, onclick: () => this.select(room.roomId) },
          avatar(room.roomId, room.name),
          h('span', { class: 'mxc-room-text' }, h('span', { class: 'mxc-room-name', testid: 'room-item-name' }, room.name), h('span', { class: 'mxc-room-preview' }, preview)),
          count ? h('span', { class: `mxc-badge${highlight ? ' is-highlight' : ''}`, testid: 'room-unread', 'aria-label': `${count} unread` }, count > 99 ? '99+' : String(count)) : null,
        ),
      );
    return { sig, build };
  }

  private inviteRow(room: Room): { sig: string; build: () => HTMLElement } {
    const inviter = room.getMember(this.me)?.events.member?.getSender();
    const inviterName = nameOf(room, inviter);
    const sig = [room.name, inviterName, room.roomId === this.selected].join('|');
    const build = () => {
      const accept = h('button', { type: 'button', class: 'mxc-button mxc-button-primary mxc-button-small', testid: 'invite-accept' }, 'Accept');
      const decline = h('button', { type: 'button', class: 'mxc-button mxc-button-small', testid: 'invite-decline' }, 'Decline');
      accept.onclick = () => void this.acceptInvite(room.roomId, accept);
      decline.onclick = () => void this.declineInvite(room.roomId, decline);
      return h(
        'li',
        { class: `mxc-invite-item${room.roomId === this.selected ? ' is-selected' : ''}`, testid: 'invite-item', 'data-room-id': room.roomId, 'data-room-name': room.name },
        h(
          'button',
          { type: 'button', class: 'mxc-room-button', onclick: () => this.select(room.roomId) },
          avatar(room.roomId, room.name),
          h('span', { class: 'mxc-room-text' }, h('span', { class: 'mxc-room-name' }, room.name), h('span', { class: 'mxc-room-preview' }, `Invited by ${inviterName}`)),
        ),
        h('div', { class: 'mxc-invite-actions' }, accept, decline),
      );
    };
    return { sig, build };
  }

  private async acceptInvite(roomId: string, button?: HTMLButtonElement): Promise<void> {
    if (button) button.disabled = true;
    try {
      await this.client.joinRoom(roomId);
      this.select(roomId);
    } catch (e) {
      if (button) button.disabled = false;
      this.toast(`Could not join: ${errorMessage(e)}`);
    }
  }

  private async declineInvite(roomId: string, button?: HTMLButtonElement): Promise<void> {
    if (button) button.disabled = true;
    try {
      await this.client.leave(roomId);
      if (this.selected === roomId) this.select(null);
    } catch (e) {
      if (button) button.disabled = false;
      this.toast(`Could not decline: ${errorMessage(e)}`);
    }
  }

  private renderRoomList(): void {
    const keyed = <T extends { sig: string; build: () => HTMLElement }>(rows: { id: string; row: T }[], list: HTMLElement) =>
      reconcile(
        list,
        rows,
        (r) => r.id,
        (r) => withSig(r.row.build(), r.row.sig),
        (el, r) => (el.dataset.sig === r.row.sig ? undefined : withSig(r.row.build(), r.row.sig)),
      );
    const invites = this.invitedRooms();
    keyed(invites.map((r) => ({ id: r.roomId, row: this.inviteRow(r) })), this.inviteList);
    this.inviteSection.hidden = invites.length === 0;
    const rooms = this.joinedRooms();
    keyed(rooms.map((r) => ({ id: r.roomId, row: this.roomRow(r) })), this.roomList);
    this.roomsEmpty.hidden = rooms.length > 0 || !this.ready;
  }

  private renderPane(narrow: boolean): void {
    const room = this.selected ? this.client.getRoom(this.selected) : null;
    const membership = room?.getMyMembership();
    const back = narrow
      ? h('button', { type: 'button', class: 'mxc-icon-button mxc-back', 'aria-label': 'Back to rooms', testid: 'back-to-rooms', onclick: () => this.select(null) }, icon('back'))
      : null;

    if (!this.selected) {
      this.setPaneMode('empty', () => {
        setChildren(this.header);
        setChildren(
          this.body,
          h(
            'div',
            { class: 'mxc-empty', testid: 'no-room' },
            h('h2', null, this.ready ? 'Welcome!' : 'Loading your rooms…'),
            this.ready ? h('p', { class: 'mxc-muted' }, 'Pick a room on the left, create a new one, or explore public rooms.') : null,
          ),
        );
      });
      this.timeline.setRoom(null);
      this.composer.setRoom(null, false);
      return;
    }
    if (!room || (membership !== 'join' && membership !== 'invite')) {
      this.setPaneMode(`loading:${this.selected}`, () => {
        setChildren(this.header, back);
        setChildren(this.body, h('div', { class: 'mxc-empty', testid: 'room-loading' }, h('p', { class: 'mxc-muted' }, 'Loading room…')));
      });
      this.timeline.setRoom(null);
      this.composer.setRoom(null, false);
      return;
    }
    if (membership === 'invite') {
      const inviter = room.getMember(this.me)?.events.member?.getSender();
      const inviterName = nameOf(room, inviter);
      this.setPaneMode(`invite:${room.roomId}:${room.name}:${inviterName}`, () => {
        setChildren(this.header, back, h('div', { class: 'mxc-room-title' }, h('h1', { testid: 'room-name' }, room.name)));
        const accept = h('button', { type: 'button', class: 'mxc-button mxc-button-primary', testid: 'invite-preview-accept' }, 'Accept');
        const decline = h('button', { type: 'button', class: 'mxc-button', testid: 'invite-preview-decline' }, 'Decline');
        accept.onclick = () => void this.acceptInvite(room.roomId, accept);
        decline.onclick = () => void this.declineInvite(room.roomId, decline);
        setChildren(
          this.body,
          h('div', { class: 'mxc-empty', testid: 'invite-preview' }, avatar(room.roomId, room.name, 'lg'), h('h2', null, room.name), h('p', null, `${inviterName} invited you to join.`), h('div', { class: 'mxc-row mxc-center' }, accept, decline)),
        );
      });
      this.timeline.setRoom(null);
      this.composer.setRoom(null, false);
      return;
    }

    // A joined room.
    this.setPaneMode(`room:${room.roomId}`, () => {
      setChildren(this.body, this.timeline.el, this.typingEl, this.composer.el);
    });
    this.renderHeader(room, back);
    this.timeline.setRoom(room);
    this.timeline.render();
    this.composer.setRoom(room.roomId, room.maySendMessage());
    const typing = room
      .getMembers()
      .filter((m) => m.typing && m.userId !== this.me)
      .map((m) => m.name);
    const typingText = typing.length === 0 ? '' : typing.length === 1 ? `${typing[0]} is typing…` : typing.length === 2 ? `${typing[0]} and ${typing[1]} are typing…` : 'Several people are typing…';
    if (this.typingEl.textContent !== typingText) this.typingEl.textContent = typingText;
    if (this.membersOpen) this.members.setRoom(room);
  }

  private paneMode = '';
  private setPaneMode(mode: string, build: () => void): void {
    if (this.paneMode === mode) return;
    this.paneMode = mode;
    build();
  }

  private renderHeader(room: Room, back: HTMLElement | null): void {
    const topic = room.currentState.getStateEvents('m.room.topic', '')?.getContent().topic as string | undefined;
    const alias = room.getCanonicalAlias();
    const count = room.getJoinedMemberCount();
    const sig = [room.roomId, room.name, topic, alias, count, this.membersOpen, !!back].join('|');
    if (this.header.dataset.sig === sig) return;
    this.header.dataset.sig = sig;
    const leave = h('button', { type: 'button', class: 'mxc-button mxc-button-quiet', testid: 'leave-room' }, icon('leave', 16), 'Leave');
    leave.onclick = async () => {
      if (!(await confirmDialog(this.deps.host, `Leave ${room.name}?`, 'You can rejoin a public room later; a private room needs a new invite.', 'Leave', 'leave-confirm'))) return;
      leave.disabled = true;
      try {
        await this.client.leave(room.roomId);
        this.select(null);
      } catch (e) {
        leave.disabled = false;
        this.toast(`Could not leave: ${errorMessage(e)}`);
      }
    };
    setChildren(
      this.header,
      back,
      avatar(room.roomId, room.name),
      h(
        'div',
        { class: 'mxc-room-title' },
        h('h1', { testid: 'room-name' }, room.name),
        topic || alias ? h('p', { class: 'mxc-room-topic', testid: 'room-topic' }, [alias ? h('code', { testid: 'room-alias', title: alias }, displayAlias(alias, this.serverName)) : null, alias && topic ? ' · ' : null, topic ?? null]) : null,
      ),
      h('div', { class: 'mxc-room-actions' },
        h('button', { type: 'button', class: 'mxc-button mxc-button-quiet', testid: 'toggle-members', 'aria-pressed': String(this.membersOpen), 'aria-label': `Members (${count})`, onclick: () => this.toggleMembers() }, icon('users'), String(count)),
        leave,
      ),
    );
  }
}

function withSig(el: HTMLElement, sig: string): HTMLElement {
  el.dataset.sig = sig;
  return el;
}
