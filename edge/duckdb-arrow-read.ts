import type { DuckDBBlobVector, DuckDBConnection, DuckDBValue } from '@duckdb/node-api'
import {
  Bool,
  DateDay,
  Float64,
  Int32,
  Int64,
  makeData,
  makeVector,
  TimestampMillisecond,
  Utf8,
  type Vector,
} from 'apache-arrow'
import { must } from '../shared/errors.ts'
import type { Column, Table } from '../shared/schema.ts'
import { quoteIdent } from './column-codec.ts'
import type { ColumnPullRequest, PulledColumns } from './warehouse.ts'

/**
 * The DuckDB warehouse's `pullColumns`: one table's changes read chunk by chunk, column by
 * column, straight into the arrays the Arrow pull encodes. Reading row objects
 * (`getRowObjectsJS`) and decoding each value to its wire form cost ~10 µs a row and made the
 * edge's part of a 100,000-row hydration about a second; here SQL already produces each column in
 * its Arrow form (see `ArrowColumns`), so a cell costs one vector read.
 */

/** The SELECT expression that yields a column's Arrow cell; a tombstone's non-key columns read as null. */
function cellExpr(c: Column): string {
  const ref = `t.${quoteIdent(c.name)}`
  let expr: string
  switch (c.type) {
    case 'integer':
    case 'bigint':
    case 'double':
    case 'boolean':
      expr = ref
      break
    case 'date':
      // days since the epoch (Arrow Date32)
      expr = `CAST(${ref} - DATE '1970-01-01' AS INTEGER)`
      break
    case 'timestamp':
      expr = `epoch_ms(${ref})`
      break
    case 'decimal':
    case 'text':
    case 'uuid':
    case 'json':
      expr = `CAST(${ref} AS VARCHAR)`
      break
  }
  return c.primaryKey ? expr : `CASE WHEN t._deleted THEN NULL ELSE ${expr} END`
}

/**
 * The FROM … LIMIT part every DuckDB pull shares (JSON rows and Arrow columns alike): one table's
 * changes after a version, oldest first, limited to the caller's tenant when the table is scoped,
 * one row past `limit` so the caller can tell whether more follow.
 */
export function changesAfter(
  table: Table,
  afterVersion: bigint,
  tenant: string | undefined,
  limit: number,
): { sql: string; params: DuckDBValue[] } {
  const params: DuckDBValue[] = [afterVersion]
  let tenantFilter = ''
  if (tenant !== undefined && table.tenantColumn !== undefined) {
    tenantFilter = ` AND CAST(t.${quoteIdent(table.tenantColumn)} AS VARCHAR) = ?`
    params.push(tenant)
  }
  params.push(limit + 1)
  return {
    sql: `FROM ${quoteIdent(table.name)} t WHERE t._version > ?${tenantFilter} ORDER BY t._version LIMIT ?`,
    params,
  }
}

/** Columns the Arrow pull sends as Utf8: their cells are read packed into one string per row. */
function isText(c: Column): boolean {
  return c.type === 'decimal' || c.type === 'text' || c.type === 'uuid' || c.type === 'json'
}

const bitmapBytes = (n: number): number => (n + 7) >> 3
const decoder = new TextDecoder()

/**
 * One fixed-width column of a page (every type `isText` leaves out), written in place as it is
 * read: its values (sized for the page's limit) and validity bitmap, then one Arrow vector of the
 * column's `arrowType`.
 */
