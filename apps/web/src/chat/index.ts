/**
 * The chat client: `mountChat(el, { baseUrl })` renders a Matrix chat app into `el`, talking
 * client-server HTTP to the homeserver at `baseUrl` (on the page, `location.origin`, answered by the
 * Service Worker). Built on matrix-js-sdk with its memory store and no crypto. See README.md.
 */
import './chat.css';
import { ClientEvent, SyncState, type MatrixClient } from 'matrix-js-sdk';
import { h, setChildren } from './dom.ts';
import { MediaCache } from './media.ts';
import { errorMessage, resumeSession, sessionClient } from './session.ts';
import { ChatStorage, type StoredSession } from './storage.ts';
import { authView } from './ui/auth-view.ts';
import { MainView } from './ui/main-view.ts';

export interface MountChatOptions {
  /** The homeserver's base URL, e.g. `location.origin`. */
  baseUrl: string;
}

class ChatApp {
  private readonly root: HTMLElement;
  private readonly store: ChatStorage;
  private client: MatrixClient | null = null;
  private media: MediaCache | null = null;
  private main: MainView | null = null;

  constructor(
    host: HTMLElement,
    private readonly baseUrl: string,
  ) {
    this.store = new ChatStorage(baseUrl);
    this.root = h('div', { class: 'mxc-chat', testid: 'chat-root' });
    setChildren(host, this.root);
  }

  private screen(...children: HTMLElement[]): void {
    setChildren(this.root, ...children);
  }

  private loading(text: string): void {
    this.screen(h('div', { class: 'mxc-splash', testid: 'chat-loading', role: 'status' }, h('div', { class: 'mxc-spinner', 'aria-hidden': 'true' }), h('p', null, text)));
  }

  async start(): Promise<void> {
    this.loading('Connecting to your homeserver…');
    const hadSession = !!this.store.activeSession;
    let session: StoredSession | null;
    try {
      session = await resumeSession(this.baseUrl, this.store);
    } catch (e) {
      this.failed(e);
      return;
    }
    if (session) this.startSession(session);
    else this.showAuth(hadSession ? 'Your session has expired. Please sign in again.' : undefined);
  }

  private failed(e: unknown): void {
    const retry = h('button', { type: 'button', class: 'mxc-button mxc-button-primary', testid: 'chat-retry', onclick: () => void this.start() }, 'Try again');
    const detail = errorMessage(e);
    this.screen(
      h(
        'div',
        { class: 'mxc-splash', testid: 'chat-error', role: 'alert' },
        h('h2', null, 'Cannot reach the homeserver'),
        h('p', { class: 'mxc-muted' }, `No answer from ${this.baseUrl}. If it runs in this browser, reloading the page restarts it.`),
        detail !== 'Cannot reach the homeserver.' ? h('p', { class: 'mxc-muted mxc-small' }, detail) : null,
        retry,
      ),
    );
  }

  private showAuth(message?: string): void {
    this.stopClient();
    this.screen(authView({ baseUrl: this.baseUrl, store: this.store, message, onSignedIn: (s) => this.startSession(s) }));
  }

  private stopClient(): void {
    this.main?.destroy();
    this.main = null;
    this.client?.stopClient();
    this.client?.removeAllListeners();
    this.client = null;
    this.media?.clear();
    this.media = null;
  }

  private startSession(session: StoredSession): void {
    this.stopClient();
    this.loading('Loading your conversations…');
    const client = sessionClient(this.baseUrl, session);
    this.client = client;
    this.media = new MediaCache(this.baseUrl, () => client.getAccessToken());
    const main = new MainView({
      host: this.root,
      client,
      store: this.store,
      media: this.media,
      onSignedOut: (message) => this.showAuth(message),
    });
    const onSync = (state: SyncState) => {
      if (state === SyncState.Prepared || state === SyncState.Syncing) {
        client.off(ClientEvent.Sync, onSync);
        if (this.client !== client) return;
        this.main = main;
        this.screen(main.el);
        main.start();
      } else if (state === SyncState.Error && !client.isInitialSyncComplete()) {
        // Keep waiting (the SDK retries), but say so.
        this.loading('Cannot reach the homeserver yet. Retrying…');
      }
    };
    client.on(ClientEvent.Sync, onSync);
    client.startClient({ initialSyncLimit: 30, lazyLoadMembers: false }).catch((e) => this.failed(e));
  }
}

/** Render the chat app into `el`, talking to the homeserver at `opts.baseUrl`. */
export function mountChat(el: HTMLElement, opts: MountChatOptions): void {
  void new ChatApp(el, opts.baseUrl.replace(/\/+$/, '')).start();
}
