import type { Schema, Table } from '../../shared/schema.ts'
import { sqlType } from '../../shared/sql-types.ts'
import { quoteIdent } from './column-codec.ts'
import { metaKey, typeOf, type WarehouseDialect } from './dialect.ts'
import { systemColumns } from './system-columns.ts'

/**
 * The DDL every store gets, once for the three dialects: the bookkeeping tables, one table per
 * schema table, and the columns added since (a grown schema, bookkeeping columns of later
 * releases). A migration only ever creates what is missing and adds columns: it never drops or
 * alters one, so a store written by any earlier release keeps its data and keeps working.
 */

/** An auto-numbered id column and what it needs first (DuckDB numbers from a sequence). */
function idColumn(dialect: WarehouseDialect, sequence: string): { before: string[]; column: string } {
  switch (dialect) {
    case 'duckdb':
      return {
        before: [`CREATE SEQUENCE IF NOT EXISTS ${sequence}`],
        column: `id BIGINT PRIMARY KEY DEFAULT nextval('${sequence}')`,
      }
    case 'postgres':
      return { before: [], column: 'id BIGSERIAL PRIMARY KEY' }
    case 'sqlite':
      return { before: [], column: 'id INTEGER PRIMARY KEY AUTOINCREMENT' }
  }
}

/**
 * The bookkeeping tables: `_eddy_meta` (the `version` counter), `_eddy_clients` (each client's
 * highest seq and owner), `_eddy_sync_events` (the audit trail), `_eddy_conflicts` (manual
 * conflicts awaiting resolution). Both the events and the conflicts keep the pushing caller's
 * tenant (null: none), for a tenant admin's view.
 */
export function bookkeepingDdl(dialect: WarehouseDialect): string[] {
  const text = typeOf('text', dialect)
  const bigint = typeOf('bigint', dialect)
  const int = typeOf('integer', dialect)
  const at = typeOf('timestamp', dialect)
  const events = idColumn(dialect, '_eddy_event_ids')
  const conflicts = idColumn(dialect, '_eddy_conflict_ids')
  const key = metaKey(dialect)
  return [
    `CREATE TABLE IF NOT EXISTS _eddy_meta (${key} ${text} PRIMARY KEY, value ${bigint} NOT NULL)`,
    `INSERT INTO _eddy_meta (${key}, value) VALUES ('version', 0) ON CONFLICT DO NOTHING`,
    `CREATE TABLE IF NOT EXISTS _eddy_clients (client_id ${text} PRIMARY KEY, last_seq ${bigint} NOT NULL,
       owner ${text})`,
    ...events.before,
    `CREATE TABLE IF NOT EXISTS _eddy_sync_events (${events.column}, client_id ${text} NOT NULL,
       received_at ${at} NOT NULL, mutations ${int} NOT NULL, applied ${int} NOT NULL, stale ${int} NOT NULL,
       duplicate ${int} NOT NULL, conflict ${int} NOT NULL, rejected ${int} NOT NULL,
       duration_ms ${typeOf('double', dialect)} NOT NULL, tenant ${text})`,
    ...conflicts.before,
    `CREATE TABLE IF NOT EXISTS _eddy_conflicts (${conflicts.column}, table_name ${text} NOT NULL,
       key_json ${text} NOT NULL, stored_json ${text}, incoming_json ${text}, hlc ${text} NOT NULL,
       client_id ${text} NOT NULL, detected_at ${at} NOT NULL, tenant ${text})`,
  ]
}

/** Columns added to bookkeeping tables after their first release: [table, column, type]. */
function bookkeepingAdded(dialect: WarehouseDialect): Array<readonly [string, string, string]> {
  const text = typeOf('text', dialect)
  return [
    ['_eddy_sync_events', 'tenant', text],
    ['_eddy_conflicts', 'tenant', text],
  ]
}

/** A synced table as it is created: declared columns, system columns, the primary key. */
export function createTableSql(table: Table, dialect: WarehouseDialect): string {
  const cols = [
    ...table.columns.map((c) => `${quoteIdent(c.name)} ${sqlType(c, dialect)}`),
    ...systemColumns(table, dialect).map((c) => `${c.name} ${c.create}`),
  ]
  return `CREATE TABLE IF NOT EXISTS ${quoteIdent(table.name)} (${cols.join(', ')},
    PRIMARY KEY (${table.primaryKey.map(quoteIdent).join(', ')}))`
}

/** The tables whose columns `addedColumnsSql` needs to know: the schema's and the grown bookkeeping ones. */
export function migratedTables(schema: Schema, dialect: WarehouseDialect): string[] {
  return [
    ...[...schema.tables.values()].map((t) => t.name),
    ...new Set(bookkeepingAdded(dialect).map(([t]) => t)),
  ]
}

/**
 * The ALTER TABLE statements that add what the store lacks, given the columns each of
 * `migratedTables` has (looked up first: PostgreSQL's ALTER locks the table even when the column
 * exists). Empty when the store is up to date.
 */
export function addedColumnsSql(
  schema: Schema,
  dialect: WarehouseDialect,
  existing: (table: string) => ReadonlySet<string>,
): string[] {
  const out: string[] = []
  for (const [name, column, type] of bookkeepingAdded(dialect)) {
    if (!existing(name).has(column)) out.push(`ALTER TABLE ${name} ADD COLUMN ${column} ${type}`)
  }
  for (const table of schema.tables.values()) {
    const have = existing(table.name)
    const add = (def: string): void => {
      out.push(`ALTER TABLE ${quoteIdent(table.name)} ADD COLUMN ${def}`)
    }
    for (const c of table.columns) if (!have.has(c.name)) add(`${quoteIdent(c.name)} ${sqlType(c, dialect)}`)
    for (const c of systemColumns(table, dialect)) if (!have.has(c.name)) add(`${c.name} ${c.add}`)
  }
  return out
}

/** Existing columns as `addedColumnsSql` wants them, from (table, column) rows. */
export function columnsByTable(
  rows: ReadonlyArray<Record<string, unknown>>,
): (table: string) => ReadonlySet<string> {
  const by = new Map<string, Set<string>>()
  for (const r of rows) {
    const t = String(r.table_name)
    let set = by.get(t)
    if (set === undefined) {
      set = new Set()
      by.set(t, set)
    }
    set.add(String(r.column_name))
  }
  return (table) => by.get(table) ?? new Set()
}
