/**
 * The one error type of the API edge (architecture practice 8): status, errcode, message, and any extra
 * fields the spec puts in the body (e.g. `retry_after_ms`, UIA's `flows`). Anything else that escapes a
 * handler becomes 500 `M_UNKNOWN` without details.
 */
export class MatrixError extends Error {
  override name = 'MatrixError';
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
  body(): Record<string, unknown> {
    return { errcode: this.errcode, error: this.message, ...this.extra };
  }
}

export const badJson = (msg: string) => new MatrixError(400, 'M_BAD_JSON', msg);
export const notJson = (msg = 'Content not JSON.') => new MatrixError(400, 'M_NOT_JSON', msg);
export const invalidParam = (msg: string) => new MatrixError(400, 'M_INVALID_PARAM', msg);
export const missingParam = (msg: string) => new MatrixError(400, 'M_MISSING_PARAM', msg);
export const forbidden = (msg: string) => new MatrixError(403, 'M_FORBIDDEN', msg);
export const notFound = (msg = 'Not found') => new MatrixError(404, 'M_NOT_FOUND', msg);
export const tooLarge = (msg: string) => new MatrixError(413, 'M_TOO_LARGE', msg);
export const unrecognized = (status: 404 | 405, msg = 'Unrecognized request') => new MatrixError(status, 'M_UNRECOGNIZED', msg);
export const unknownToken = (msg = 'Unknown access token', softLogout = false) =>
  new MatrixError(401, 'M_UNKNOWN_TOKEN', msg, { soft_logout: softLogout });
export const missingToken = () => new MatrixError(401, 'M_MISSING_TOKEN', 'Missing access token');
export const limitExceeded = (ms: number) => new MatrixError(429, 'M_LIMIT_EXCEEDED', 'Too many requests', { retry_after_ms: ms });