function fixedColumn(c: Column, capacity: number) {
  const valid = new Uint8Array(bitmapBytes(capacity))
  let nullCount = 0
  const bits = new Uint8Array(c.type === 'boolean' ? bitmapBytes(capacity) : 0)
  const wide = new BigInt64Array(c.type === 'bigint' || c.type === 'timestamp' ? capacity : 0)
  const float = new Float64Array(c.type === 'double' ? capacity : 0)
  const int = new Int32Array(c.type === 'integer' || c.type === 'date' ? capacity : 0)
  return {
    set(i: number, v: DuckDBValue): void {
      if (v === null) {
        nullCount += 1
        return
      }
      if (typeof v !== 'number' && typeof v !== 'bigint' && typeof v !== 'boolean')
        // not reached for the expressions of `cellExpr`; kept exact rather than guessed
        throw new Error(`unexpected ${typeof v} for column '${c.name}' in an Arrow pull`)
      valid[i >> 3] = (valid[i >> 3] ?? 0) | (1 << (i & 7))
      if (c.type === 'boolean') {
        if (v === true) bits[i >> 3] = (bits[i >> 3] ?? 0) | (1 << (i & 7))
      } else if (c.type === 'bigint' || c.type === 'timestamp') wide[i] = BigInt(v)
      else if (c.type === 'double') float[i] = Number(v)
      else int[i] = Number(v)
    },
    vector(length: number): Vector {
      const base = { length, nullCount, nullBitmap: valid.subarray(0, bitmapBytes(length)) }
      switch (c.type) {
        case 'boolean':
          return makeVector(
            makeData({ ...base, type: new Bool(), data: bits.subarray(0, bitmapBytes(length)) }),
          )
        case 'bigint':
          return makeVector(makeData({ ...base, type: new Int64(), data: wide.subarray(0, length) }))
        case 'timestamp':
          return makeVector(
            makeData({ ...base, type: new TimestampMillisecond(), data: wide.subarray(0, length) }),
          )
        case 'double':
          return makeVector(makeData({ ...base, type: new Float64(), data: float.subarray(0, length) }))
        case 'date':
          return makeVector(makeData({ ...base, type: new DateDay(), data: int.subarray(0, length) }))
        default:
          return makeVector(makeData({ ...base, type: new Int32(), data: int.subarray(0, length) }))
      }
    },
  }
}

/** One Utf8 column of a page: its UTF-8 bytes copied as read (never decoded), offsets and validity. */
function textColumn(capacity: number) {
  const offsets = new Int32Array(capacity + 1)
  const valid = new Uint8Array(bitmapBytes(capacity))
  let nulls = 0
  let bytes = new Uint8Array(64 * 1024)
  let size = 0
  return {
    /** Row `i` is `len` bytes of `from` at `at`, or null. */
    set(i: number, from: Uint8Array, at: number, len: number, isNull: boolean): void {
      if (isNull) nulls += 1
      else {
        valid[i >> 3] = (valid[i >> 3] ?? 0) | (1 << (i & 7))
        if (size + len > bytes.length) {
          const grown = new Uint8Array(Math.max(bytes.length * 2, size + len))
          grown.set(bytes.subarray(0, size))
          bytes = grown
        }
        // a loop, not `set(subarray)`: a cell is a few dozen bytes, a view per cell costs more
        for (let k = 0; k < len; k++) bytes[size + k] = from[at + k] ?? 0
        size += len
      }
      offsets[i + 1] = size
    },
    /** Whether row `a`'s text sorts after row `b`'s, comparing bytes (the order of ASCII text). */
    after(a: number, b: number): boolean {
      const [a0, a1, b0, b1] = [offsets[a] ?? 0, offsets[a + 1] ?? 0, offsets[b] ?? 0, offsets[b + 1] ?? 0]
      for (let k = 0; a0 + k < a1 && b0 + k < b1; k++) {
        const x = bytes[a0 + k] ?? 0
        const y = bytes[b0 + k] ?? 0
        if (x !== y) return x > y
      }
      return a1 - a0 > b1 - b0
    },
    text(i: number): string {
      return decoder.decode(bytes.subarray(offsets[i] ?? 0, offsets[i + 1] ?? 0))
    },
    vector(length: number): Vector {
      return makeVector(
        makeData({
          type: new Utf8(),
          length,
          nullCount: nulls,
          nullBitmap: valid.subarray(0, bitmapBytes(length)),
          valueOffsets: offsets.subarray(0, length + 1),
          data: bytes.subarray(0, size),
        }),
      )
    },
  }
}

/**
 * Reads one page in version order, chunk by chunk, straight into the Arrow vectors the pull
 * sends. Fixed-width cells go into typed arrays as they are read. `@duckdb/node-api` reads a text
 * cell longer than 12 bytes with one native call, so a row's text cells and its stamp come
 * packed into one BLOB of their UTF-8 bytes, beside each cell's byte length and null flag: one
 * native read per row, and the bytes are copied into each column's buffer without being decoded
 * into strings and encoded again. The stamps are compared as bytes, and only the page's greatest
 * is decoded (it travels in a header).
 */
