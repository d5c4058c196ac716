import type { Vector } from 'apache-arrow'
import { must } from '../../../shared/errors.ts'
import type { Column, Table } from '../../../shared/schema.ts'
import { fixedColumn, flagColumn, isArrowText, textColumn } from '../../pull/arrow-page-columns.ts'
import { quoteIdent } from '../column-codec.ts'

type FixedColumn = ReturnType<typeof fixedColumn>

const decoder = new TextDecoder()

import type { ColumnPullRequest, PulledColumns } from '../warehouse.ts'

/**
 * The PostgreSQL warehouse's `pullColumns`: one table's changes read straight into the buffers the
 * Arrow pull encodes, without a row object per change. The same changes in the same order as
 * `pull` (one statement, so one snapshot), and the same cells as the row path's conversion
 * (`changesToColumns`), so the two produce byte-identical Arrow streams.
 *
 * postgres.js spends most of a read on its per-cell work (a string or a Buffer view per cell, a
 * parser per type), so SQL packs each change into one text value and the reader takes its bytes
 * as they arrived (`.raw()`): a header of comma-terminated fields (`_version`, `_deleted` as 0/1,
 * each fixed-width cell already in its Arrow form as decimal text, empty for null, then each text
 * cell's byte length, empty for null, then the stamp's), followed by the text cells' UTF-8 bytes
 * back to back and the stamp. Fixed-width cells are parsed from their digits; text bytes are
 * copied into each column's buffer, never decoded (JSON excepted: see `cellExpr`).
 */

/**
 * Runs one query whose rows have one column, handing each row's cell to `onRow` in order as the
 * bytes PostgreSQL sent (null for NULL); resolves when the last row has been handed over.
 */
export type RawQuery = (
  text: string,
  params: readonly (string | number)[],
  onRow: (cell: Uint8Array | null) => void,
) => Promise<void>

/**
 * The SQL expression of a column's Arrow cell: integers as they are, booleans as 0/1, dates as
 * days since the epoch, timestamps as epoch milliseconds (floored, as the row path reads them),
 * the rest as PostgreSQL's text (decimals exact). JSON is read as its stored text and written
 * out as `JSON.stringify(JSON.parse(text))` (a JSON `null` as a null cell), which is what the
 * row path's cell is: stored JSON need not be in that form when something other than Eddy wrote
 * it. A tombstone's non-key cells read as null.
 */
function cellExpr(c: Column): string {
  const ref = `t.${quoteIdent(c.name)}`
  let expr: string
  switch (c.type) {
    case 'integer':
    case 'bigint':
    case 'double':
      expr = ref
      break
    case 'boolean':
      expr = `${ref}::int`
      break
    case 'date':
      expr = `(${ref} - DATE '1970-01-01')`
      break
    case 'timestamp': {
      // floor(epoch ms) without numeric arithmetic (half the server time): the whole seconds'
      // epoch and the milliseconds within the second, each exact in float8, in UTC so no zone's
      // offset enters
      const utc = `(${ref} AT TIME ZONE 'UTC')`
      expr = `(date_part('epoch', date_trunc('second', ${utc}))::int8 * 1000 + floor(date_part('milliseconds', ${utc}))::int8 % 1000)`
      break
    }
    case 'decimal':
    case 'text':
    case 'uuid':
    case 'json':
      expr = `${ref}::text`
      break
  }
  return c.primaryKey ? expr : `(CASE WHEN t._deleted THEN NULL ELSE ${expr} END)`
}

/** PostgreSQL takes at most 100 arguments per function call: longer lists are joined by `||`. */
const MAX_ARGS = 90

/** `concat` of any number of parts (NULL parts read as empty). */
function concatAll(parts: readonly string[]): string {
  const out: string[] = []
  for (let i = 0; i < parts.length; i += MAX_ARGS)
    out.push(`concat(${parts.slice(i, i + MAX_ARGS).join(', ')})`)
  return out.join(' || ')
}

