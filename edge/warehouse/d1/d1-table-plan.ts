import type { Column, Row, Table } from '../../../shared/schema.ts'
import { decodeValue, quoteIdent } from '../column-codec.ts'
import { writeColumnNames } from '../system-columns.ts'

/**
 * The D1 warehouse's SQL per table, built once, and how rows travel through it: as one JSON
 * parameter read with `json_each` (which avoids SQLite's bound-parameter limit, 100 on D1), split
 * into chunks when large, and read back packed in `json_array` values.
 */

/** Rows per JSON parameter, and its bytes: each statement's parameter stays well under D1's per-value size limit. */
const CHUNK_ROWS = 500
const CHUNK_BYTES = 512 * 1024
/** SQLite's default limit on function arguments is 127; stay clear of it in json_array. */
const JSON_ARRAY_ARGS = 100

/** A column as SELECT reads it: bigint as text so values past 2^53 survive the trip to JS. */
export function readExpr(col: Column, alias = ''): string {
  const ref = `${alias}${quoteIdent(col.name)}`
  return col.type === 'bigint' ? `CAST(${ref} AS TEXT)` : ref
}

/** `json_array(...)` over many expressions, nested in chunks so no call passes SQLite's argument limit. */
export function jsonArray(exprs: readonly string[]): string {
  const chunks: string[] = []
  for (let i = 0; i < exprs.length; i += JSON_ARRAY_ARGS)
    chunks.push(`json_array(${exprs.slice(i, i + JSON_ARRAY_ARGS).join(', ')})`)
  return `json_array(${chunks.join(', ')})`
}

/** Columns read back from a `jsonArray` of `readExpr`s, decoded to their wire form. */
export function decodeArray(columns: readonly Column[], text: unknown): Row {
  const raw = (JSON.parse(String(text)) as unknown[][]).flat()
  const row: Row = {}
  columns.forEach((c, i) => {
    row[c.name] = decodeValue(c, raw[i])
  })
  return row
}

/** Splits items into JSON parameters by count and by the size of their JSON text. */
export function chunked<T>(items: readonly T[], encode: (item: T) => unknown): string[] {
  const out: string[] = []
  let parts: string[] = []
  let bytes = 0
  for (const item of items) {
    const text = JSON.stringify(encode(item))
    if (parts.length > 0 && (parts.length >= CHUNK_ROWS || bytes + text.length > CHUNK_BYTES)) {
      out.push(`[${parts.join(',')}]`)
      parts = []
      bytes = 0
    }
    parts.push(text)
    bytes += text.length + 1
  }
  if (parts.length > 0) out.push(`[${parts.join(',')}]`)
  return out
}

/** The statements and SQL text of one table. */
export interface TablePlan {
  readonly table: Table
  /** Stores the rows of a JSON parameter (`?1`), numbering their versions after the counter. */
  readonly upsert: string
  /** Reads the stored rows whose keys a JSON parameter (`?1`) lists. */
  readonly readByKeys: string
  readonly merge: boolean
}

export function planTable(table: Table): TablePlan {
  const merge = table.conflict === 'merge'
  const cols = table.columns
  const names = writeColumnNames(table).map(quoteIdent)
  // Each JSON element is [col values..., hlc, deleted, clientId, colHlcs?]; its array index gives the
  // version offset from the counter as it stands when this statement runs inside the batch.
  const n = cols.length
  const extract = (i: number): string => `json_extract(j.value, '$[${i}]')`
  const selectExprs = [
    ...cols.map((_, i) => extract(i)),
    extract(n),
    extract(n + 1),
    `(SELECT value FROM _eddy_meta WHERE key = 'version') + j.key + 1`,
    extract(n + 2),
    ...(merge ? [extract(n + 3)] : []),
  ]
  const updates = writeColumnNames(table)
    .filter((c) => !table.primaryKey.includes(c))
    .map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`)
  // The lww guard in SQL repeats what `reconcile` decided. Merge results may keep the stored stamp (an
  // older write that raised a `max` column) and a manual resolution may store an older write, so those
  // tables store what they are given (the generation guard already rules out a row changed meanwhile).
  const guard = table.conflict === 'lww' ? ` WHERE excluded._hlc > ${quoteIdent(table.name)}._hlc` : ''
  const upsert = [
    `INSERT INTO ${quoteIdent(table.name)} (${names.join(', ')})`,
    `SELECT ${selectExprs.join(', ')} FROM json_each(?1) AS j WHERE true`,
    `ON CONFLICT (${table.primaryKey.map(quoteIdent).join(', ')}) DO UPDATE SET ${updates.join(', ')}${guard}`,
  ].join(' ')
  const on = table.primaryKey
    .map((k, i) => `t.${quoteIdent(k)} = json_extract(j.value, '$[${i}]')`)
    .join(' AND ')
  const readByKeys = [
    `SELECT ${jsonArray(cols.map((c) => readExpr(c, 't.')))} AS vals, t._hlc AS hlc, t._deleted AS deleted`,
    merge ? ', t._col_hlcs AS col_hlcs' : '',
    ` FROM json_each(?1) AS j JOIN ${quoteIdent(table.name)} AS t ON ${on}`,
  ].join('')
  return { table, upsert, readByKeys, merge }
}
