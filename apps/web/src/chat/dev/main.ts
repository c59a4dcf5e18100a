/**
 * Dev harness: mounts the chat against the homeserver named by `?hs=` (default: this page's origin),
 * e.g. the Node host from `npm run serve -- --port 8099` → `?hs=http://127.0.0.1:8099`.
 */
import { mountChat } from '../index.ts';

const hs = new URLSearchParams(location.search).get('hs') ?? location.origin;
mountChat(document.getElementById('app')!, { baseUrl: hs });
