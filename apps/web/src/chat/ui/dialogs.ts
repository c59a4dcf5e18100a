/**
 * Modal dialogs (native `<dialog>`): create room, join room, room directory, profile, image viewer,
 * confirmation. Each form shows errors in an alert and keeps the dialog open until the action works.
 */
import { Preset, Visibility, type IPublicRoomsChunkRoom, type MatrixClient } from 'matrix-js-sdk';
import { h, setChildren, type Child } from '../dom.ts';
import { displayAlias, normalizeRoomRef } from '../format.ts';
import { errorMessage } from '../session.ts';
import type { ChatStorage } from '../storage.ts';
import { avatar } from './avatar.ts';
import { icon } from './icons.ts';

export interface DialogContext {
  host: HTMLElement;
  client: MatrixClient;
  serverName: string;
  store: ChatStorage;
  /** Open a room (it may not be in the SDK's store yet). */
  selectRoom(roomId: string): void;
  /** The user changed their display name. */
  onProfileChanged(displayName: string): void;
  logout(): Promise<void>;
  /** Go to the sign-in screen, keeping this account's session for later. */
  switchAccount(): void;
}

interface Modal {
  dialog: HTMLDialogElement;
  close(): void;
}

/** Open a modal; it is removed from the DOM when closed. */
export function modal(host: HTMLElement, title: string, testid: string, body: (m: Modal) => Child, wide = false): Modal {
  const titleId = `mxc-dlg-${Math.random().toString(36).slice(2)}`;
  const dialog = h('dialog', { class: `mxc-dialog${wide ? ' is-wide' : ''}`, testid, 'aria-labelledby': titleId });
  const m: Modal = { dialog, close: () => dialog.close() };
  setChildren(
    dialog,
    h(
      'div',
      { class: 'mxc-dialog-head' },
      h('h2', { id: titleId }, title),
      h('button', { type: 'button', class: 'mxc-icon-button', 'aria-label': 'Close', testid: 'dialog-close', onclick: () => m.close() }, icon('close')),
    ),
    body(m),
  );
  dialog.addEventListener('close', () => dialog.remove());
  // Close when the backdrop is clicked.
  dialog.addEventListener('click', (e) => {
    if (e.target === dialog) m.close();
  });
  host.append(dialog);
  dialog.showModal();
  return m;
}

/** A form whose submit runs `action`; errors are shown in the form and the submit button is disabled meanwhile. */
function asyncForm(testid: string, fields: Child, submitLabel: string, submitTestid: string, action: () => Promise<void>, cancel?: () => void): HTMLFormElement {
  const error = h('p', { class: 'mxc-error', role: 'alert', testid: 'dialog-error', hidden: true });
  const submit = h('button', { type: 'submit', class: 'mxc-button mxc-button-primary', testid: submitTestid }, submitLabel);
  const form = h(
    'form',
    { class: 'mxc-form', testid, novalidate: false },
    fields,
    error,
    h('div', { class: 'mxc-form-actions' }, cancel ? h('button', { type: 'button', class: 'mxc-button', onclick: cancel }, 'Cancel') : null, submit),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (submit.disabled) return;
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    error.hidden = true;
    try {
      await action();
    } catch (err) {
      error.textContent = errorMessage(err);
      error.hidden = false;
    } finally {
      submit.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
  return form;
}

let fieldSeq = 0;
/** A labelled input. */
export function field(label: string, input: HTMLInputElement | HTMLTextAreaElement, hint?: Child): HTMLElement {
  const id = input.id || `mxc-f-${++fieldSeq}`;
  input.id = id;
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) input.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'mxc-field' }, h('label', { for: id }, label), input, hint ? h('p', { class: 'mxc-hint', id: hintId }, hint) : null);
}

