import type { DuckDBBlobVector, DuckDBConnection, DuckDBValue } from '@duckdb/node-api'
import type { Vector } from 'apache-arrow'
import { must } from '../../../shared/errors.ts'
import type { Column, Table } from '../../../shared/schema.ts'
import { fixedColumn, flagColumn, isArrowText, textColumn } from '../../pull/arrow-page-columns.ts'
import { quoteIdent } from '../column-codec.ts'
import type { ColumnPullRequest, PulledColumns } from '../warehouse.ts'

/**
 * The DuckDB warehouse's `pullColumns`: one table's changes read chunk by chunk, column by
 * column, straight into the arrays the Arrow pull encodes. Reading row objects
 * (`getRowObjectsJS`) and decoding each value to its wire form dominated a large hydration's edge
 * time; here SQL already produces each column in its Arrow form (see `ArrowColumns`), so a cell
 * costs one vector read.
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
  const texts = table.columns.filter(isArrowText)
  const others = table.columns.filter((c) => !isArrowText(c))
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
  const deleted = flagColumn(capacity)
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
      for (let i = 0; i < n; i++) {
        const v = vec.getItem(i)
        if (v === null) out.setNull(read + i)
        else if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean')
          out.set(read + i, v)
        // not reached for the expressions of `cellExpr`; kept exact rather than guessed
        else throw new Error(`unexpected ${typeof v} for column '${others[ci]?.name}' in an Arrow pull`)
      }
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
        const out = must(text[j], 'text')
        if (nulls[j]?.getItem(i) === true) out.setNull(read + i)
        else out.set(read + i, bytes, pos, len)
        pos += len
      }
      const row = read + i
      stamps.set(row, bytes, pos, Number(must(lengths[nt], 'length').getItem(i)))
      if (newest < 0 || stamps.after(row, newest)) newest = row
      if (dels.getItem(i) === true) deleted.set(row)
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
    deleted: deleted.vector(rows),
    // stamps are ASCII (HLC_PATTERN), so their bytes sort as their text
    maxHlc: newest < 0 ? undefined : stamps.text(newest),
  }
  return { columns, lastVersion, hasMore: read > req.limit }
}
