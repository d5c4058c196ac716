import type { StoredRow } from '../../shared/reconcile.ts'
import type { Column, Row, Table } from '../../shared/schema.ts'

/**
 * How schema columns travel between the wire's canonical values (what `validateWrite` produces) and
 * SQL, for the three adapters. DuckDB and PostgreSQL stage values as text and cast them in SQL
 * (`encodeValue`); D1 takes them as cells of one JSON parameter (`encodeJsonValue`). Every adapter
 * reads them back through `decodeValue`, so a stored row reads back exactly as the canonical row
 * that was written: the contract suite compares them with plain equality.
 */

/** Quotes an identifier. Identifiers only ever come from the schema (already restricted to [a-z0-9_]). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** A canonical value as the text that SQL casts back to the column's type (null stays null). */
export function encodeValue(col: Column, v: unknown): string | null {
  if (v === null || v === undefined) return null
  if (col.type === 'json') return JSON.stringify(v)
  if (col.type === 'boolean') return v === true ? 'true' : 'false'
  return String(v)
}

/**
 * A canonical value as a cell of a JSON parameter, for a store that takes rows as one JSON text and
 * stores what `json_extract` yields (D1): numbers stay numbers, booleans become 0/1, json its text.
 */
export function encodeJsonValue(col: Column, v: unknown): unknown {
  if (v === null || v === undefined) return null
  if (typeof v === 'bigint') return v.toString()
  if (col.type === 'json') return JSON.stringify(v)
  if (col.type === 'boolean') return v === true ? 1 : 0
  return v
}

/**
 * A value read from SQL (native or text) back to its canonical wire form. Timestamps are read as
 * epoch milliseconds (see `selectExpr`), or as the canonical text a store without a timestamp
 * type keeps (D1); booleans as SQL booleans, their text, or SQLite's 0/1.
 */
export function decodeValue(col: Column, raw: unknown): unknown {
  if (raw === null || raw === undefined) return null
  switch (col.type) {
    case 'integer':
    case 'double':
      return Number(raw)
    case 'bigint': {
      const s = String(raw)
      const n = Number(s)
      return Number.isSafeInteger(n) ? n : s
    }
    case 'boolean':
      return raw === true || raw === 'true' || raw === 't' || raw === 1 || raw === '1'
    case 'timestamp':
      return typeof raw === 'string' && Number.isNaN(Number(raw)) ? raw : new Date(Number(raw)).toISOString()
    case 'json':
      return typeof raw === 'string' ? JSON.parse(raw) : raw
    case 'decimal':
    case 'text':
    case 'date':
    case 'uuid':
      return String(raw)
  }
}

/** The SELECT expression that reads a column in a form `decodeValue` understands. */
export function selectExpr(col: Column, dialect: 'duckdb' | 'postgres', alias = ''): string {
  const ref = `${alias === '' ? '' : `${alias}.`}${quoteIdent(col.name)}`
  switch (col.type) {
    case 'integer':
    case 'double':
    case 'boolean':
      return ref
    case 'timestamp':
      return dialect === 'duckdb' ? `epoch_ms(${ref})` : `floor(extract(epoch from ${ref}) * 1000)::float8`
    default:
      return dialect === 'duckdb' ? `CAST(${ref} AS VARCHAR)` : `${ref}::text`
  }
}

/** The key part of a row. */
export function keyOf(table: Table, row: Row): Row {
  const key: Row = {}
  for (const k of table.primaryKey) key[k] = row[k] ?? null
  return key
}

/** Decodes the declared columns of a raw result row (by column name). */
export function decodeRow(table: Table, raw: Readonly<Record<string, unknown>>): Row {
  const row: Row = {}
  for (const c of table.columns) row[c.name] = decodeValue(c, raw[c.name])
  return row
}

/** The columns a read selects: declared columns (for `decodeRow`), then the system columns. */
export function selectList(table: Table, dialect: 'duckdb' | 'postgres', alias: string): string {
  const cols = table.columns.map((c) => `${selectExpr(c, dialect, alias)} AS ${quoteIdent(c.name)}`)
  cols.push(`${alias}._hlc AS _hlc`, `${alias}._deleted AS _deleted`, `${alias}._version AS _version`)
  if (table.conflict === 'merge') cols.push(`${alias}._col_hlcs AS _col_hlcs`)
  return cols.join(', ')
}

/** A raw result row (from `selectList`) as the StoredRow that `reconcile` works on. */
export function storedRowOf(table: Table, raw: Readonly<Record<string, unknown>>): StoredRow {
  const values = decodeRow(table, raw)
  const base = { values, hlc: String(raw._hlc), deleted: raw._deleted === true }
  if (table.conflict === 'merge' && typeof raw._col_hlcs === 'string') {
    return { ...base, columnHlcs: JSON.parse(raw._col_hlcs) as Record<string, string> }
  }
  return base
}
