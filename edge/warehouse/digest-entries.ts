import type { Row, Table } from '../../shared/schema.ts'
import type { Query } from './bookkeeping-reads.ts'
import { decodeRow, keyOf, quoteIdent, selectExpr } from './column-codec.ts'
import { param } from './dialect.ts'

/**
 * `Warehouse.digestEntries` for the stores that read columns natively (DuckDB, PostgreSQL): the key
 * and stamp of every live row, within the tenant when the table is scoped by one. D1 reads its keys
 * packed into one JSON value per row instead (see `d1-warehouse.ts`).
 */
export async function readDigestEntries(
  query: Query,
  dialect: 'duckdb' | 'postgres',
  table: Table,
  tenant: string | undefined,
): Promise<Array<{ key: Row; hlc: string }>> {
  const scoped = tenant !== undefined && table.tenantColumn !== undefined
  const where = scoped
    ? `NOT t._deleted AND CAST(t.${quoteIdent(table.tenantColumn ?? '')} AS TEXT) = ${param(dialect, 1)}`
    : 'NOT t._deleted'
  const keyCols = table.primaryKey.map((k) => table.columnsByName.get(k)).filter((c) => c !== undefined)
  const found = await query(
    `SELECT ${keyCols.map((c) => `${selectExpr(c, dialect, 't')} AS ${quoteIdent(c.name)}`).join(', ')},
       t._hlc AS _hlc FROM ${quoteIdent(table.name)} t WHERE ${where}`,
    scoped && tenant !== undefined ? [tenant] : [],
  )
  return found.map((raw) => ({ key: keyOf(table, decodeRow(table, raw)), hlc: String(raw._hlc) }))
}
