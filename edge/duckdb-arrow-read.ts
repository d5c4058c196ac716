import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api'
import { must } from '../shared/errors.ts'
import type { Column, Table } from '../shared/schema.ts'
import type { ArrowCell } from './arrow-pull.ts'
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

/** A DuckDB cell as the column's Arrow cell (DuckDB hands INTEGER/DOUBLE as numbers, BIGINT as bigint). */
function cellOf(c: Column, v: DuckDBValue): ArrowCell {
  if (v === null) return null
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string' || typeof v === 'boolean')
    return v
  // not reached for the expressions above; kept exact rather than guessed
  throw new Error(`unexpected ${typeof v} for column '${c.name}' in an Arrow pull`)
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

/**
 * Reads one page in version order, chunk by chunk. `@duckdb/node-api` reads a text cell longer
 * than 12 bytes with one native call and decodes it on its own, so a row's text cells (and its
 * stamp) come packed into one string, beside each cell's byte length and null flag, and are split
 * here: one string read per row instead of one per text cell. Packed ASCII (a byte per
 * character) is sliced as it is; other text goes through its UTF-8 bytes, so every character comes
 * back exactly.
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
    `concat(${[...texts.map(cellExpr), 't._hlc'].join(', ')})`,
  ]
  const result = await conn.stream(`SELECT ${select.join(', ')} ${from.sql}`, from.params)
  const values = new Map<string, ArrowCell[]>(table.columns.map((c) => [c.name, []]))
  const otherOut = others.map((c) => must(values.get(c.name), c.name))
  const textOut = texts.map((c) => must(values.get(c.name), c.name))
  const nt = texts.length
  const at = { hlcLength: others.length + 2 * nt, deleted: others.length + 2 * nt + 1 }
  const hlc: string[] = []
  const deleted: boolean[] = []
  let lastVersion: bigint | undefined
  let read = 0
  for (;;) {
    const chunk = await result.fetchChunk()
    if (chunk === null || chunk.rowCount === 0) break
    // one row past the limit only tells that more follow
    const n = Math.min(chunk.rowCount, req.limit - read)
    for (let ci = 0; ci < others.length; ci++) {
      const c = others[ci] as Column
      const out = otherOut[ci] as ArrowCell[]
      const vec = chunk.getColumnVector(ci)
      for (let i = 0; i < n; i++) out.push(cellOf(c, vec.getItem(i)))
    }
    const lengths = Array.from({ length: nt + 1 }, (_, j) =>
      chunk.getColumnVector(j === nt ? at.hlcLength : others.length + 2 * j),
    )
    const nulls = Array.from({ length: nt }, (_, j) => chunk.getColumnVector(others.length + 2 * j + 1))
    const dels = chunk.getColumnVector(at.deleted)
    const versions = chunk.getColumnVector(at.deleted + 1)
    const packed = chunk.getColumnVector(at.deleted + 2)
    for (let i = 0; i < n; i++) {
      const text = String(packed.getItem(i))
      let bytes: Buffer | undefined
      let total = 0
      for (const l of lengths) total += Number(l.getItem(i))
      if (total !== text.length) bytes = Buffer.from(text, 'utf8')
      let pos = 0
      for (let j = 0; j <= nt; j++) {
        const len = Number((lengths[j] as (typeof lengths)[number]).getItem(i))
        const cell = bytes === undefined ? text.slice(pos, pos + len) : bytes.toString('utf8', pos, pos + len)
        pos += len
        if (j === nt) hlc.push(cell)
        else (textOut[j] as ArrowCell[]).push(nulls[j]?.getItem(i) === true ? null : cell)
      }
      deleted.push(dels.getItem(i) === true)
    }
    if (n > 0) lastVersion = BigInt(String(versions.getItem(n - 1)))
    read += chunk.rowCount
  }
  return { columns: { values, hlc, deleted }, lastVersion, hasMore: read > req.limit }
}