export function createRoomDialog(ctx: DialogContext): void {
  const name = h('input', { type: 'text', required: true, maxLength: 255, autocomplete: 'off', testid: 'create-room-name' });
  const topic = h('input', { type: 'text', maxLength: 500, autocomplete: 'off', testid: 'create-room-topic' });
  const alias = h('input', { type: 'text', maxLength: 100, autocomplete: 'off', pattern: '#?[^:\\s]+', testid: 'create-room-alias', placeholder: 'e.g. book-club' });
  const aliasPreview = h('code', null, '#address');
  alias.addEventListener('input', () => {
    aliasPreview.textContent = `#${alias.value.trim().replace(/^#/, '').replace(/:.*$/, '') || 'address'}`;
  });
  const priv = h('input', { type: 'radio', name: 'mxc-visibility', value: 'private', checked: true, testid: 'create-room-private' });
  const pub = h('input', { type: 'radio', name: 'mxc-visibility', value: 'public', testid: 'create-room-public' });
  const m = modal(ctx.host, 'Create a room', 'create-room-dialog', (m) =>
    asyncForm(
      'create-room-form',
      [
        field('Name', name),
        field('Topic (optional)', topic),
        h(
          'fieldset',
          { class: 'mxc-fieldset' },
          h('legend', null, 'Who can join'),
          h('label', { class: 'mxc-radio' }, priv, h('span', null, h('strong', null, 'Private'), ' — only people you invite')),
          h('label', { class: 'mxc-radio' }, pub, h('span', null, h('strong', null, 'Public'), ' — anyone can join; listed in the room directory')),
        ),
        field('Address (optional)', alias, ['Others on this homeserver can join with ', aliasPreview, '.']),
      ],
      'Create room',
      'create-room-submit',
      async () => {
        const isPublic = pub.checked;
        const aliasName = alias.value.trim().replace(/^#/, '').replace(/:.*$/, '');
        const res = await ctx.client.createRoom({
          name: name.value.trim(),
          ...(topic.value.trim() ? { topic: topic.value.trim() } : {}),
          visibility: isPublic ? Visibility.Public : Visibility.Private,
          preset: isPublic ? Preset.PublicChat : Preset.PrivateChat,
          ...(aliasName ? { room_alias_name: aliasName } : {}),
        });
        m.close();
        ctx.selectRoom(res.room_id);
      },
      () => m.close(),
    ),
  );
  void m;
  name.focus();
}

export function joinRoomDialog(ctx: DialogContext): void {
  const input = h('input', { type: 'text', required: true, autocomplete: 'off', testid: 'join-room-input', placeholder: '#room:server or !id:server' });
  const m = modal(ctx.host, 'Join a room', 'join-room-dialog', (m) =>
    asyncForm(
      'join-room-form',
      field('Room address or ID', input, 'An address like #general (on this homeserver) or #general:server, or a room ID (!…).'),
      'Join',
      'join-room-submit',
      async () => {
        const ref = normalizeRoomRef(input.value, ctx.serverName);
        if (!ref) throw new Error('Enter a room address or ID.');
        const room = await ctx.client.joinRoom(ref);
        m.close();
        ctx.selectRoom(room.roomId);
      },
      () => m.close(),
    ),
  );
  void m;
  input.focus();
}

export function directoryDialog(ctx: DialogContext): void {
  const search = h('input', { type: 'search', autocomplete: 'off', testid: 'directory-search', placeholder: 'Search public rooms' });
  const status = h('p', { class: 'mxc-muted', role: 'status', testid: 'directory-status' });
  const list = h('ul', { class: 'mxc-directory', testid: 'directory-results', 'aria-label': 'Public rooms' });
  const more = h('button', { type: 'button', class: 'mxc-button mxc-button-quiet', testid: 'directory-more', hidden: true }, 'More rooms');
  let query = '';
  let nextBatch: string | undefined;
  let seq = 0;

  const row = (r: IPublicRoomsChunkRoom, close: () => void): HTMLElement => {
    const joined = ctx.client.getRoom(r.room_id)?.getMyMembership() === 'join';
    const title = r.name || (r.canonical_alias ? displayAlias(r.canonical_alias, ctx.serverName) : r.room_id);
    const button = h('button', { type: 'button', class: `mxc-button${joined ? '' : ' mxc-button-primary'}`, testid: 'directory-join' }, joined ? 'Open' : 'Join');
    button.onclick = async () => {
      button.disabled = true;
      try {
        if (!joined) await ctx.client.joinRoom(r.canonical_alias || r.room_id);
        close();
        ctx.selectRoom(r.room_id);
      } catch (e) {
        button.disabled = false;
        status.textContent = `Could not join ${title}: ${errorMessage(e)}`;
      }
    };
    return h(
      'li',
      { class: 'mxc-directory-room', testid: 'directory-room', 'data-room-id': r.room_id, 'data-room-name': title },
      avatar(r.room_id, title),
      h(
        'div',
        { class: 'mxc-directory-text' },
        h('div', { class: 'mxc-directory-name' }, title),
        r.canonical_alias && r.name ? h('div', { class: 'mxc-muted mxc-small', title: r.canonical_alias }, displayAlias(r.canonical_alias, ctx.serverName)) : null,
        r.topic ? h('div', { class: 'mxc-directory-topic' }, r.topic) : null,
        h('div', { class: 'mxc-muted mxc-small' }, `${r.num_joined_members} member${r.num_joined_members === 1 ? '' : 's'}`),
      ),
      button,
    );
  };

  const load = async (append: boolean, close: () => void) => {
    const mine = ++seq;
    status.textContent = 'Loading…';
    try {
      const res = await ctx.client.publicRooms({
        limit: 20,
        ...(append && nextBatch ? { since: nextBatch } : {}),
        ...(query ? { filter: { generic_search_term: query } } : {}),
      });
      if (mine !== seq) return;
      if (!append) list.replaceChildren();
      for (const r of res.chunk) list.append(row(r, close));
      nextBatch = res.next_batch;
      more.hidden = !nextBatch;
      status.textContent = list.children.length === 0 ? (query ? `No public rooms match “${query}”.` : 'No public rooms yet.') : `${res.total_room_count_estimate ?? list.children.length} public room${(res.total_room_count_estimate ?? list.children.length) === 1 ? '' : 's'}`;
    } catch (e) {
      if (mine === seq) status.textContent = `Could not load the directory: ${errorMessage(e)}`;
    }
  };

  const m = modal(
    ctx.host,
    'Explore public rooms',
    'directory-dialog',
    (m) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      search.addEventListener('input', () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          query = search.value.trim();
          void load(false, m.close);
        }, 250);
      });
      const form = h('form', { class: 'mxc-search-form', role: 'search' }, h('label', { class: 'mxc-visually-hidden', for: 'mxc-directory-search' }, 'Search public rooms'), search);
      search.id = 'mxc-directory-search';
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        clearTimeout(timer);
        query = search.value.trim();
        void load(false, m.close);
      });
      more.onclick = () => void load(true, m.close);
      return h('div', { class: 'mxc-directory-body' }, form, status, list, more);
    },
    true,
  );
  void load(false, m.close);
  search.focus();
}