/**
 * Whether a server's text arrives in the bytes it stores, so `octet_length` counts the bytes the
 * reader receives: UTF8, or SQL_ASCII (which PostgreSQL sends unconverted). Any other server
 * encoding is converted to the connection's UTF-8 on the way out, and the lengths are counted
 * after the same conversion (`convert_to`, ~25% more server time per page, so only there).
 */
export function sendsStoredBytes(serverEncoding: string): boolean {
  return serverEncoding === 'UTF8' || serverEncoding === 'SQL_ASCII'
}

/** The query of one page: each change as one packed text value (see the module comment). */
function columnsQuery(
  req: ColumnPullRequest,
  serverEncoding = 'UTF8',
): { text: string; params: (string | number)[] } {
  const { table } = req
  const fixed = table.columns.filter((c) => !isArrowText(c))
  const texts = table.columns.filter(isArrowText)
  // one `concat` (NULL reads as empty), a comma after each header field: no per-field casts
  const header = [
    't._version',
    't._deleted::int',
    ...fixed.map(cellExpr),
    ...texts.map((c) =>
      sendsStoredBytes(serverEncoding)
        ? `octet_length(${cellExpr(c)})`
        : `octet_length(convert_to(${cellExpr(c)}, 'UTF8'))`,
    ),
    // stamps are ASCII in every encoding
    'octet_length(t._hlc)',
  ]
  const packed = concatAll([...header.flatMap((f) => [f, "','"]), ...texts.map(cellExpr), 't._hlc'])
  const params: (string | number)[] = [req.afterVersion.toString()]
  let tenantFilter = ''
  if (req.tenant !== undefined && table.tenantColumn !== undefined) {
    params.push(req.tenant)
    tenantFilter = ` AND t.${quoteIdent(table.tenantColumn)}::text = $${params.length}`
  }
  params.push(req.limit + 1)
  return {
    text: `SELECT ${packed} FROM ${quoteIdent(table.name)} t
      WHERE t._version > $1::bigint${tenantFilter} ORDER BY t._version LIMIT $${params.length}`,
    params,
  }
}

const COMMA = 0x2c
const MINUS = 0x2d
const ZERO = 0x30
const ONE = 0x31

/** An integer written in ASCII digits (optionally signed), exact while it is a safe integer. */
function digits(b: Uint8Array, from: number, to: number): number {
  let p = from
  const negative = b[p] === MINUS
  if (negative) p += 1
  let n = 0
  for (; p < to; p++) n = n * 10 + ((b[p] ?? ZERO) - ZERO)
  return negative ? -n : n
}

function ascii(b: Uint8Array, from: number, to: number): string {
  let s = ''
  for (let p = from; p < to; p++) s += String.fromCharCode(b[p] ?? 0)
  return s
}

/**
 * A fixed-width cell from its text `b[from, to)` (empty is null) into `col`, parsed as the row path
 * parses it.
 */
function setFixed(col: FixedColumn, c: Column, i: number, b: Uint8Array, from: number, to: number): void {
  if (from === to) {
    col.setNull(i)
    return
  }
  switch (c.type) {
    case 'boolean':
      col.set(i, b[from] === ONE)
      break
    case 'bigint':
    case 'timestamp':
      // 15 digits are always exact as a number; longer ones go through BigInt's own parse
      col.set(i, to - from <= 15 ? BigInt(digits(b, from, to)) : BigInt(ascii(b, from, to)))
      break
    case 'double':
      // PostgreSQL's shortest exact text, parsed as the row path parses it (NaN, ±Infinity too)
      col.set(i, Number(ascii(b, from, to)))
      break
    default:
      col.set(i, digits(b, from, to))
  }
}

function malformed(table: Table): Error {
  return new Error(`a packed row of '${table.name}' ended early in an Arrow pull`)
}