export async function readColumns(conn: DuckDBConnection, req: ColumnPullRequest): Promise<PulledColumns> {
  const { table } = req
  const from = changesAfter(table, req.afterVersion, req.tenant, req.limit)
  const texts = table.columns.filter(isText)
  const others = table.columns.filter((c) => !isText(c))
  const select = [
    ...others.map(cellExpr),
    ...texts.flatMap((c) => [
      `CAST(strlen(coalesce(${cellExpr(c)}, '')) AS INTEGER)`,
      `(${cellExpr(c)}) IS NULL`,
    ]),
    'CAST(strlen(t._hlc) AS INTEGER)',
    't._deleted',
    't._version',
    `encode(concat(${[...texts.map(cellExpr), 't._hlc'].join(', ')}))`,
  ]
  const result = await conn.stream(`SELECT ${select.join(', ')} ${from.sql}`, from.params)
  const capacity = req.limit
  const fixed = others.map((c) => fixedColumn(c, capacity))
  const text = texts.map(() => textColumn(capacity))
  const nt = texts.length
  const at = { hlcLength: others.length + 2 * nt, deleted: others.length + 2 * nt + 1 }
  const stamps = textColumn(capacity)
  let newest = -1
  const deleted = new Uint8Array(bitmapBytes(capacity))
  let lastVersion: bigint | undefined
  let read = 0
  for (;;) {
    const chunk = await result.fetchChunk()
    if (chunk === null || chunk.rowCount === 0) break
    // one row past the limit only tells that more follow
    const n = Math.min(chunk.rowCount, req.limit - read)
    for (let ci = 0; ci < others.length; ci++) {
      const out = must(fixed[ci], 'column')
      const vec = chunk.getColumnVector(ci)
      for (let i = 0; i < n; i++) out.set(read + i, vec.getItem(i))
    }
    const lengths = Array.from({ length: nt + 1 }, (_, j) =>
      chunk.getColumnVector(j === nt ? at.hlcLength : others.length + 2 * j),
    )
    const nulls = Array.from({ length: nt }, (_, j) => chunk.getColumnVector(others.length + 2 * j + 1))
    const dels = chunk.getColumnVector(at.deleted)
    const versions = chunk.getColumnVector(at.deleted + 1)
    const packed = chunk.getColumnVector(at.deleted + 2) as DuckDBBlobVector
    for (let i = 0; i < n; i++) {
      const bytes = must(packed.getItemBytes(i), 'packed text')
      let pos = 0
      for (let j = 0; j < nt; j++) {
        const len = Number(must(lengths[j], 'length').getItem(i))
        must(text[j], 'text').set(read + i, bytes, pos, len, nulls[j]?.getItem(i) === true)
        pos += len
      }
      const row = read + i
      stamps.set(row, bytes, pos, Number(must(lengths[nt], 'length').getItem(i)), false)
      if (newest < 0 || stamps.after(row, newest)) newest = row
      if (dels.getItem(i) === true) deleted[row >> 3] = (deleted[row >> 3] ?? 0) | (1 << (row & 7))
    }
    if (n > 0) lastVersion = BigInt(String(versions.getItem(n - 1)))
    read += chunk.rowCount
  }
  const rows = Math.min(read, req.limit)
  const values = new Map<string, Vector>()
  for (const [i, c] of others.entries()) values.set(c.name, must(fixed[i], c.name).vector(rows))
  for (const [j, c] of texts.entries()) values.set(c.name, must(text[j], c.name).vector(rows))
  const columns = {
    values,
    hlc: stamps.vector(rows),
    deleted: makeVector(
      makeData({
        type: new Bool(),
        length: rows,
        nullCount: 0,
        data: deleted.subarray(0, bitmapBytes(rows)),
      }),
    ),
    // stamps are ASCII (HLC_PATTERN), so their bytes sort as their text
    maxHlc: newest < 0 ? undefined : stamps.text(newest),
  }
  return { columns, lastVersion, hasMore: read > req.limit }
}
