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