/**
 * A page's columns, filled one packed row at a time (see the module comment) as the rows arrive,
 * for at most `capacity` rows.
 */
function pageReader(table: Table, capacity: number) {
  const fixedCols = table.columns.filter((c) => !isArrowText(c))
  const textCols = table.columns.filter(isArrowText)
  const fixed = fixedCols.map((c) => fixedColumn(c, capacity))
  const texts = textCols.map(() => textColumn(capacity))
  const json = textCols.map((c) => c.type === 'json')
  const stamps = textColumn(capacity)
  const deleted = flagColumn(capacity)
  const lengths = new Int32Array(textCols.length)
  let newest = -1
  let n = 0
  let last: Uint8Array | undefined
  return {
    add(b: Uint8Array): void {
      const i = n
      const end = b.length
      let p = 0
      // _version: read from the last row only, at the end
      while (p < end && b[p] !== COMMA) p++
      p += 1
      if (b[p] === ONE) deleted.set(i)
      p += 2
      for (let k = 0; k < fixed.length; k++) {
        const from = p
        while (p < end && b[p] !== COMMA) p++
        setFixed(must(fixed[k], 'column'), must(fixedCols[k], 'column'), i, b, from, p)
        p += 1
      }
      for (let j = 0; j < lengths.length; j++) {
        const from = p
        while (p < end && b[p] !== COMMA) p++
        lengths[j] = from === p ? -1 : digits(b, from, p)
        p += 1
      }
      const from = p
      while (p < end && b[p] !== COMMA) p++
      const stampLength = digits(b, from, p)
      p += 1
      for (let j = 0; j < lengths.length; j++) {
        const len = lengths[j] ?? -1
        const out = must(texts[j], 'text column')
        if (len < 0) out.setNull(i)
        else if (json[j] === true) {
          // a stored JSON `null` is a null cell, as on the row path
          const doc: unknown = JSON.parse(decoder.decode(b.subarray(p, p + len)))
          if (doc === null) out.setNull(i)
          else out.setString(i, JSON.stringify(doc))
          p += len
        } else {
          out.set(i, b, p, len)
          p += len
        }
      }
      if (p + stampLength !== end) throw malformed(table)
      stamps.set(i, b, p, stampLength)
      if (newest < 0 || stamps.after(i, newest)) newest = i
      last = b
      n += 1
    },
    page(hasMore: boolean): PulledColumns {
      const values = new Map<string, Vector>()
      for (const [k, c] of fixedCols.entries()) values.set(c.name, must(fixed[k], c.name).vector(n))
      for (const [k, c] of textCols.entries()) values.set(c.name, must(texts[k], c.name).vector(n))
      let lastVersion: bigint | undefined
      if (last !== undefined) {
        let p = 0
        while (p < last.length && last[p] !== COMMA) p++
        lastVersion = BigInt(ascii(last, 0, p))
      }
      return {
        columns: {
          values,
          hlc: stamps.vector(n),
          deleted: deleted.vector(n),
          // stamps are ASCII (HLC_PATTERN), so their bytes sort as their text
          maxHlc: newest < 0 ? undefined : stamps.text(newest),
        },
        lastVersion,
        hasMore,
      }
    },
  }
}

/**
 * Reads one page (`columnsQuery`) into the Arrow vectors the pull sends, each row as it arrives,
 * from a server whose `server_encoding` is given (see `sendsStoredBytes`).
 */
export async function readColumns(
  run: RawQuery,
  req: ColumnPullRequest,
  serverEncoding: string,
): Promise<PulledColumns> {
  const query = columnsQuery(req, serverEncoding)
  const reader = pageReader(req.table, req.limit)
  let read = 0
  await run(query.text, query.params, (row) => {
    // one row past the limit only tells that more follow
    if (read < req.limit) reader.add(must(row, 'packed row'))
    read += 1
  })
  return reader.page(read > req.limit)
}
