import type { ErrorCode } from './errors.ts'
import type { Column, Row, Table, ValidatorSpec } from './schema.ts'

export interface FieldError {
  code: ErrorCode
  field: string
  message: string
}

const EMAIL = /^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$/
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/
const TIME = /^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$/
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$/
const DECIMAL = /^-?\d+(\.\d+)?$/
const BIGINT_MAX = 2n ** 63n - 1n
const BIGINT_MIN = -(2n ** 63n)
/** Longest text value accepted, in UTF-16 code units; bigger values belong in object storage. */
export const MAX_TEXT_LENGTH = 1_000_000

const regexCache = new Map<string, RegExp>()
function regex(source: string): RegExp {
  let r = regexCache.get(source)
  if (!r) {
    r = new RegExp(source, 'u')
    regexCache.set(source, r)
  }
  return r
}

function isValidDate(s: string): boolean {
  const m = DATE.exec(s)
  if (!m) return false
  const d = new Date(`${s}T00:00:00Z`)
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s
}

/** The number written by the ASCII digits `v[from..to)`, or -1 if any is not a digit. */
function digitsAt(v: string, from: number, to: number): number {
  let n = 0
  for (let i = from; i < to; i++) {
    const d = v.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return n
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/**
 * Whether `v` is already an instant's canonical wire form, `YYYY-MM-DDTHH:MM:SS.mmmZ`, with every
 * field in range (year 1 or later, a real day of the month, no hour 24, no leap second). For such a
 * string the general check (parse, then `toISOString()`) gives `v` back, so it is skipped; any
 * other string takes the general path.
 */
function isCanonicalInstant(v: string): boolean {
  if (v.length !== 24 || v[23] !== 'Z' || v[4] !== '-' || v[7] !== '-' || v[10] !== 'T') return false
  if (v[13] !== ':' || v[16] !== ':' || v[19] !== '.' || digitsAt(v, 20, 23) < 0) return false
  const year = digitsAt(v, 0, 4)
  const month = digitsAt(v, 5, 7)
  const day = digitsAt(v, 8, 10)
  if (year < 1 || month < 1 || month > 12 || day < 1) return false
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  const days = month === 2 && leap ? 29 : (MONTH_DAYS[month - 1] ?? 0)
  if (day > days) return false
  const hour = digitsAt(v, 11, 13)
  const minute = digitsAt(v, 14, 16)
  const second = digitsAt(v, 17, 19)
  return hour >= 0 && hour <= 23 && minute >= 0 && minute <= 59 && second >= 0 && second <= 59
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)
  try {
    return String(v)
  } catch {
    // an array nested past the stack's depth (String joins it recursively)
    return 'a value nested too deeply to show'
  }
}

type Checked = { ok: true; value: unknown } | { ok: false; message: string }
const bad = (message: string): Checked => ({ ok: false, message })

/** Checks a value against the column's type and returns its canonical wire form. */
function checkType(col: Column, v: unknown): Checked {
  switch (col.type) {
    case 'integer':
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= -2147483648 && v <= 2147483647)
        return { ok: true, value: v }
      return bad(`must be a 32-bit integer, got ${describe(v)}`)
    case 'bigint': {
      if (typeof v === 'number' && Number.isSafeInteger(v)) return { ok: true, value: v }
      const text =
        typeof v === 'bigint' ? v.toString() : typeof v === 'string' && /^-?\d{1,19}$/.test(v) ? v : undefined
      if (text === undefined)
        return bad(`must be a 64-bit integer (a number, or a string past 2^53), got ${describe(v)}`)
      const n = BigInt(text)
      if (n > BIGINT_MAX || n < BIGINT_MIN) return bad('is outside the 64-bit integer range')
      return { ok: true, value: Number.isSafeInteger(Number(n)) ? Number(n) : n.toString() }
    }
    case 'double':
      if (typeof v === 'number' && Number.isFinite(v)) return { ok: true, value: v }
      return bad(`must be a finite number, got ${describe(v)}`)
    case 'decimal': {
      const text =
        typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'string' ? v.trim() : undefined
      if (text === undefined || !DECIMAL.test(text))
        return bad(`must be a decimal such as "12.50", got ${describe(v)}`)
      const [intPart = '', frac = ''] = text.replace('-', '').split('.')
      if (frac.length > col.scale) return bad(`has more than ${col.scale} decimal places`)
      const digits = intPart.replace(/^0+(?=\d)/, '')
      if (digits.length > col.precision - col.scale)
        return bad(`does not fit decimal(${col.precision},${col.scale})`)
      const neg = text.startsWith('-') && /[1-9]/.test(text)
      const scaled = col.scale === 0 ? digits : `${digits}.${frac.padEnd(col.scale, '0')}`
      return { ok: true, value: neg ? `-${scaled}` : scaled }
    }
    case 'text':
      if (typeof v !== 'string') return bad(`must be a string, got ${describe(v)}`)
      if (v.length > MAX_TEXT_LENGTH) return bad(`is longer than ${MAX_TEXT_LENGTH} characters`)
      // Lone surrogates cannot be stored as UTF-8 by every warehouse.
      if (!v.isWellFormed()) return bad('is not well-formed Unicode')
      if (v.includes('\u0000')) return bad('contains a NUL character')
      return { ok: true, value: v }
    case 'boolean':
      if (typeof v === 'boolean') return { ok: true, value: v }
      return bad(`must be true or false, got ${describe(v)}`)
    case 'date':
      if (typeof v === 'string' && isValidDate(v)) return { ok: true, value: v }
      return bad(`must be a date YYYY-MM-DD, got ${describe(v)}`)
    case 'timestamp': {
      if (typeof v === 'string' && isCanonicalInstant(v)) return { ok: true, value: v }
      if (typeof v !== 'string' || !TIMESTAMP.test(v))
        return bad(`must be an ISO 8601 timestamp, got ${describe(v)}`)
      const hasZone = /(Z|[+-]\d{2}(:?\d{2})?)$/.test(v)
      const d = new Date(hasZone ? v : `${v.replace(' ', 'T')}Z`)
      if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1 || d.getUTCFullYear() > 9999)
        return bad('is not a valid timestamp')
      return { ok: true, value: d.toISOString() }
    }
    case 'uuid':
      if (typeof v === 'string' && UUID.test(v)) return { ok: true, value: v.toLowerCase() }
      return bad(`must be a UUID, got ${describe(v)}`)
    case 'json':
      try {
        // JSON.stringify would turn Infinity (raw `1e999` in a body) into null: refuse it instead.
        const text = JSON.stringify(v, (_k, x: unknown) => {
          if (typeof x === 'number' && !Number.isFinite(x)) throw new RangeError('not a finite number')
          return x
        })
        if (text === undefined) return bad('must be JSON')
        if (text.length > MAX_TEXT_LENGTH) return bad(`is larger than ${MAX_TEXT_LENGTH} characters of JSON`)
        return { ok: true, value: JSON.parse(text) }
      } catch {
        return bad('must be JSON')
      }
  }
}

