/**
 * The message composer: Enter sends, Shift+Enter adds a line, `/me text` sends an emote. Images and
 * files come from the attach button, paste, or drag-and-drop; they are uploaded with `uploadContent`
 * and sent as `m.image` / `m.file`. Drafts are kept per room; typing notifications are sent.
 */
import { MsgType, type MatrixClient } from 'matrix-js-sdk';
import type { RoomMessageEventContent } from 'matrix-js-sdk/lib/@types/events.js';
import { h } from '../dom.ts';
import { formatSize } from '../format.ts';
import type { MediaCache } from '../media.ts';
import { errorMessage } from '../session.ts';
import { icon } from './icons.ts';

export class Composer {
  readonly el: HTMLFormElement;
  private readonly input: HTMLTextAreaElement;
  private readonly fileInput: HTMLInputElement;
  private readonly status: HTMLElement;
  private roomId: string | null = null;
  private readonly drafts = new Map<string, string>();
  private typingSentAt = 0;
  private uploads = 0;

  constructor(
    private readonly client: MatrixClient,
    private readonly media: MediaCache,
  ) {
    this.input = h('textarea', { class: 'mxc-composer-input', rows: 1, placeholder: 'Message', 'aria-label': 'Message', testid: 'composer-input', enterKeyHint: 'send' });
    this.fileInput = h('input', { type: 'file', class: 'mxc-visually-hidden', multiple: true, testid: 'composer-file', id: `mxc-file-${Math.random().toString(36).slice(2)}`, tabindex: '-1', 'aria-hidden': 'true' });
    const attach = h('button', { type: 'button', class: 'mxc-icon-button mxc-attach', 'aria-label': 'Attach an image or file', title: 'Attach an image or file', testid: 'composer-attach' }, icon('attach', 20));
    attach.onclick = () => this.fileInput.click();
    this.status = h('div', { class: 'mxc-composer-status', role: 'status', 'aria-live': 'polite', testid: 'upload-status' });
    const send = h('button', { type: 'submit', class: 'mxc-button mxc-button-primary mxc-send', testid: 'composer-send' }, 'Send');
    this.el = h('form', { class: 'mxc-composer', testid: 'composer', 'aria-label': 'Send a message' }, this.status, h('div', { class: 'mxc-composer-row' }, attach, this.fileInput, this.input, send));

    this.el.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.sendText();
    });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        void this.sendText();
      }
    });
    this.input.addEventListener('input', () => {
      this.autosize();
      if (this.roomId) this.drafts.set(this.roomId, this.input.value);
      this.typing(this.input.value.length > 0);
    });
    this.input.addEventListener('paste', (e) => {
      const files = Array.from(e.clipboardData?.files ?? []);
      if (files.length) {
        e.preventDefault();
        void this.sendFiles(files);
      }
    });
    this.fileInput.addEventListener('change', () => {
      const files = Array.from(this.fileInput.files ?? []);
      this.fileInput.value = '';
      void this.sendFiles(files);
    });
  }

  /** Files dropped anywhere on the room view. */
  acceptDrop(target: HTMLElement): void {
    target.addEventListener('dragover', (e) => {
      if (!this.roomId || !e.dataTransfer?.types.includes('Files')) return;
      e.preventDefault();
      target.classList.add('is-dragging');
    });
    target.addEventListener('dragleave', (e) => {
      if (e.target === target) target.classList.remove('is-dragging');
    });
    target.addEventListener('drop', (e) => {
      target.classList.remove('is-dragging');
      const files = Array.from(e.dataTransfer?.files ?? []);
      if (!files.length || !this.roomId) return;
      e.preventDefault();
      void this.sendFiles(files);
    });
  }

  setRoom(roomId: string | null, canSend: boolean): void {
    if (roomId !== this.roomId) {
      if (this.roomId) this.typing(false);
      this.roomId = roomId;
      this.input.value = roomId ? (this.drafts.get(roomId) ?? '') : '';
      this.autosize();
      if (!this.uploads) this.setStatus('');
    }
    this.el.hidden = !roomId;
    this.input.disabled = !canSend;
    this.input.placeholder = canSend ? 'Message' : 'You cannot send messages here';
  }

  focus(): void {
    this.input.focus();
  }

  private autosize(): void {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, 200)}px`;
  }

  private setStatus(text: string, isError = false): void {
    this.status.textContent = text;
    this.status.classList.toggle('is-error', isError);
    this.status.hidden = !text;
  }

  private typing(on: boolean): void {
    const roomId = this.roomId;
    if (!roomId) return;
    const now = Date.now();
    if (on && now - this.typingSentAt < 3000) return;
    if (!on && this.typingSentAt === 0) return; // nothing to take back
    this.typingSentAt = on ? now : 0;
    this.client.sendTyping(roomId, on, on ? 5000 : 0).catch(() => {});
  }

  private async sendText(): Promise<void> {
    const roomId = this.roomId;
    const text = this.input.value;
    if (!roomId || !text.trim() || this.input.disabled) return;
    this.input.value = '';
    this.drafts.delete(roomId);
    this.autosize();
    this.typing(false);
    const emote = /^\/me\s+/.exec(text);
    const content = (
      emote ? { msgtype: MsgType.Emote, body: text.slice(emote[0].length) } : { msgtype: MsgType.Text, body: text.startsWith('//') ? text.slice(1) : text }
    ) as RoomMessageEventContent;
    try {
      // The SDK shows the message at once (local echo) and marks it if sending fails.
      await this.client.sendMessage(roomId, content);
    } catch (e) {
      console.warn('send failed', e);
    }
  }

  async sendFiles(files: File[]): Promise<void> {
    const roomId = this.roomId;
    if (!roomId) return;
    for (const file of files) {
      this.uploads++;
      this.setStatus(`Uploading ${file.name} (${formatSize(file.size)})…`);
      try {
        const { content_uri } = await this.client.uploadContent(file, {
          name: file.name,
          type: file.type || 'application/octet-stream',
          progressHandler: ({ loaded, total }) => {
            if (total) this.setStatus(`Uploading ${file.name}: ${Math.round((loaded / total) * 100)}%`);
          },
        });
        this.media.prime(content_uri, file);
        const info: Record<string, unknown> = { mimetype: file.type || 'application/octet-stream', size: file.size };
        const isImage = file.type.startsWith('image/');
        if (isImage) {
          const dims = await imageSize(file);
          if (dims) Object.assign(info, dims);
        }
        await this.client.sendMessage(roomId, {
          msgtype: isImage ? MsgType.Image : MsgType.File,
          body: file.name,
          url: content_uri,
          info,
        } as RoomMessageEventContent);
        this.uploads--;
        if (!this.uploads) this.setStatus('');
      } catch (e) {
        this.uploads--;
        this.setStatus(`Could not send ${file.name}: ${errorMessage(e)}`, true);
      }
    }
  }
}

async function imageSize(file: Blob): Promise<{ w: number; h: number } | null> {
  try {
    const bmp = await createImageBitmap(file);
    const size = { w: bmp.width, h: bmp.height };
    bmp.close();
    return size;
  } catch {
    return null;
  }
}
