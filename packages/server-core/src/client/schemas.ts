/** Shared request schemas (valibot) for the client-server API. */
import * as v from 'valibot';

/** A JSON object (event content, account data...). */
export const JsonObjectSchema = v.record(v.string(), v.unknown());
/** Query integers arrive as strings. */
export const QueryInt = (min = 0, max = Number.MAX_SAFE_INTEGER) =>
  v.pipe(v.string(), v.regex(/^-?\d+$/, 'must be an integer'), v.transform(Number), v.minValue(min), v.maxValue(max));
export const QueryBool = v.pipe(v.picklist(['true', 'false']), v.transform((s) => s === 'true'));
/** Any UIA `auth` dict. */
export const AuthDict = v.optional(v.looseObject({ type: v.optional(v.string()), session: v.optional(v.string()) }));

/** The body of `POST publicRooms`, client and federation alike (spec: "Room directory", "Public Room Directory"). */
export const PublicRoomsBody = v.looseObject({
  limit: v.optional(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(0)))),
  since: v.optional(v.nullable(v.string())),
  filter: v.optional(
    v.nullable(
      v.looseObject({
        generic_search_term: v.optional(v.nullable(v.string())),
        room_types: v.optional(v.nullable(v.array(v.nullable(v.string())))),
      }),
    ),
  ),
  include_all_networks: v.optional(v.nullable(v.boolean())),
  third_party_instance_id: v.optional(v.nullable(v.string())),
});