function checkValidator(spec: ValidatorSpec, v: unknown): string | undefined {
  switch (spec.type) {
    case 'int': {
      const n =
        typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : Number.NaN
      if (!Number.isInteger(n)) return `must be an integer, got ${describe(v)}`
      if (spec.min !== undefined && n < spec.min) return `must be at least ${spec.min}`
      if (spec.max !== undefined && n > spec.max) return `must be at most ${spec.max}`
      return undefined
    }
    case 'number': {
      const n = typeof v === 'number' ? v : typeof v === 'string' && DECIMAL.test(v) ? Number(v) : Number.NaN
      if (!Number.isFinite(n)) return `must be a number, got ${describe(v)}`
      if (spec.min !== undefined && n < spec.min) return `must be at least ${spec.min}`
      if (spec.max !== undefined && n > spec.max) return `must be at most ${spec.max}`
      return undefined
    }
    case 'string': {
      if (typeof v !== 'string') return `must be a string, got ${describe(v)}`
      if (spec.minLength !== undefined && v.length < spec.minLength)
        return `must have at least ${spec.minLength} characters`
      if (spec.maxLength !== undefined && v.length > spec.maxLength)
        return `must have at most ${spec.maxLength} characters`
      if (spec.regex !== undefined && !regex(spec.regex).test(v)) return `does not match ${spec.regex}`
      return undefined
    }
    case 'enum':
      return typeof v === 'string' && spec.allowedValues.includes(v)
        ? undefined
        : `must be one of ${spec.allowedValues.join(', ')}, got ${describe(v)}`
    case 'email':
      return typeof v === 'string' && EMAIL.test(v)
        ? undefined
        : `must be an email address, got ${describe(v)}`
    case 'uuid':
      return typeof v === 'string' && UUID.test(v) ? undefined : `must be a UUID, got ${describe(v)}`
    case 'date':
      return typeof v === 'string' && isValidDate(v)
        ? undefined
        : `must be a date YYYY-MM-DD, got ${describe(v)}`
    case 'time':
      return typeof v === 'string' && TIME.test(v)
        ? undefined
        : `must be a time HH:MM[:SS], got ${describe(v)}`
    case 'timestamp':
      return typeof v === 'string' && TIMESTAMP.test(v) && !Number.isNaN(Date.parse(v.replace(' ', 'T')))
        ? undefined
        : `must be an ISO 8601 timestamp, got ${describe(v)}`
    case 'boolean':
      return typeof v === 'boolean' ? undefined : `must be true or false, got ${describe(v)}`
  }
}

