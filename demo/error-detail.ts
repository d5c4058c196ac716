import { isEddyError } from '../shared/errors.ts'

/**
 * What the demo shows of a failure: its code, message and (for `invalid_value`) the field.
 * Errors thrown by the client are `EddyError`s; an error that crossed a worker boundary may arrive
 * as a plain Error that still carries `code`/`field` properties, so those are read too.
 */
export interface ErrorDetail {
  code: string
  message: string
  field?: string
}

export function errorDetail(e: unknown): ErrorDetail {
  if (isEddyError(e)) {
    return e.field === undefined
      ? { code: e.code, message: e.message }
      : { code: e.code, message: e.message, field: e.field }
  }
  if (typeof e === 'object' && e !== null) {
    const o = e as { code?: unknown; message?: unknown; field?: unknown }
    const code = typeof o.code === 'string' ? o.code : 'internal'
    const message = typeof o.message === 'string' ? o.message : String(e)
    return typeof o.field === 'string' ? { code, message, field: o.field } : { code, message }
  }
  return { code: 'internal', message: String(e) }
}
