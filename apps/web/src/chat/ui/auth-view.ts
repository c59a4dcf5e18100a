/**
 * The sign-in screen. First run: choose a display name and an account is created on this node
 * (generated username and password, remembered in this browser). Returning users: one click on a
 * remembered account, or username + password.
 */
import { h, setChildren } from '../dom.ts';
import { shortId } from '../format.ts';
import { continueAs, errorMessage, login, registerAccount } from '../session.ts';
import type { ChatStorage, StoredSession } from '../storage.ts';
import { avatar } from './avatar.ts';
import { confirmDialog } from './dialogs.ts';

export interface AuthDeps {
  baseUrl: string;
  store: ChatStorage;
  message?: string;
  onSignedIn(session: StoredSession): void;
}

export function authView(deps: AuthDeps): HTMLElement {
  const { baseUrl, store } = deps;
  const card = h('div', { class: 'mxc-auth-card' });
  const root = h('div', { class: 'mxc-auth', testid: 'auth-screen' }, card);
  let mode: 'signup' | 'login' = 'signup';
  let prefillUser = '';

  const error = h('p', { class: 'mxc-error', role: 'alert', testid: 'auth-error', hidden: true });
  const showError = (e: unknown) => {
    error.textContent = errorMessage(e);
    error.hidden = false;
  };

  /** Run an async sign-in with the form disabled. */
  const run = async (form: HTMLElement, fn: () => Promise<StoredSession>) => {
    const controls = Array.from(form.querySelectorAll('button, input')) as (HTMLButtonElement | HTMLInputElement)[];
    controls.forEach((c) => (c.disabled = true));
    form.setAttribute('aria-busy', 'true');
    error.hidden = true;
    try {
      const session = await fn();
      deps.onSignedIn(session);
    } catch (e) {
      showError(e);
      controls.forEach((c) => (c.disabled = false));
      form.removeAttribute('aria-busy');
    }
  };

  const render = () => {
    const accounts = store.accounts;
    const nameInput = h('input', { type: 'text', id: 'mxc-signup-name', required: true, maxLength: 64, autocomplete: 'nickname', testid: 'signup-name', placeholder: 'e.g. Alice' });
    const signup = h(
      'form',
      { class: 'mxc-form', testid: 'signup-form' },
      h('div', { class: 'mxc-field' }, h('label', { for: 'mxc-signup-name' }, 'Your name'), nameInput, h('p', { class: 'mxc-hint' }, 'Shown to people you chat with. A username and password are generated and remembered in this browser.')),
      h('button', { type: 'submit', class: 'mxc-button mxc-button-primary mxc-button-wide', testid: 'signup-submit' }, 'Create account'),
    );
    signup.addEventListener('submit', (e) => {
      e.preventDefault();
      const name = nameInput.value.trim();
      if (!name) {
        showError(new Error('Enter a name.'));
        return;
      }
      void run(signup, () => registerAccount(baseUrl, store, name));
    });

    const userInput = h('input', { type: 'text', id: 'mxc-login-user', required: true, autocomplete: 'username', testid: 'login-username', autocapitalize: 'none', spellcheck: false, value: prefillUser });
    const passInput = h('input', { type: 'password', id: 'mxc-login-pass', required: true, autocomplete: 'current-password', testid: 'login-password' });
    const loginForm = h(
      'form',
      { class: 'mxc-form', testid: 'login-form' },
      h('div', { class: 'mxc-field' }, h('label', { for: 'mxc-login-user' }, 'Username'), userInput),
      h('div', { class: 'mxc-field' }, h('label', { for: 'mxc-login-pass' }, 'Password'), passInput),
      h('button', { type: 'submit', class: 'mxc-button mxc-button-primary mxc-button-wide', testid: 'login-submit' }, 'Sign in'),
    );
    loginForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void run(loginForm, () => login(baseUrl, store, userInput.value, passInput.value));
    });

    const known = accounts.length
      ? h(
          'section',
          { class: 'mxc-known', 'aria-labelledby': 'mxc-known-title' },
          h('h2', { id: 'mxc-known-title', class: 'mxc-section-title' }, 'Accounts on this device'),
          h(
            'ul',
            { class: 'mxc-known-list', testid: 'known-accounts' },
            accounts.map((a) => {
              const item = h('li', { class: 'mxc-known-item', testid: 'known-account', 'data-user-id': a.userId });
              const cont = h(
                'button',
                { type: 'button', class: 'mxc-known-button', testid: 'account-continue', 'aria-label': `Continue as ${a.displayName ?? a.username}` },
                avatar(a.userId, a.displayName ?? a.username),
                h('span', { class: 'mxc-room-text' }, h('span', { class: 'mxc-room-name' }, a.displayName ?? a.username), h('span', { class: 'mxc-room-preview' }, shortId(a.userId))),
              );
              cont.onclick = () =>
                void run(item, async () => {
                  const s = await continueAs(baseUrl, store, a.userId);
                  if (s) return s;
                  // Neither a live session nor a stored password that works: ask for the password.
                  mode = 'login';
                  prefillUser = a.username;
                  render();
                  throw new Error(`Enter the password for ${a.username}.`);
                });
              const forget = h('button', { type: 'button', class: 'mxc-button mxc-button-quiet mxc-button-small', testid: 'account-forget', 'aria-label': `Forget ${a.displayName ?? a.username} on this device` }, 'Forget');
              forget.onclick = async () => {
                const who = a.displayName ?? a.username;
                if (!(await confirmDialog(root, `Forget ${who}?`, `This browser will no longer remember ${who}'s session and password. To sign in again you will need the username (${a.username}) and password.`, 'Forget', 'forget-confirm'))) return;
                store.forgetAccount(a.userId);
                render();
              };
              setChildren(item, cont, forget);
              return item;
            }),
          ),
        )
      : null;

    const switcher =
      mode === 'signup'
        ? h('p', { class: 'mxc-switch' }, 'Have an account? ', h('button', { type: 'button', class: 'mxc-link', testid: 'show-login', onclick: () => { mode = 'login'; error.hidden = true; render(); } }, 'Sign in with a password'))
        : h('p', { class: 'mxc-switch' }, 'New here? ', h('button', { type: 'button', class: 'mxc-link', testid: 'show-signup', onclick: () => { mode = 'signup'; error.hidden = true; render(); } }, 'Create an account'));

    setChildren(
      card,
      h('div', { class: 'mxc-brand' }, h('span', { class: 'mxc-logo', 'aria-hidden': 'true' }, '◆'), h('h1', null, 'matrix-p2p chat')),
      h('p', { class: 'mxc-muted' }, 'Your homeserver runs right here, in this browser. Your conversations stay on this device.'),
      deps.message ? h('p', { class: 'mxc-notice-box', role: 'status', testid: 'auth-message' }, deps.message) : null,
      known,
      h('h2', { class: 'mxc-section-title' }, mode === 'signup' ? (accounts.length ? 'Create another account' : 'Get started') : 'Sign in'),
      mode === 'signup' ? signup : loginForm,
      error,
      switcher,
    );
    (mode === 'signup' ? nameInput : prefillUser ? passInput : userInput).focus();
  };
  render();
  return root;
}