export function profileDialog(ctx: DialogContext, currentName: string): void {
  const userId = ctx.client.getUserId() ?? '';
  const acct = ctx.store.account(userId);
  const nameInput = h('input', { type: 'text', value: currentName, maxLength: 255, required: true, autocomplete: 'nickname', testid: 'profile-display-name' });
  const saved = h('span', { class: 'mxc-muted', role: 'status', testid: 'profile-saved' });
  const password = h('input', { type: 'password', readOnly: true, value: acct?.password ?? '', testid: 'profile-password', autocomplete: 'off' });
  const reveal = h('button', { type: 'button', class: 'mxc-button mxc-button-quiet', 'aria-pressed': 'false', testid: 'profile-password-toggle' }, 'Show');
  reveal.onclick = () => {
    const show = password.type === 'password';
    password.type = show ? 'text' : 'password';
    reveal.textContent = show ? 'Hide' : 'Show';
    reveal.setAttribute('aria-pressed', String(show));
  };
  const logoutButton = h('button', { type: 'button', class: 'mxc-button mxc-button-danger', testid: 'logout' }, 'Log out');
  const switchButton = h('button', { type: 'button', class: 'mxc-button', testid: 'switch-account' }, 'Switch account');
  modal(ctx.host, 'Your profile', 'profile-dialog', (m) => {
    logoutButton.onclick = async () => {
      logoutButton.disabled = true;
      m.close();
      await ctx.logout();
    };
    switchButton.onclick = () => {
      m.close();
      ctx.switchAccount();
    };
    return h(
      'div',
      { class: 'mxc-profile' },
      h('div', { class: 'mxc-profile-id' }, avatar(userId, currentName, 'lg'), h('div', null, h('div', { class: 'mxc-profile-name' }, currentName), h('code', { class: 'mxc-small', testid: 'profile-user-id' }, userId))),
      asyncForm(
        'profile-form',
        [field('Display name', nameInput), saved],
        'Save',
        'profile-save',
        async () => {
          const n = nameInput.value.trim();
          if (!n) throw new Error('Enter a display name.');
          saved.textContent = '';
          await ctx.client.setDisplayName(n);
          ctx.store.rememberAccount({ userId, username: acct?.username ?? userId.replace(/^@|:.*$/g, ''), displayName: n });
          ctx.onProfileChanged(n);
          saved.textContent = 'Saved.';
        },
      ),
      h(
        'section',
        { class: 'mxc-profile-account', 'aria-label': 'Sign-in details' },
        h('h3', null, 'Sign-in details'),
        h('p', { class: 'mxc-hint' }, 'Keep these to sign in again after logging out. This browser remembers them.'),
        h('div', { class: 'mxc-field' }, h('span', { class: 'mxc-label' }, 'Username'), h('code', { testid: 'profile-username' }, acct?.username ?? userId.replace(/^@|:.*$/g, ''))),
        acct?.password ? h('div', { class: 'mxc-field' }, h('label', { for: 'mxc-profile-password' }, 'Password'), h('div', { class: 'mxc-row' }, Object.assign(password, { id: 'mxc-profile-password' }), reveal)) : null,
      ),
      h('div', { class: 'mxc-form-actions' }, switchButton, logoutButton),
    );
  });
}

export function imageViewer(host: HTMLElement, url: string, alt: string): void {
  modal(host, alt || 'Image', 'image-viewer', () => h('div', { class: 'mxc-image-viewer' }, h('img', { src: url, alt }), h('a', { href: url, download: alt || 'image', class: 'mxc-button' }, 'Download')), true);
}

/** Ask before doing something; resolves true on confirm. */
export function confirmDialog(host: HTMLElement, title: string, text: string, confirmLabel: string, testid = 'confirm-dialog'): Promise<boolean> {
  return new Promise((resolve) => {
    let answered = false;
    const m = modal(host, title, testid, (m) =>
      h(
        'div',
        null,
        h('p', null, text),
        h(
          'div',
          { class: 'mxc-form-actions' },
          h('button', { type: 'button', class: 'mxc-button', testid: 'confirm-cancel', onclick: () => m.close() }, 'Cancel'),
          h('button', { type: 'button', class: 'mxc-button mxc-button-danger', testid: 'confirm-ok', onclick: () => { answered = true; resolve(true); m.close(); } }, confirmLabel),
        ),
      ),
    );
    m.dialog.addEventListener('close', () => {
      if (!answered) resolve(false);
    });
  });
}
