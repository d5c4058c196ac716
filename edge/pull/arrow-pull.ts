import {
  Table as ArrowTable,
  Bool,
  type DataType,
  DateDay,
  Float64,
  Int32,
  Int64,
  makeData,
  makeVector,
  TimestampMillisecond,
  tableToIPC,
  Utf8,
  Vector,
} from 'apache-arrow'
import type { Column, Row, Table } from '../../shared/schema.ts'
import type {
  ArrowCell,
  ArrowColumns,
  ColumnPullRequest,
  PulledChange,
  PulledColumns,
  Warehouse,
} from '../warehouse/warehouse.ts'

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

/** The greatest of some stamps (HLC text sorts in time order), or undefined when none. */
function maxHlc(stamps: readonly string[]): string | undefined {
  let max: string | undefined
  for (const s of stamps) if (max === undefined || s > max) max = s
  return max
}

/** Whether an `Accept` header asks for the Arrow stream (a media range in the list, any parameters). */
export function acceptsArrow(accept: string | undefined): boolean {
  if (accept === undefined) return false
  return accept.split(',').some((range) => (range.split(';')[0] ?? '').trim().toLowerCase() === ARROW_STREAM)
}

/** The Arrow type a schema column travels as. */
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

/** A canonical wire value (what the warehouse's `pull` answers) as the number/bigint/text stored. */
function arrowValue(c: Column, v: unknown): ArrowCell {
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
      // `YYYY-MM-DD` → days since the epoch
      return Math.floor(Date.parse(`${String(v).slice(0, 10)}T00:00:00Z`) / 86_400_000)
    case 'timestamp':
      return BigInt(typeof v === 'number' ? Math.floor(v) : Date.parse(String(v)))
    case 'json':
      return JSON.stringify(v)
    case 'decimal':
    case 'text':
    case 'uuid':
      return String(v)
  }
}

const encoder = new TextEncoder()
const NON_ASCII = /[\u0080-\uffff]/

/**
 * One column's buffers, built directly (validity bitmap, values, offsets for text): the generic
 * `vectorFromArray` builders are far slower, and a page's encoding is on every hydration's path.
 */
function columnVector(type: DataType, values: readonly ArrowCell[]): Vector {
  const length = values.length
  const nullBitmap = new Uint8Array((length + 7) >> 3)
  let nullCount = 0
  for (let i = 0; i < length; i++) {
    if (values[i] === null) nullCount += 1
    else nullBitmap[i >> 3] = (nullBitmap[i >> 3] ?? 0) | (1 << (i & 7))
  }
  const base = { length, nullCount, nullBitmap }
  if (type instanceof Utf8) {
    const texts = values.map((v) => (v === null ? '' : String(v)))
    const valueOffsets = new Int32Array(length + 1)
    const joined = texts.join('')
    let data: Uint8Array
    if (!NON_ASCII.test(joined)) {
      // one encode for the column: a character is a byte, so offsets are string lengths
      data = encoder.encode(joined)
      let at = 0
      for (let i = 0; i < length; i++) {
        at += (texts[i] ?? '').length
        valueOffsets[i + 1] = at
      }
    } else {
      const parts = texts.map((t) => encoder.encode(t))
      let size = 0
      for (let i = 0; i < length; i++) {
        size += parts[i]?.byteLength ?? 0
        valueOffsets[i + 1] = size
      }
      data = new Uint8Array(size)
      for (let i = 0; i < length; i++) data.set(parts[i] ?? new Uint8Array(0), valueOffsets[i] ?? 0)
    }
    return makeVector(makeData({ ...base, type, valueOffsets, data }))
  }
  if (type instanceof Bool) {
    const data = new Uint8Array((length + 7) >> 3)
    for (let i = 0; i < length; i++)
      if (values[i] === true) data[i >> 3] = (data[i >> 3] ?? 0) | (1 << (i & 7))
    return makeVector(makeData({ ...base, type, data }))
  }
  if (type instanceof Int64 || type instanceof TimestampMillisecond) {
    const data = new BigInt64Array(length)
    for (let i = 0; i < length; i++) {
      const v = values[i]
      if (typeof v === 'bigint') data[i] = v
    }
    return type instanceof Int64
      ? makeVector(makeData({ ...base, type, data }))
      : makeVector(makeData({ ...base, type, data }))
  }
  if (type instanceof Float64) {
    const data = new Float64Array(length)
    for (let i = 0; i < length; i++) {
      const v = values[i]
      if (typeof v === 'number') data[i] = v
    }
    return makeVector(makeData({ ...base, type, data }))
  }
  // Int32 and Date32 (days)
  const data = new Int32Array(length)
  for (let i = 0; i < length; i++) {
    const v = values[i]
    if (typeof v === 'number') data[i] = v
  }
  return type instanceof DateDay
    ? makeVector(makeData({ ...base, type, data }))
    : makeVector(makeData({ ...base, type: new Int32(), data }))
}

