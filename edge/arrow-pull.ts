import {
  Table as ArrowTable,
  Bool,
  type DataType,
  DateDay,
  Float64,
  Int32,
  Int64,
  TimestampMillisecond,
  tableToIPC,
  Utf8,
  type Vector,
  vectorFromArray,
} from 'apache-arrow'
import type { Column, Row, Table } from '../shared/schema.ts'
import type { PulledChange } from './warehouse.ts'

/**
 * The bulk form of pull (PROTOCOL.md: "A bulk form for first loads may answer
 * `application/vnd.apache.arrow.stream`"): one table's changes as one Arrow IPC stream, so a client
 * hydrates its cache with one bulk insert instead of decoding JSON row by row.
 *
 * Columns: the table's columns in declaration order, typed per the schema, then `_hlc` (Utf8) and
 * `_deleted` (Bool). A tombstone carries its key columns, nulls elsewhere, and `_deleted = true`, so a
 * hydrating client learns deletes too. Paging (cursor, hasMore) travels in response headers.
 *
 * Types: integer → Int32, bigint → Int64, double → Float64, boolean → Bool, date → Date32 (days),
 * timestamp → Timestamp(ms, UTC: the wire's instants have millisecond precision), and text, uuid,
 * json (as JSON text) and decimal → Utf8. Decimals stay text, as on the JSON wire (`"12.50"`): exact
 * at any precision, and the cache casts them to its DECIMAL column in the same bulk statement.
 */
export const ARROW_STREAM = 'application/vnd.apache.arrow.stream'

/** Response headers of an Arrow pull. */
export const ARROW_HEADERS = {
  /** The cursor to pass for the next page of the same table. */
  cursor: 'Eddy-Cursor',
  /** `true` while more changes follow. */
  hasMore: 'Eddy-Has-More',
  /**
   * Present when the request names `resume=<tables>`: a cursor for those tables at the warehouse's
   * high-water mark when this page was read. Every change at or below it is included in a complete
   * Arrow hydration started afterwards, so JSON pulls over those tables can continue from it.
   */
  resumeCursor: 'Eddy-Resume-Cursor',
  /** Rows in this page (progress, without decoding the stream). */
  rows: 'Eddy-Rows',
  /** The greatest `_hlc` in this page, absent when empty: the client's clock receives it. */
  maxHlc: 'Eddy-Max-Hlc',
} as const

/** The greatest stamp among the changes (HLC text sorts in time order), or undefined when none. */
export function maxHlc(changes: readonly PulledChange[]): string | undefined {
  let max: string | undefined
  for (const ch of changes) if (max === undefined || ch.hlc > max) max = ch.hlc
  return max
}

/** Default and largest page of an Arrow pull, in rows (JSON pages stop at 10,000). */
export const ARROW_DEFAULT_LIMIT = 50_000
export const ARROW_MAX_LIMIT = 100_000

/** Whether an `Accept` header asks for the Arrow stream (a media range in the list, any parameters). */
export function acceptsArrow(accept: string | undefined): boolean {
  if (accept === undefined) return false
  return accept.split(',').some((range) => (range.split(';')[0] ?? '').trim().toLowerCase() === ARROW_STREAM)
}

function arrowType(c: Column): DataType {
  switch (c.type) {
    case 'integer':
      return new Int32()
    case 'bigint':
      return new Int64()
    case 'double':
      return new Float64()
    case 'boolean':
      return new Bool()
    case 'date':
      return new DateDay()
    case 'timestamp':
      return new TimestampMillisecond()
    case 'decimal':
    case 'text':
    case 'uuid':
    case 'json':
      return new Utf8()
  }
}

/** A canonical wire value (what the warehouse's `pull` answers) as the Arrow builder's input. */
function arrowValue(c: Column, v: unknown): unknown {
  if (v === null || v === undefined) return null
  switch (c.type) {
    case 'integer':
    case 'double':
      return Number(v)
    case 'bigint':
      return BigInt(v as string | number | bigint)
    case 'boolean':
      return v === true
    case 'date':
      // `YYYY-MM-DD` → epoch ms of that UTC day (the builder stores days)
      return Date.parse(`${String(v).slice(0, 10)}T00:00:00Z`)
    case 'timestamp':
      return typeof v === 'number' ? v : Date.parse(String(v))
    case 'json':
      return JSON.stringify(v)
    case 'decimal':
    case 'text':
    case 'uuid':
      return String(v)
  }
}

/** One table's pulled changes as an Arrow IPC stream (an empty table still carries its schema). */
export function changesToArrow(table: Table, changes: readonly PulledChange[]): Uint8Array<ArrayBuffer> {
  const vectors: Record<string, Vector> = {}
  const rows: Row[] = changes.map((ch) => ch.row ?? ch.key)
  for (const c of table.columns) {
    const values = rows.map((r) => arrowValue(c, r[c.name]))
    vectors[c.name] = vectorFromArray(values, arrowType(c))
  }
  vectors._hlc = vectorFromArray(
    changes.map((ch) => ch.hlc),
    new Utf8(),
  )
  vectors._deleted = vectorFromArray(
    changes.map((ch) => ch.row === null),
    new Bool(),
  )
  // a copy on an ArrayBuffer (what a Response body takes), not a view on a possibly shared one
  return tableToIPC(new ArrowTable(vectors), 'stream').slice()
}
