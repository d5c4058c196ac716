import type { Column, ColumnType } from './schema.ts'

/**
 * The SQL type each store gives a schema column. One table, so the cache and the three warehouses
 * cannot drift apart column by column.
 *
 * - `duckdb`, `postgres`: the warehouse adapters. Timestamps are UTC instants (DuckDB's TIMESTAMP
 *   holds them naive in UTC; PostgreSQL's TIMESTAMPTZ is zone-aware). JSON, not JSONB: the text
 *   reads back exactly as written (JSONB reorders keys), so an unchanged value compares unchanged.
 * - `sqlite` (D1): SQLite's storage classes; what is not a number is its canonical text.
 * - `cache` (DuckDB-WASM in the browser): uuid and json as VARCHAR, the canonical text the wire
 *   carries, so the cache needs no extension and hands the app back exactly what it wrote.
 */
export type SqlDialect = 'duckdb' | 'postgres' | 'sqlite' | 'cache'

const TYPES: Record<Exclude<ColumnType, 'decimal'>, Record<SqlDialect, string>> = {
  integer: { duckdb: 'INTEGER', postgres: 'INTEGER', sqlite: 'INTEGER', cache: 'INTEGER' },
  bigint: { duckdb: 'BIGINT', postgres: 'BIGINT', sqlite: 'INTEGER', cache: 'BIGINT' },
  double: { duckdb: 'DOUBLE', postgres: 'DOUBLE PRECISION', sqlite: 'REAL', cache: 'DOUBLE' },
  text: { duckdb: 'VARCHAR', postgres: 'TEXT', sqlite: 'TEXT', cache: 'VARCHAR' },
  boolean: { duckdb: 'BOOLEAN', postgres: 'BOOLEAN', sqlite: 'INTEGER', cache: 'BOOLEAN' },
  date: { duckdb: 'DATE', postgres: 'DATE', sqlite: 'TEXT', cache: 'DATE' },
  timestamp: { duckdb: 'TIMESTAMP', postgres: 'TIMESTAMPTZ', sqlite: 'TEXT', cache: 'TIMESTAMP' },
  uuid: { duckdb: 'UUID', postgres: 'UUID', sqlite: 'TEXT', cache: 'VARCHAR' },
  json: { duckdb: 'JSON', postgres: 'JSON', sqlite: 'TEXT', cache: 'VARCHAR' },
}

/** The SQL type of a column in one store. */
export function sqlType(col: Pick<Column, 'type' | 'precision' | 'scale'>, dialect: SqlDialect): string {
  if (col.type !== 'decimal') return TYPES[col.type][dialect]
  switch (dialect) {
    case 'postgres':
      return `NUMERIC(${col.precision},${col.scale})`
    case 'sqlite':
      // exact decimals as canonical text: SQLite's REAL would round them
      return 'TEXT'
    default:
      return `DECIMAL(${col.precision},${col.scale})`
  }
}
