/**
 * Filters (spec: client-server API, "Filtering"): stored per user or given inline as JSON. Invalid
 * filters are refused at upload with M_BAD_JSON; at use, unknown fields are ignored.
 */
import * as v from 'valibot';
import { MatrixError } from '../api/errors.ts';
import { parseJson } from '../kernel/canonical-json.ts';
import type { StoredEvent } from '../store/records.ts';

const StrList = v.optional(v.array(v.string()));
export const EventFilterSchema = v.looseObject({
  limit: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  types: StrList,
  not_types: StrList,
  senders: StrList,
  not_senders: StrList,
});
export const RoomEventFilterSchema = v.looseObject({
  ...EventFilterSchema.entries,
  rooms: StrList,
  not_rooms: StrList,
  contains_url: v.optional(v.boolean()),
  lazy_load_members: v.optional(v.boolean()),
  include_redundant_members: v.optional(v.boolean()),
  unread_thread_notifications: v.optional(v.boolean()),
});
export const FilterSchema = v.looseObject({
  event_fields: StrList,
  event_format: v.optional(v.picklist(['client', 'federation'])),
  presence: v.optional(EventFilterSchema),
  account_data: v.optional(EventFilterSchema),
  room: v.optional(
    v.looseObject({
      rooms: StrList,
      not_rooms: StrList,
      include_leave: v.optional(v.boolean()),
      timeline: v.optional(RoomEventFilterSchema),
      state: v.optional(RoomEventFilterSchema),
      ephemeral: v.optional(RoomEventFilterSchema),
      account_data: v.optional(RoomEventFilterSchema),
    }),
  ),
});

export type EventFilter = v.InferOutput<typeof EventFilterSchema>;
export type RoomEventFilter = v.InferOutput<typeof RoomEventFilterSchema>;
export type Filter = v.InferOutput<typeof FilterSchema>;

/** Glob-free type matching with a trailing `*` wildcard (spec: "types ... A '*' can be used as a wildcard"). */
function typeMatches(pattern: string, type: string): boolean {
  return pattern.endsWith('*') ? type.startsWith(pattern.slice(0, -1)) : pattern === type;
}

export function eventMatches(e: { type: string; sender: string }, f: EventFilter | undefined): boolean {
  if (!f) return true;
  if (f.not_types?.some((p) => typeMatches(p, e.type))) return false;
  if (f.types && !f.types.some((p) => typeMatches(p, e.type))) return false;
  if (f.not_senders?.includes(e.sender)) return false;
  if (f.senders && !f.senders.includes(e.sender)) return false;
  return true;
}

export function eventMatchesRoomFilter(e: StoredEvent, f: RoomEventFilter | undefined): boolean {
  if (!f) return true;
  if (!eventMatches(e, f)) return false;
  if (f.not_rooms?.includes(e.roomId)) return false;
  if (f.rooms && !f.rooms.includes(e.roomId)) return false;
  if (f.contains_url !== undefined) {
    const has = typeof (e.pdu.content as Record<string, unknown>)?.url === 'string';
    if (has !== f.contains_url) return false;
  }
  return true;
}

export function roomAllowed(roomId: string, f: Filter | undefined): boolean {
  const r = f?.room;
  if (!r) return true;
  if (r.not_rooms?.includes(roomId)) return false;
  if (r.rooms && !r.rooms.includes(roomId)) return false;
  return true;
}

/** A filter given inline as JSON (the `filter` query parameter of /messages and /context). */
export function parseFilterParam(text: string | undefined): RoomEventFilter {
  if (!text) return {};
  let json: unknown;
  try {
    json = parseJson(text, { rejectFloats: false });
  } catch {
    throw new MatrixError(400, 'M_INVALID_PARAM', 'filter is not JSON');
  }
  const r = v.safeParse(RoomEventFilterSchema, json);
  if (!r.success) throw new MatrixError(400, 'M_INVALID_PARAM', `Invalid filter: ${r.issues[0].message}`);
  return r.output;
}

/** Validate a whole filter (upload, or inline in /sync). */
export function validateFilter(json: unknown, errcode = 'M_BAD_JSON'): Filter {
  const r = v.safeParse(FilterSchema, json);
  if (!r.success) throw new MatrixError(400, errcode, `Invalid filter: ${r.issues[0].path?.map((p) => String(p.key)).join('.') ?? ''} ${r.issues[0].message}`);
  return r.output;
}