/** The greatest stamp of a page, or undefined when it is empty. */
export function columnsMaxHlc(cols: ArrowColumns): string | undefined {
  if (cols.maxHlc !== undefined) return cols.maxHlc
  return maxHlc(cols.hlc instanceof Vector ? [...cols.hlc].map(String) : cols.hlc)
}

/** Pulled changes (row objects, from `Warehouse.pull`) as columns. */
function changesToColumns(table: Table, changes: readonly PulledChange[]): ArrowColumns {
  const rows: Row[] = changes.map((ch) => ch.row ?? ch.key)
  const values = new Map<string, ArrowCell[]>()
  for (const c of table.columns)
    values.set(
      c.name,
      rows.map((r) => arrowValue(c, r[c.name])),
    )
  return { values, hlc: changes.map((ch) => ch.hlc), deleted: changes.map((ch) => ch.row === null) }
}

/** Columns as one Arrow IPC stream (an empty table still carries its schema). */
export function columnsToArrow(table: Table, cols: ArrowColumns): Uint8Array<ArrayBuffer> {
  const vectors: Record<string, Vector> = {}
  for (const c of table.columns) {
    const values = cols.values.get(c.name)
    if (values === undefined) throw new Error(`no column '${c.name}' for the Arrow pull of '${table.name}'`)
    vectors[c.name] = values instanceof Vector ? values : columnVector(arrowType(c), values)
  }
  vectors._hlc = cols.hlc instanceof Vector ? cols.hlc : columnVector(new Utf8(), cols.hlc)
  vectors._deleted = cols.deleted instanceof Vector ? cols.deleted : columnVector(new Bool(), cols.deleted)
  // a copy on an ArrayBuffer (what a Response body takes), not a view on a possibly shared one
  return tableToIPC(new ArrowTable(vectors), 'stream').slice()
}

/** One table's pulled changes as an Arrow IPC stream (an empty table still carries its schema). */
export function changesToArrow(table: Table, changes: readonly PulledChange[]): Uint8Array<ArrayBuffer> {
  return columnsToArrow(table, changesToColumns(table, changes))
}

/** One page of an Arrow pull: the warehouse's column reader when it has one, else `pull`'s rows. */
export async function pullColumnPage(warehouse: Warehouse, req: ColumnPullRequest): Promise<PulledColumns> {
  if (warehouse.pullColumns !== undefined) return warehouse.pullColumns(req)
  const { changes, hasMore } = await warehouse.pull({
    tables: [req.table],
    afterVersion: req.afterVersion,
    limit: req.limit,
    tenant: req.tenant,
  })
  return { columns: changesToColumns(req.table, changes), lastVersion: changes.at(-1)?.version, hasMore }
}

/** A page with no changes. */
export function emptyColumnPage(table: Table): PulledColumns {
  return {
    columns: { values: new Map(table.columns.map((c) => [c.name, []])), hlc: [], deleted: [] },
    lastVersion: undefined,
    hasMore: false,
  }
}
