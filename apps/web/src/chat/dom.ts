/**
 * A tiny DOM helper: `h(tag, props, ...children)` builds real elements, and `reconcile` updates a list
 * of keyed children in place (so focus, scroll position and loaded images survive re-renders).
 */

export type Child = Node | string | number | null | undefined | false | Child[];
export type Props = Record<string, unknown>;

function append(el: Element | DocumentFragment, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(el, c);
    return;
  }
  el.append(child instanceof Node ? child : String(child));
}

/**
 * Create an element. Props: `class`, `testid` (→ `data-testid`), `onclick`-style listeners (any
 * function-valued `on*`), `style` (string), DOM properties such as `value`, `checked`, `disabled`,
 * and everything else as attributes (`aria-*`, `data-*`, `for`, `role`, ...). `false`, `null` and
 * `undefined` props are skipped.
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Props | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') el.className = String(value);
      else if (key === 'testid') el.setAttribute('data-testid', String(value));
      else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2).toLowerCase(), value as EventListener);
      else if (key === 'style') el.setAttribute('style', String(value));
      else if (key.includes('-') || key === 'for' || key === 'role' || key === 'list') el.setAttribute(key, value === true ? '' : String(value));
      else if (key in el) (el as unknown as Record<string, unknown>)[key] = value;
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const c of children) append(el, c);
  return el;
}

/** Replace all children of `el`. */
export function setChildren(el: Element, ...children: Child[]): void {
  const frag = document.createDocumentFragment();
  for (const c of children) append(frag, c);
  el.replaceChildren(frag);
}

/**
 * Make `parent`'s element children exactly `items`, in order, reusing the child whose `data-key`
 * matches. `update` is called for reused children; it may return a replacement element.
 */
export function reconcile<T>(
  parent: Element,
  items: readonly T[],
  key: (item: T) => string,
  create: (item: T) => HTMLElement,
  update?: (el: HTMLElement, item: T) => HTMLElement | void,
): void {
  const existing = new Map<string, HTMLElement>();
  for (const c of Array.from(parent.children) as HTMLElement[]) {
    const k = c.dataset.key;
    if (k === undefined || existing.has(k)) c.remove();
    else existing.set(k, c);
  }
  let cursor: Element | null = parent.firstElementChild;
  for (const item of items) {
    const k = key(item);
    let el = existing.get(k);
    if (el) {
      existing.delete(k);
      const replacement = update?.(el, item);
      if (replacement && replacement !== el) {
        replacement.dataset.key = k;
        if (cursor === el) cursor = replacement;
        el.replaceWith(replacement);
        el = replacement;
      }
    } else {
      el = create(item);
      el.dataset.key = k;
    }
    if (el !== cursor) parent.insertBefore(el, cursor);
    else cursor = cursor.nextElementSibling;
  }
  for (const el of existing.values()) el.remove();
}

/** Coalesce many invalidations into one call on the next task. */
export function batched(fn: () => void): () => void {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    setTimeout(() => {
      pending = false;
      fn();
    }, 0);
  };
}
