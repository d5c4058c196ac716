import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api'
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

export async function readColumns(conn: DuckDBConnection, req: ColumnPullRequest): Promise<PulledColumns> {
  const { table } = req
  const from = changesAfter(table, req.afterVersion, req.tenant, req.limit)
  const result = await conn.stream(
    `SELECT ${table.columns.map(cellExpr).join(', ')}, t._hlc, t._deleted, t._version ${from.sql}`,
    from.params,
  )
  const ncols = table.columns.length
  const values: ArrowCell[][] = table.columns.map(() => [])
  const hlc: string[] = []
  const deleted: boolean[] = []
  let lastVersion: bigint | undefined
  let read = 0
  for (;;) {
    const chunk = await result.fetchChunk()
    if (chunk === null || chunk.rowCount === 0) break
    // one row past the limit only tells that more follow
    const n = Math.min(chunk.rowCount, req.limit - read)
    for (let ci = 0; ci < ncols; ci++) {
      const c = table.columns[ci] as Column
      const out = values[ci] as ArrowCell[]
      const vec = chunk.getColumnVector(ci)
      for (let i = 0; i < n; i++) out.push(cellOf(c, vec.getItem(i)))
    }
    const hlcs = chunk.getColumnVector(ncols)
    const dels = chunk.getColumnVector(ncols + 1)
    const versions = chunk.getColumnVector(ncols + 2)
    for (let i = 0; i < n; i++) {
      hlc.push(String(hlcs.getItem(i)))
      deleted.push(dels.getItem(i) === true)
    }
    if (n > 0) lastVersion = BigInt(String(versions.getItem(n - 1)))
    read += chunk.rowCount
  }
  return {
    columns: { values: new Map(table.columns.map((c, i) => [c.name, values[i] ?? []])), hlc, deleted },
    lastVersion,
    hasMore: read > req.limit,
  }
}
