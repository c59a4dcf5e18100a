/**
 * The timeline of the open room: the SDK's live timeline rendered as a keyed list, with day
 * separators, grouped messages, local echo states, images (authenticated media through blob URLs),
 * and back-pagination on scroll-up or with the "Load older messages" button.
 */
import {
  Direction,
  EventStatus,
  EventType,
  MsgType,
  type MatrixClient,
  type MatrixEvent,
  type Room,
} from 'matrix-js-sdk';
import { h, reconcile, setChildren, type Child } from '../dom.ts';
import { formatDay, formatSize, formatTime, shortId, URL_RE } from '../format.ts';
import type { MediaCache } from '../media.ts';
import { avatar } from './avatar.ts';
import { icon } from './icons.ts';
import { profileName } from '../profiles.ts';

const GROUP_MS = 5 * 60_000;
const PAGE = 30;

type Item =
  | { kind: 'day'; key: string; label: string }
  | { kind: 'event'; key: string; ev: MatrixEvent; continuation: boolean; sig: string };

const eventKeys = new WeakMap<MatrixEvent, string>();
let nextKey = 1;
/** A key per event object: stable while a local echo turns into the sent event (same object). */
function keyOf(ev: MatrixEvent): string {
  let k = eventKeys.get(ev);
  if (!k) {
    k = `e${nextKey++}`;
    eventKeys.set(ev, k);
  }
  return k;
}

const SHOWN_STATE = new Set<string>([EventType.RoomMember, EventType.RoomName, EventType.RoomTopic, EventType.RoomCreate]);

export function isShownEvent(ev: MatrixEvent): boolean {
  const type = ev.getType();
  if (type === EventType.RoomMessage || type === EventType.RoomMessageEncrypted || type === EventType.Sticker) {
    return !ev.isRelation('m.replace');
  }
  return ev.isState() && SHOWN_STATE.has(type);
}

function isMessage(ev: MatrixEvent): boolean {
  return !ev.isState();
}

