/**
 * Every failure Eddy reports carries a stable `code`. The same codes travel over the wire as
 * `{"error": {"code", "message"}}` and are thrown in the client as `EddyError`.
 */
export const ERROR_CODES = [
  // validation of a single write
  'invalid_value',
  'unknown_table',
  'unknown_column',
  'clock_skew',
  'tx_aborted',
  // schema / configuration
  'invalid_schema',
  'invalid_config',
  // whole requests
  'bad_request',
  'bad_cursor',
  'unauthorized',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'too_large',
  'unsupported_media_type',
  'warehouse_unavailable',
  'internal',
  // client side
  'offline',
  'rejected',
  'quota',
  'closed',
  'timeout',
  'protocol',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

export class EddyError extends Error {
  override readonly name = 'EddyError'
  readonly code: ErrorCode
  readonly field: string | undefined
  readonly status: number | undefined

  constructor(
    code: ErrorCode,
    message: string,
    options: { field?: string; status?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.field = options.field
    this.status = options.status
  }

  /** The wire form: plain data, never a stack trace. */
  toJSON(): { code: ErrorCode; message: string; field?: string } {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field }
  }
}

export function isEddyError(e: unknown, code?: ErrorCode): e is EddyError {
  return e instanceof EddyError && (code === undefined || e.code === code)
}

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && (ERROR_CODES as readonly string[]).includes(s)
}

/** `e` itself when it is an EddyError; anything else thrown, as an `internal` one that keeps it as its cause. */
export function toEddyError(e: unknown): EddyError {
  if (isEddyError(e)) return e
  return new EddyError('internal', e instanceof Error ? e.message : String(e), { cause: e })
}

/** Returns `v`, or throws when it is null or undefined: for values the code's own logic guarantees. */
export function must<T>(v: T | null | undefined, what: string): T {
  if (v === null || v === undefined) throw new EddyError('internal', `${what} is missing`)
  return v
}

/** Marks a branch the type system proves unreachable; fails loudly if it is reached anyway. */
export function unreachable(x: never): never {
  throw new EddyError('internal', `unreachable: ${JSON.stringify(x)}`)
}
