/**
 * Stream tokens. Everything a client can sync on is ordered by one stream of positions (the Store's);
 * typing notifications, which are not stored, carry their own serial.
 *   sync token:        `s<stream>_<typing serial>` ("next_batch", "since")
 *   pagination token:  `t<position>`: the point just before the event at that stream position
 * Sync tokens are accepted as pagination tokens too (their position is "after everything up to stream").
 */
export interface SyncToken {
  stream: number;
  typing: number;
}

export function syncToken(t: SyncToken): string {
  return `s${t.stream}_${t.typing}`;
}

export function parseSyncToken(s: string): SyncToken | undefined {
  const m = /^s(\d{1,15})(?:_(\d{1,15}))?$/.exec(s);
  if (!m) return undefined;
  return { stream: Number(m[1]), typing: Number(m[2] ?? 0) };
}

export function paginationToken(position: number): string {
  return `t${position}`;
}

/**
 * A pagination position from a `t` token, or from a sync token (after its stream position).
 * Backfilled history has negative positions (`t-12`), below everything received live.
 */
export function parsePaginationToken(s: string): number | undefined {
  const t = /^t(-?\d{1,15})$/.exec(s);
  if (t) return Number(t[1]);
  const st = parseSyncToken(s);
  return st ? st.stream + 1 : undefined;
}
