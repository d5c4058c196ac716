import { valueText } from '../../shared/arrow-rows.ts'
import { canonicalKey } from '../../shared/digest.ts'
import { EddyError } from '../../shared/errors.ts'
import type { Column, Row, Table } from '../../shared/schema.ts'
import { sqlType } from '../../shared/sql-types.ts'
import type { CachedRow } from './cache.ts'

/** The bookkeeping columns every cached table carries after its own, in this order. */
export const SYSTEM_COLUMNS = ['_hlc', '_needs_sync', '_synced_at', '_deleted'] as const

/** Identifiers come from the checked schema (lower-case a-z0-9_), quoted anyway. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

export function literal(text: string | null): string {
  return text === null ? 'NULL' : `'${text.replaceAll("'", "''")}'`
}

/** The physical table (columns, system columns, tombstones) behind a schema table's view. */
export function physical(t: Table): string {
  return `_eddy_${t.name}`
}

/** A key's values as cast text, in primary-key order. */
export function keyTexts(t: Table, key: Row): Array<string | null> {
  return t.primaryKey.map((k) => valueText(key[k], false, t.columnsByName.get(k)?.type === 'timestamp'))
}

/** A row's values as cast text, in column order; a delete (`row` null) carries only its key. */
export function encodeRow(t: Table, row: Row | null, key: Row): Array<string | null> {
  return t.columns.map((c) =>
    valueText(
      (row ?? key)[c.name] ?? (c.primaryKey ? key[c.name] : null),
      c.type === 'json',
      c.type === 'timestamp',
    ),
  )
}

/** A text column of the relation `src` cast to the column's cache type. */
export function castCol(c: Column, src = 's'): string {
  return `CAST(${src}.${ident(c.name)} AS ${sqlType(c, 'cache')})`
}

/** `target`'s primary key equals `src`'s (text) key columns. */
export function keyMatch(t: Table, target: string, src = 's'): string {
  return t.primaryKey
    .map((k) => `${target}.${ident(k)} = ${castCol(t.columnsByName.get(k) as Column, src)}`)
    .join(' AND ')
}

/** A stored row (system columns included) as the cache hands it out. */
export function toCached(t: Table, r: Row): CachedRow {
  const values: Row = {}
  for (const c of t.columns) {
    const v = r[c.name] ?? null
    values[c.name] = c.type === 'json' && typeof v === 'string' ? JSON.parse(v) : v
  }
  return { values, hlc: String(r._hlc), deleted: r._deleted === true, needsSync: r._needs_sync === true }
}

/** The row count an INSERT, UPDATE or DELETE answers. */
export function affectedRows(res: readonly Row[]): number {
  return Number(res[0]?.Count ?? res[0]?.count ?? 0)
}

/** Groups in place: copying the list on every append made a large batch quadratic. */
export function appendTo<K, V>(groups: Map<K, V[]>, key: K, value: V): void {
  const list = groups.get(key)
  if (list === undefined) groups.set(key, [value])
  else list.push(value)
}

/**
 * One entry per key (DuckDB's upsert cannot touch one row twice): the one `wins` prefers, by
 * default the later. Keys keep the order they first appear in.
 */
export function oneByKey<T>(
  t: Table,
  items: readonly T[],
  keyOf: (x: T) => Row,
  wins: (a: T, b: T) => boolean = () => true,
): T[] {
  const byKey = new Map<string, T>()
  for (const x of items) {
    const k = canonicalKey(t, keyOf(x))
    const prev = byKey.get(k)
    if (prev === undefined || wins(x, prev)) byKey.set(k, x)
  }
  return [...byKey.values()]
}

/** DuckDB's refusal of a row whose primary key is already stored (raised by the INSERT or its COMMIT). */
export function isKeyConflict(e: unknown): boolean {
  const message = e instanceof Error ? e.message : String(e)
  return /duplicate key|violates primary key|constraint/i.test(message)
}

/** Wraps a DuckDB failure as an EddyError (`quota` when the storage is full). */
export function cacheError(e: unknown, what: string): EddyError {
  if (e instanceof EddyError) return e
  const message = e instanceof Error ? e.message : String(e)
  const quota = /quota|no space|disk is full|out of memory/i.test(message)
  return new EddyError(quota ? 'quota' : 'internal', `cache ${what}: ${message}`, { cause: e })
}
