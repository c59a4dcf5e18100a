import { h } from '../dom.ts';
import { hueOf, initialOf } from '../format.ts';

/** A coloured circle with the first letter of a name (no avatar images yet). */
export function avatar(id: string, name: string, size: 'sm' | 'md' | 'lg' = 'md'): HTMLElement {
  return h('span', { class: `mxc-avatar mxc-avatar-${size}`, style: `--mxc-hue:${hueOf(id)}`, 'aria-hidden': 'true' }, initialOf(name || id));
}
