import type { Table } from '../../shared/schema.ts'
import { falseLiteral, typeOf, type WarehouseDialect } from './dialect.ts'

/**
 * The columns Eddy adds to every synced table, once for the three stores: `_hlc` (the row's stamp),
 * `_deleted` (a tombstone), `_version` (the change counter pulls follow), `_client_id` (who wrote
 * it), and `_col_hlcs` (per-column stamps) on merge tables.
 *
 * `_client_id` is `NOT NULL DEFAULT ''`. Stores created by earlier releases declared it `NOT NULL`
 * (DuckDB), `NOT NULL DEFAULT ''` (PostgreSQL) or nullable (D1); migrations never alter an existing
 * column, and every write gives it the writing client's id (a non-empty string), which each of those
 * three definitions accepts, so old stores keep working unchanged. The default lets a migration add
 * the column to a table that already holds rows.
 */
export interface SystemColumn {
  readonly name: string
  /** Its definition in CREATE TABLE. */
  readonly create: string
  /** Its definition when a migration adds it to an existing table. */
  readonly add: string
}

/** The system columns of `table`, in the order `writeColumnNames` lists them. */
export function systemColumns(table: Table, dialect: WarehouseDialect): SystemColumn[] {
  const text = typeOf('text', dialect)
  const defs: Array<[string, string]> = [
    // PostgreSQL compares text by the database's collation unless told otherwise; stamps sort bytewise
    ['_hlc', `${dialect === 'postgres' ? `${text} COLLATE "C"` : text} NOT NULL`],
    ['_deleted', `${typeOf('boolean', dialect)} NOT NULL DEFAULT ${falseLiteral(dialect)}`],
    ['_version', `${typeOf('bigint', dialect)} NOT NULL DEFAULT 0`],
    ['_client_id', `${text} NOT NULL DEFAULT ''`],
  ]
  if (table.conflict === 'merge') defs.push(['_col_hlcs', text])
  return defs.map(([name, create]) => ({
    name,
    create,
    // DuckDB's ALTER TABLE cannot add a column with a constraint
    add: dialect === 'duckdb' ? create.replace(' NOT NULL', '') : create,
  }))
}

/** Every column a write stores: the declared ones, then the system ones. */
export function writeColumnNames(table: Table): string[] {
  const names = [...table.columns.map((c) => c.name), '_hlc', '_deleted', '_version', '_client_id']
  if (table.conflict === 'merge') names.push('_col_hlcs')
  return names
}
