/** Whole-request errors as HTTP: each known `EddyError` code's status, and the `{"error"}` body. */
import type { Context } from 'hono'
import { EddyError, type ErrorCode } from '../../shared/errors.ts'

/** The status of each code a caller may see; any other error answers 500 `internal`. */
export const STATUS: Partial<Record<ErrorCode, 400 | 401 | 403 | 404 | 405 | 413 | 415 | 503>> = {
  bad_request: 400,
  bad_cursor: 400,
  unknown_table: 400,
  unknown_column: 400,
  invalid_value: 400,
  clock_skew: 400,
  tx_aborted: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  too_large: 413,
  unsupported_media_type: 415,
  warehouse_unavailable: 503,
}

export function fail(code: ErrorCode, message: string): EddyError {
  return new EddyError(code, message)
}

export function errorResponse(c: Context, e: EddyError): Response {
  const status = STATUS[e.code] ?? 500
  return c.json({ error: { code: e.code, message: e.message } }, status)
}