/** Plain text with links (never HTML from the event). */
function linkify(text: string): Child[] {
  const out: Child[] = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    if (m.index! > last) out.push(text.slice(last, m.index));
    out.push(h('a', { href: m[0], target: '_blank', rel: 'noopener noreferrer' }, m[0]));
    last = m.index! + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** A member's name, or their shortened id when they have no display name. */
export function nameOf(room: Room, userId: string | undefined, fallback?: string): string {
  if (!userId) return fallback ?? 'Someone';
  const name = room.getMember(userId)?.name;
  return name && name !== userId ? name : (fallback ?? profileName(userId) ?? shortId(userId));
}

/** The sender's name at the time of the event, or their best name now if they had none then. */
export function senderName(room: Room, ev: MatrixEvent): string {
  const id = ev.getSender();
  return ev.sender && ev.sender.name !== id ? ev.sender.name : nameOf(room, id);
}

/** A sentence for a state event. */
export function describeState(room: Room, ev: MatrixEvent): string {
  const sender = senderName(room, ev);
  const c = ev.getContent();
  const prev = ev.getPrevContent();
  switch (ev.getType()) {
    case EventType.RoomCreate:
      return `${sender} created the room`;
    case EventType.RoomName:
      return c.name ? `${sender} named the room “${c.name}”` : `${sender} removed the room name`;
    case EventType.RoomTopic:
      return c.topic ? `${sender} set the topic: ${c.topic}` : `${sender} removed the topic`;
    case EventType.RoomMember: {
      const targetId = ev.getStateKey() ?? '';
      const target =
        (c.displayname as string | undefined) ?? (prev.displayname as string | undefined) ?? (ev.target && ev.target.name !== targetId ? ev.target.name : nameOf(room, targetId));
      const was = prev.membership as string | undefined;
      const self = ev.getSender() === targetId;
      const reason = c.reason ? `: ${c.reason}` : '';
      switch (c.membership) {
        case 'join':
          if (was === 'join') {
            if (prev.displayname !== c.displayname) {
              return c.displayname ? `${prev.displayname ?? shortId(targetId)} is now known as ${c.displayname}` : `${prev.displayname} removed their display name`;
            }
            return `${target} updated their profile`;
          }
          return `${target} joined the room`;
        case 'invite':
          return `${sender} invited ${target}`;
        case 'leave':
          if (self) return was === 'invite' ? `${target} declined the invitation` : `${target} left the room`;
          if (was === 'invite') return `${sender} withdrew ${target}'s invitation${reason}`;
          if (was === 'ban') return `${sender} unbanned ${target}`;
          return `${sender} removed ${target}${reason}`;
        case 'ban':
          return `${sender} banned ${target}${reason}`;
        case 'knock':
          return `${target} asked to join`;
        default:
          return `${target}: membership ${String(c.membership)}`;
      }
    }
    default:
      return `${sender} changed ${ev.getType()}`;
  }
}

/** A one-line summary of an event, for the room list. */
export function previewOf(room: Room, ev: MatrixEvent): string {
  if (!isMessage(ev)) return describeState(room, ev);
  if (ev.isRedacted()) return 'Message deleted';
  const c = ev.getContent();
  const who = senderName(room, ev);
  if (ev.getType() === EventType.RoomMessageEncrypted) return `${who}: encrypted message`;
  switch (c.msgtype) {
    case MsgType.Image:
      return `${who} sent an image`;
    case MsgType.File:
    case MsgType.Video:
    case MsgType.Audio:
      return `${who} sent a file`;
    case MsgType.Emote:
      return `* ${who} ${c.body ?? ''}`;
    default:
      return `${who}: ${typeof c.body === 'string' ? c.body : ''}`;
  }
}

export interface TimelineDeps {
  client: MatrixClient;
  media: MediaCache;
  /** Called after a render that left the view at the bottom (to send read receipts). */
  onAtBottom: () => void;
  openImage: (url: string, alt: string) => void;
}

export class TimelineView {
  readonly el: HTMLElement;
  private readonly top: HTMLElement;
  private readonly list: HTMLOListElement;
  private room: Room | null = null;
  private paginating = false;
  private paginateError: string | null = null;
  private topState = '';
  private lastScrollTop = 0;

  constructor(private readonly deps: TimelineDeps) {
    this.top = h('div', { class: 'mxc-timeline-top' });
    this.list = h('ol', { class: 'mxc-events', 'aria-label': 'Messages' });
    this.el = h('div', { class: 'mxc-timeline', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', tabindex: '0', testid: 'timeline' }, this.top, this.list);
    this.el.addEventListener('scroll', () => {
      // Near the top while moving up: fetch older events.
      const top = this.el.scrollTop;
      if (top < 120 && top <= this.lastScrollTop) void this.paginate();
      this.lastScrollTop = top;
      if (this.atBottom()) this.deps.onAtBottom();
    });
  }

  setRoom(room: Room | null): void {
    if (room === this.room) return;
    this.room = room;
    this.paginating = false;
    this.paginateError = null;
    this.topState = '';
    this.list.replaceChildren();
    this.render();
    this.scrollToBottom();
  }

  atBottom(): boolean {
    return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < 48;
  }

  scrollToBottom(): void {
    this.el.scrollTop = this.el.scrollHeight;
  }

  canPaginate(): boolean {
    const room = this.room;
    if (!room) return false;
    const tl = room.getLiveTimeline();
    if (tl.getPaginationToken(Direction.Backward) === null) return false;
    const first = tl.getEvents()[0];
    return !(first && first.getType() === EventType.RoomCreate);
  }

  /** Load older events (scroll-up or the button). */
  async paginate(): Promise<void> {
    const room = this.room;
    if (!room || this.paginating || !this.canPaginate()) return;
    this.paginating = true;
    this.paginateError = null;
    this.renderTop();
    try {
      await this.deps.client.scrollback(room, PAGE);
    } catch (e) {
      this.paginateError = e instanceof Error ? e.message : String(e);
    } finally {
      this.paginating = false;
    }
    if (room === this.room) this.render();
  }

  private renderTop(): void {
    const state = !this.room ? 'none' : this.paginating ? 'loading' : this.canPaginate() ? `more:${this.paginateError ?? ''}` : 'start';
    if (state === this.topState) return; // (keep the same button: a click in flight must not lose it)
    this.topState = state;
    this.top.dataset.state = state.replace(/:.*/, '');
    let content: Child;
    if (!this.room) content = null;
    else if (this.paginating) content = h('span', { class: 'mxc-muted', testid: 'timeline-loading' }, 'Loading older messages…');
    else if (this.canPaginate()) {
      content = [
        this.paginateError ? h('span', { class: 'mxc-error', role: 'alert' }, `Could not load history: ${this.paginateError}`) : null,
        h('button', { type: 'button', class: 'mxc-button mxc-button-quiet', testid: 'load-older', onclick: () => void this.paginate() }, 'Load older messages'),
      ];
    } else content = h('span', { class: 'mxc-muted', testid: 'timeline-start' }, 'This is the beginning of the conversation.');
    setChildren(this.top, content);
  }

  private items(room: Room): Item[] {
    const items: Item[] = [];
    let prev: MatrixEvent | null = null;
    let lastDay = '';
    for (const ev of room.getLiveTimeline().getEvents()) {
      if (!isShownEvent(ev)) continue;
      const ts = ev.getTs();
      const day = new Date(ts).toDateString();
      if (day !== lastDay) {
        items.push({ kind: 'day', key: `day-${day}`, label: formatDay(ts) });
        lastDay = day;
        prev = null;
      }
      const continuation =
        !!prev && isMessage(prev) && isMessage(ev) && prev.getSender() === ev.getSender() && ts - prev.getTs() < GROUP_MS && !prev.isRedacted();
      const c = ev.getContent();
      const sig = [
        ev.getId(), ev.status ?? '', ev.isRedacted() ? 'r' : '', continuation ? 'c' : '', ev.sender?.name ?? '',
        c.body ?? '', c.url ?? '', ev.replacingEventId() ?? '', isMessage(ev) ? senderName(room, ev) : '', isMessage(ev) ? '' : describeState(room, ev),
      ].join('|');
      items.push({ kind: 'event', key: keyOf(ev), ev, continuation, sig });
      prev = ev;
    }
    return items;
  }

  render(): void {
    const room = this.room;
    this.renderTop();
    if (!room) {
      this.list.replaceChildren();
      return;
    }
    const wasAtBottom = this.atBottom();
    // Anchor: the first item at or below the top edge keeps its position on screen.
    let anchor: HTMLElement | null = null;
    let anchorOffset = 0;
    if (!wasAtBottom) {
      const top = this.el.getBoundingClientRect().top;
      // (Day separators are reused when older events of the same day arrive above them: skip them.)
      for (const c of Array.from(this.list.children) as HTMLElement[]) {
        if (c.classList.contains('mxc-day')) continue;
        const r = c.getBoundingClientRect();
        if (r.bottom > top) {
          anchor = c;
          anchorOffset = r.top - top;
          break;
        }
      }
    }
    reconcile(
      this.list,
      this.items(room),
      (it) => it.key,
      (it) => {
        const el = this.renderItem(room, it);
        if (it.kind === 'event') el.dataset.sig = it.sig;
        return el;
      },
      (el, it) => {
        if (it.kind === 'day') {
          if (el.textContent !== it.label) return this.renderItem(room, it);
          return;
        }
        if (el.dataset.sig === it.sig) return;
        const fresh = this.renderItem(room, it);
        fresh.dataset.sig = it.sig;
        return fresh;
      },
    );
    if (wasAtBottom) this.scrollToBottom();
    else if (anchor) {
      // The anchor's element may have been replaced (e.g. it became a continuation): find it by key.
      const now = anchor.isConnected ? anchor : this.list.querySelector<HTMLElement>(`:scope > [data-key="${anchor.dataset.key}"]`);
      if (now) this.el.scrollTop += now.getBoundingClientRect().top - this.el.getBoundingClientRect().top - anchorOffset;
    }
    if (this.atBottom()) this.deps.onAtBottom();
    // Not enough to scroll: fetch more history so scroll-up can work.
    if (this.el.scrollHeight <= this.el.clientHeight + 8 && this.canPaginate() && !this.paginating && !this.paginateError) {
      setTimeout(() => void this.paginate(), 0);
    }
  }

  private renderItem(room: Room, it: Item): HTMLElement {
    if (it.kind === 'day') {
      return h('li', { class: 'mxc-day', role: 'separator' }, h('span', null, it.label));
    }
    const ev = it.ev;
    if (!isMessage(ev)) {
      return h('li', { class: 'mxc-event mxc-event-state', testid: 'state-event', 'data-event-id': ev.getId() ?? '' }, h('span', null, describeState(room, ev)), h('time', { class: 'mxc-time', datetime: new Date(ev.getTs()).toISOString() }, formatTime(ev.getTs())));
    }
    const sender = ev.getSender() ?? '';
    const me = sender === this.deps.client.getUserId();
    const name = senderName(room, ev);
    const status = ev.status;
    const classes = ['mxc-event', 'mxc-message'];
    if (it.continuation) classes.push('is-continuation');
    if (me) classes.push('is-mine');
    if (status === EventStatus.SENDING || status === EventStatus.QUEUED || status === EventStatus.ENCRYPTING || status === EventStatus.SENT) classes.push('is-pending');
    if (status === EventStatus.NOT_SENT) classes.push('is-failed');
    const time = h('time', { class: 'mxc-time', datetime: new Date(ev.getTs()).toISOString(), title: new Date(ev.getTs()).toLocaleString() }, formatTime(ev.getTs()));
    return h(
      'li',
      { class: classes.join(' '), testid: 'message', 'data-event-id': ev.getId() ?? '', 'data-sender': sender, 'data-status': status ?? 'sent' },
      it.continuation ? h('span', { class: 'mxc-gutter' }, time) : avatar(sender, name),
      h(
        'div',
        { class: 'mxc-message-main' },
        it.continuation ? null : h('div', { class: 'mxc-message-head' }, h('span', { class: 'mxc-sender', testid: 'message-sender', title: sender }, name), time),
        this.renderBody(ev, name),
        this.renderStatus(room, ev),
      ),
    );
  }

  private renderStatus(room: Room, ev: MatrixEvent): Child {
    const status = ev.status;
    if (status === EventStatus.NOT_SENT) {
      return h(
        'div',
        { class: 'mxc-send-failed', role: 'alert' },
        'Failed to send. ',
        h('button', { type: 'button', class: 'mxc-link', testid: 'message-retry', onclick: () => void this.deps.client.resendEvent(ev, room) }, 'Retry'),
        ' · ',
        h('button', { type: 'button', class: 'mxc-link', onclick: () => this.deps.client.cancelPendingEvent(ev) }, 'Delete'),
      );
    }
    if (status === EventStatus.SENDING || status === EventStatus.QUEUED || status === EventStatus.ENCRYPTING) {
      return h('div', { class: 'mxc-send-pending mxc-muted' }, 'Sending…');
    }
    return null;
  }

  private renderBody(ev: MatrixEvent, senderName: string): HTMLElement {
    if (ev.isRedacted()) return h('div', { class: 'mxc-body mxc-muted mxc-redacted', testid: 'message-body' }, 'Message deleted');
    if (ev.getType() === EventType.RoomMessageEncrypted) {
      return h('div', { class: 'mxc-body mxc-muted', testid: 'message-body' }, 'Encrypted message (this client does not support encryption)');
    }
    const c = ev.getContent();
    const body = typeof c.body === 'string' ? c.body : '';
    const edited = ev.replacingEventId() ? h('span', { class: 'mxc-muted mxc-edited' }, ' (edited)') : null;
    switch (c.msgtype) {
      case MsgType.Image:
        if (typeof c.url === 'string') return h('div', { class: 'mxc-body', testid: 'message-body' }, this.renderImage(c.url, body, c.info as ImageInfo | undefined));
        break;
      case MsgType.File:
      case MsgType.Video:
      case MsgType.Audio:
        if (typeof c.url === 'string') return h('div', { class: 'mxc-body', testid: 'message-body' }, this.renderFile(c.url, body, c.info as ImageInfo | undefined));
        break;
      case MsgType.Emote:
        return h('div', { class: 'mxc-body mxc-emote', testid: 'message-body' }, `* ${senderName} `, linkify(body), edited);
      case MsgType.Notice:
        return h('div', { class: 'mxc-body mxc-notice', testid: 'message-body' }, linkify(body), edited);
    }
    return h('div', { class: 'mxc-body', testid: 'message-body' }, linkify(body), edited);
  }

  private renderImage(mxc: string, alt: string, info: ImageInfo | undefined): HTMLElement {
    const media = this.deps.media;
    const { w, h: ih } = fitBox(info?.w, info?.h, 320, 240);
    const img = h('img', { alt: alt || 'image', testid: 'message-image', 'data-mxc': mxc, decoding: 'async' });
    if (w && ih) {
      img.width = w;
      img.height = ih;
    }
    const button = h('button', { type: 'button', class: 'mxc-image', 'aria-label': `Open image ${alt}`, disabled: true }, img);
    const show = (url: string) => {
      img.src = url;
      button.disabled = false;
      button.onclick = () => this.deps.openImage(url, alt);
      img.onload = () => {
        img.dataset.loaded = 'true';
        if (!w && this.atBottomish()) this.scrollToBottom();
      };
    };
    const ready = media.peek(mxc);
    if (ready) show(ready);
    else {
      button.classList.add('is-loading');
      media.load(mxc).then(
        (url) => {
          button.classList.remove('is-loading');
          show(url);
        },
        () => {
          button.classList.remove('is-loading');
          button.replaceWith(h('span', { class: 'mxc-muted' }, `Image unavailable: ${alt}`));
        },
      );
    }
    return button;
  }

  private atBottomish(): boolean {
    return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < 300;
  }

  private renderFile(mxc: string, name: string, info: ImageInfo | undefined): HTMLElement {
    const label = `${name || 'file'}${info?.size ? ` (${formatSize(info.size)})` : ''}`;
    const button = h('button', { type: 'button', class: 'mxc-file', testid: 'message-file' }, icon('file', 16), label);
    button.onclick = async () => {
      button.disabled = true;
      try {
        const url = await this.deps.media.load(mxc);
        const a = h('a', { href: url, download: name || 'file' });
        document.body.append(a);
        a.click();
        a.remove();
      } catch (e) {
        button.title = e instanceof Error ? e.message : String(e);
      } finally {
        button.disabled = false;
      }
    };
    return button;
  }
}

interface ImageInfo {
  w?: number;
  h?: number;
  size?: number;
  mimetype?: string;
}

/** Scale (w, h) down to fit in (maxW, maxH). */
export function fitBox(w: number | undefined, hgt: number | undefined, maxW: number, maxH: number): { w: number; h: number } {
  if (!w || !hgt || w <= 0 || hgt <= 0) return { w: 0, h: 0 };
  const scale = Math.min(1, maxW / w, maxH / hgt);
  return { w: Math.max(1, Math.round(w * scale)), h: Math.max(1, Math.round(hgt * scale)) };
}