/**
 * Checks one column value: its type first, then every validator. Null is allowed here
 * (whether a column may end up null is `required`'s business, checked on the whole row).
 */
export function validateValue(col: Column, v: unknown): { value: unknown; errors: FieldError[] } {
  if (v === null) return { value: null, errors: [] }
  const typed = checkType(col, v)
  if (!typed.ok)
    return {
      value: v,
      errors: [{ code: 'invalid_value', field: col.name, message: `${col.name} ${typed.message}` }],
    }
  const errors: FieldError[] = []
  for (const spec of col.validators) {
    const msg = checkValidator(spec, typed.value)
    if (msg !== undefined)
      errors.push({ code: 'invalid_value', field: col.name, message: `${col.name} ${msg}` })
  }
  return { value: typed.value, errors }
}

/**
 * Sets an own, enumerable property. Plain assignment would run `Object.prototype`'s `__proto__`
 * setter for that one key (replacing the prototype instead of storing a column), so that key is
 * defined; every other key is assigned, which keeps the object fast (defining every property
 * turns it into a slow dictionary object).
 */
export function setOwn(o: Row, k: string, v: unknown): void {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
  else o[k] = v
}

export interface CheckedWrite {
  key: Row
  values: Row
  errors: FieldError[]
}

/** What a column's fast check answers for a value it does not accept as it is. */
const NOT_FAST: unique symbol = Symbol('not fast')
type FastCheck = (v: unknown) => unknown

/**
 * A column's check without allocations: the value's canonical form when its type and every
 * validator accept it (exactly what `validateValue` gives), `NOT_FAST` otherwise. It may say
 * `NOT_FAST` for values `validateValue` accepts (they then take the general path); it never
 * accepts one that `validateValue` refuses or canonicalises differently.
 */
function fastCheckOf(col: Column): FastCheck {
  const specs = col.validators
  const pass = (value: unknown): unknown => {
    for (let i = 0; i < specs.length; i++) {
      const spec = specs[i]
      if (spec !== undefined && checkValidator(spec, value) !== undefined) return NOT_FAST
    }
    return value
  }
  const general = (v: unknown): unknown => {
    const typed = checkType(col, v)
    return typed.ok ? pass(typed.value) : NOT_FAST
  }
  switch (col.type) {
    case 'integer':
      return (v) =>
        typeof v === 'number' && Number.isSafeInteger(v) && v >= -2147483648 && v <= 2147483647
          ? pass(v)
          : NOT_FAST
    case 'double':
      return (v) => (typeof v === 'number' && Number.isFinite(v) ? pass(v) : NOT_FAST)
    case 'text':
      return (v) =>
        typeof v === 'string' && v.length <= MAX_TEXT_LENGTH && v.isWellFormed() && !v.includes('\u0000')
          ? pass(v)
          : NOT_FAST
    case 'boolean':
      return (v) => (typeof v === 'boolean' ? pass(v) : NOT_FAST)
    case 'timestamp':
      return (v) => (typeof v === 'string' && isCanonicalInstant(v) ? pass(v) : NOT_FAST)
    case 'uuid':
      return (v) => (typeof v === 'string' && UUID.test(v) ? pass(v.toLowerCase()) : NOT_FAST)
    default:
      return general
  }
}

const fastChecks = new WeakMap<Column, FastCheck>()
function fastCheck(col: Column): FastCheck {
  let check = fastChecks.get(col)
  if (check === undefined) {
    check = fastCheckOf(col)
    fastChecks.set(col, check)
  }
  return check
}

/**
 * `validateWrite` for a write that passes every check, without building error lists: the same key
 * and values, or undefined as soon as anything is off (the general path then words the errors).
 * A key or values object that is already exactly its canonical form (every value unchanged, no
 * key column among the values, nothing undefined) is returned itself rather than copied: a push
 * of 10,000 rows then keeps 20,000 fewer objects alive until it commits. Callers never modify
 * either object.
 */
