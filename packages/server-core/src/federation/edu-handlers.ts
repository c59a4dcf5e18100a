/** Inbound EDUs (spec: server-server API, "EDUs"). Placeholder: filled in by the EDU work. */
import type { Homeserver } from '../homeserver.ts';

/** Handle one EDU from `origin`; never throws for bad input (EDUs are best effort). */
export async function handleEdu(_hs: Homeserver, _origin: string, _edu: unknown): Promise<void> {}
