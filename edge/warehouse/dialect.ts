import { type SqlDialect, sqlType } from '../../shared/sql-types.ts'

/**
 * What differs between the three warehouses' SQL, in one place: scalar type names, parameter
 * markers, booleans, how a timestamp is read. The core (system columns, bookkeeping tables,
 * migrations, prune, bookkeeping reads) writes each statement once over it.
 */
export type WarehouseDialect = Exclude<SqlDialect, 'cache'>

/** The SQL type of a scalar type in a dialect (the same table that types schema columns). */
export function typeOf(
  type: 'text' | 'bigint' | 'integer' | 'double' | 'boolean' | 'timestamp',
  dialect: WarehouseDialect,
): string {
  return sqlType({ type, precision: 0, scale: 0 }, dialect)
}

/** The marker of the `n`th (1-based) statement parameter. DuckDB's `?` binds in order of appearance. */
export function param(dialect: WarehouseDialect, n: number): string {
  switch (dialect) {
    case 'duckdb':
      return '?'
    case 'postgres':
      return `$${n}`
    case 'sqlite':
      return `?${n}`
  }
}

/** The literal of false in a boolean column (SQLite keeps booleans as 0 and 1). */
export function falseLiteral(dialect: WarehouseDialect): string {
  return dialect === 'sqlite' ? '0' : 'false'
}

/** A condition that holds when a boolean column is true. */
export function isTrue(dialect: WarehouseDialect, ref: string): string {
  return dialect === 'sqlite' ? `${ref} = 1` : ref
}

/**
 * The expression that reads a bookkeeping timestamp in the form `timestampOf` turns into ISO 8601:
 * epoch milliseconds where the store has a timestamp type, the stored text in SQLite (which keeps it
 * as ISO 8601 already).
 */
export function timestampExpr(dialect: WarehouseDialect, ref: string): string {
  switch (dialect) {
    case 'duckdb':
      return `epoch_ms(${ref})`
    case 'postgres':
      return `floor(extract(epoch from ${ref}) * 1000)::float8`
    case 'sqlite':
      return ref
  }
}

/** A timestamp read through `timestampExpr`, as ISO 8601. */
export function timestampOf(dialect: WarehouseDialect, raw: unknown): string {
  return dialect === 'sqlite' ? String(raw) : new Date(Number(raw)).toISOString()
}

/** A timestamp parameter as the bookkeeping tables compare it (ISO 8601 text in, the column's type out). */
export function timestampParam(dialect: WarehouseDialect, n: number): string {
  switch (dialect) {
    case 'duckdb':
      return `CAST(${param(dialect, n)} AS TIMESTAMP)`
    case 'postgres':
      return `${param(dialect, n)}::timestamptz`
    case 'sqlite':
      return param(dialect, n)
  }
}

/** The key column of `_eddy_meta` (D1 shipped it as `key`, the others as `name`; existing stores keep theirs). */
export function metaKey(dialect: WarehouseDialect): string {
  return dialect === 'sqlite' ? 'key' : 'name'
}