function acceptedWrite(
  table: Table,
  op: 'upsert' | 'delete',
  key: Row,
  values: Row | undefined,
): CheckedWrite | undefined {
  const pk = table.primaryKey
  let keyCount = 0
  for (const k in key) {
    if (!Object.hasOwn(key, k)) continue
    if (!pk.includes(k)) return undefined
    keyCount += 1
  }
  const outKey: Row = {}
  let keySame = keyCount === pk.length
  for (let i = 0; i < pk.length; i++) {
    const k = pk[i] ?? ''
    const col = table.columnsByName.get(k)
    if (col === undefined) {
      keySame = false
      continue
    }
    const v = Object.hasOwn(key, k) ? key[k] : undefined
    if (v === undefined || v === null) return undefined
    const value = fastCheck(col)(v)
    if (value === NOT_FAST) return undefined
    if (value !== v) keySame = false
    setOwn(outKey, k, value)
  }
  const checkedKey = keySame ? key : outKey
  if (op !== 'upsert' || values === undefined) return { key: checkedKey, values: {}, errors: [] }
  let outValues: Row | undefined
  let kept = 0
  for (const k in values) {
    if (!Object.hasOwn(values, k)) continue
    const col = table.columnsByName.get(k)
    if (col === undefined) return undefined
    const v = values[k]
    const value = v === undefined || v === null ? v : fastCheck(col)(v)
    if (value === NOT_FAST) return undefined
    if (outValues === undefined && (v === undefined || col.primaryKey || value !== v)) {
      // not already canonical: from here on, a copy
      outValues = copyOwn(values, kept)
    }
    if (v === undefined) continue
    if (col.primaryKey) {
      if (Object.hasOwn(outKey, k) && JSON.stringify(value) !== JSON.stringify(outKey[k])) return undefined
      continue
    }
    kept += 1
    if (outValues !== undefined) setOwn(outValues, k, value)
  }
  return { key: checkedKey, values: outValues ?? values, errors: [] }
}

/** A fresh object with the first `n` own enumerable properties of `from`, in order. */
function copyOwn(from: Row, n: number): Row {
  const out: Row = {}
  let i = 0
  for (const k in from) {
    if (i >= n) break
    if (!Object.hasOwn(from, k)) continue
    setOwn(out, k, from[k])
    i += 1
  }
  return out
}

/**
 * Validates a write against its table: the key names exactly the primary-key columns, the values
 * name only declared columns, and every value passes its type and validators. Returns every field
 * error and the key and values in canonical form. `required` is checked by `reconcile`, on the row
 * as it would stand after the write.
 */
export function validateWrite(
  table: Table,
  op: 'upsert' | 'delete',
  key: Row,
  values: Row | undefined,
): CheckedWrite {
  return acceptedWrite(table, op, key, values) ?? validateWriteFully(table, op, key, values)
}

/** `validateWrite`'s general path: every check, every error (exported so tests can hold the fast path to it). */
export function validateWriteFully(
  table: Table,
  op: 'upsert' | 'delete',
  key: Row,
  values: Row | undefined,
): CheckedWrite {
  const errors: FieldError[] = []
  const outKey: Row = {}
  const outValues: Row = {}
  const set = setOwn
  for (const k of Object.keys(key)) {
    if (!table.primaryKey.includes(k)) {
      errors.push({
        code: table.columnsByName.has(k) ? 'invalid_value' : 'unknown_column',
        field: k,
        message: `key names '${k}', which is not a primary-key column of ${table.name}`,
      })
    }
  }
  for (const k of table.primaryKey) {
    const col = table.columnsByName.get(k)
    if (!col) continue
    const v = Object.hasOwn(key, k) ? key[k] : undefined
    if (v === undefined || v === null) {
      errors.push({ code: 'invalid_value', field: k, message: `key is missing ${k}` })
      continue
    }
    const r = validateValue(col, v)
    for (const e of r.errors) errors.push(e)
    set(outKey, k, r.value)
  }
  if (op === 'upsert' && values !== undefined) {
    for (const [k, v] of Object.entries(values)) {
      const col = table.columnsByName.get(k)
      if (!col) {
        errors.push({ code: 'unknown_column', field: k, message: `${table.name} has no column '${k}'` })
        continue
      }
      if (v === undefined) continue
      const r = validateValue(col, v)
      for (const e of r.errors) errors.push(e)
      if (col.primaryKey) {
        if (
          r.errors.length === 0 &&
          Object.hasOwn(outKey, k) &&
          JSON.stringify(r.value) !== JSON.stringify(outKey[k])
        ) {
          errors.push({ code: 'invalid_value', field: k, message: `${k} in values differs from the key` })
        }
        continue
      }
      set(outValues, k, r.value)
    }
  }
  return { key: outKey, values: outValues, errors }
}
