import { unreachable } from './errors.ts'
import type { Column, Row, Table } from './schema.ts'
import { type FieldError, setOwn } from './validators.ts'

/** A row as the warehouse holds it: its values (key included), the stamp of the write that made it, and whether it is a tombstone. */
export interface StoredRow {
  readonly values: Row
  readonly hlc: string
  readonly deleted: boolean
  /** Merge tables only: the stamp of the last write to each column, so per-column lww is order-free. */
  readonly columnHlcs?: Readonly<Record<string, string>>
}

/** A validated, canonical write (see `validateWrite`). */
export interface IncomingWrite {
  readonly op: 'upsert' | 'delete'
  readonly key: Row
  readonly values?: Row
  readonly hlc: string
}

export type Outcome =
  | { readonly status: 'applied'; readonly row: StoredRow }
  | { readonly status: 'stale' }
  | { readonly status: 'conflict'; readonly stored: StoredRow }
  | { readonly status: 'rejected'; readonly error: FieldError }

export const CONCAT_SEPARATOR = ' | '

const withValue = setOwn

/** The full row an upsert produces over `base` (null for every column neither sets). */
function overlay(table: Table, base: Row | undefined, w: IncomingWrite): Row {
  const row: Row = {}
  for (const c of table.columns) {
    const v = Object.hasOwn(w.key, c.name)
      ? w.key[c.name]
      : w.values !== undefined && Object.hasOwn(w.values, c.name)
        ? w.values[c.name]
        : base !== undefined && Object.hasOwn(base, c.name)
          ? base[c.name]
          : null
    withValue(row, c.name, v ?? null)
  }
  return row
}

function missingRequired(table: Table, row: Row): FieldError | undefined {
  for (const c of table.columns) {
    if (c.required && (row[c.name] === null || row[c.name] === undefined)) {
      return { code: 'invalid_value', field: c.name, message: `${c.name} is required` }
    }
  }
  return undefined
}

/** Orders two non-null values of a column: numbers and decimals numerically, the rest as strings. */
export function compareValues(col: Column, a: unknown, b: unknown): number {
  if (col.type === 'decimal' || col.type === 'bigint') {
    const [ai, af = ''] = String(a).split('.')
    const [bi, bf = ''] = String(b).split('.')
    const scale = Math.max(af.length, bf.length)
    const x = BigInt(`${ai}${af.padEnd(scale, '0')}`.replace(/^-?$/, '0'))
    const y = BigInt(`${bi}${bf.padEnd(scale, '0')}`.replace(/^-?$/, '0'))
    // a negative value with a fraction: "-1.5" → "-15", which BigInt reads correctly
    return x < y ? -1 : x > y ? 1 : 0
  }
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0
  const s = String(a)
  const t = String(b)
  return s < t ? -1 : s > t ? 1 : 0
}

/** Combines one column under its merge rule. `incomingNewer` is true when the write's stamp beats the column's. */
export function mergeColumn(
  col: Column,
  stored: unknown,
  incoming: unknown,
  incomingNewer: boolean,
): unknown {
  switch (col.merge) {
    case 'lww':
      return incomingNewer ? incoming : stored
    case 'max':
    case 'min': {
      if (stored === null || stored === undefined) return incoming
      if (incoming === null || incoming === undefined) return stored
      const c = compareValues(col, incoming, stored)
      return (col.merge === 'max' ? c > 0 : c < 0) ? incoming : stored
    }
    case 'concat': {
      if (stored === null || stored === undefined || stored === '') return incoming
      if (incoming === null || incoming === undefined || incoming === '') return stored
      return `${String(stored)}${CONCAT_SEPARATOR}${String(incoming)}`
    }
    default:
      return unreachable(col.merge)
  }
}

function sameValues(table: Table, a: Row, b: Row): boolean {
  return table.columns.every((c) => JSON.stringify(a[c.name] ?? null) === JSON.stringify(b[c.name] ?? null))
}

function lww(table: Table, stored: StoredRow | undefined, w: IncomingWrite): Outcome {
  if (stored !== undefined && w.hlc <= stored.hlc) return { status: 'stale' }
  return write(table, stored, w)
}

function write(table: Table, stored: StoredRow | undefined, w: IncomingWrite): Outcome {
  const base = stored === undefined || stored.deleted ? undefined : stored.values
  if (w.op === 'delete') {
    return {
      status: 'applied',
      row: { values: overlay(table, base, { ...w, values: {} }), hlc: w.hlc, deleted: true },
    }
  }
  const row = overlay(table, base, w)
  const missing = missingRequired(table, row)
  if (missing) return { status: 'rejected', error: missing }
  return { status: 'applied', row: { values: row, hlc: w.hlc, deleted: false } }
}

function merge(table: Table, stored: StoredRow | undefined, w: IncomingWrite): Outcome {
  // Deletes, writes onto tombstones and first writes follow lww at row level.
  if (stored === undefined || stored.deleted || w.op === 'delete') {
    const out = lww(table, stored, w)
    if (out.status !== 'applied' || out.row.deleted) return out
    return { status: 'applied', row: { ...out.row, columnHlcs: columnStamps(table, w) } }
  }
  const values = w.values ?? {}
  const row: Row = {}
  const stamps: Record<string, string> = {}
  let changed = false
  for (const c of table.columns) {
    const old = stored.values[c.name] ?? null
    // A column no write has set yet has the empty stamp, which every real stamp beats.
    const colHlc = stored.columnHlcs === undefined ? stored.hlc : (stored.columnHlcs[c.name] ?? '')
    if (c.primaryKey || !Object.hasOwn(values, c.name)) {
      withValue(row, c.name, old)
      withValue(stamps, c.name, colHlc)
      continue
    }
    const newer = w.hlc > colHlc
    const v = mergeColumn(c, old, values[c.name] ?? null, newer)
    withValue(row, c.name, v)
    withValue(stamps, c.name, newer ? w.hlc : colHlc)
    if (JSON.stringify(v) !== JSON.stringify(old) || newer) changed = true
  }
  if (!changed && w.hlc <= stored.hlc) return { status: 'stale' }
  const missing = missingRequired(table, row)
  if (missing) return { status: 'rejected', error: missing }
  const hlc = w.hlc > stored.hlc ? w.hlc : stored.hlc
  return { status: 'applied', row: { values: row, hlc, deleted: false, columnHlcs: stamps } }
}

/** Stamps for a row a write creates: only the columns it sets. */
function columnStamps(table: Table, w: IncomingWrite): Record<string, string> {
  const stamps: Record<string, string> = {}
  for (const c of table.columns) {
    if (Object.hasOwn(w.key, c.name) || (w.values !== undefined && Object.hasOwn(w.values, c.name)))
      withValue(stamps, c.name, w.hlc)
  }
  return stamps
}

function manual(table: Table, stored: StoredRow | undefined, w: IncomingWrite): Outcome {
  if (stored === undefined || w.hlc > stored.hlc) return write(table, stored, w)
  if (w.hlc === stored.hlc) return { status: 'stale' }
  // An older write: if it would change nothing, it is merely stale; otherwise a person decides.
  if (w.op === 'delete') return stored.deleted ? { status: 'stale' } : { status: 'conflict', stored }
  if (stored.deleted) return { status: 'conflict', stored }
  const would = overlay(table, stored.values, w)
  return sameValues(table, would, stored.values) ? { status: 'stale' } : { status: 'conflict', stored }
}

/**
 * The outcome of one write against the stored row under the table's conflict strategy. Pure: the
 * warehouse adapters apply exactly what it returns, and their contract suite compares against it.
 * - `lww`: applies only when the write's hlc is greater than the row's.
 * - `merge`: per-column rules; `max`, `min` and per-column `lww` are order-free, `concat` appends in arrival order.
 * - `manual`: an older write that would change the row is a `conflict`; the row stays as it is.
 * A delete always leaves a tombstone, so a late older upsert loses.
 */
export function reconcile(table: Table, stored: StoredRow | undefined, w: IncomingWrite): Outcome {
  switch (table.conflict) {
    case 'lww':
      return lww(table, stored, w)
    case 'merge':
      return merge(table, stored, w)
    case 'manual':
      return manual(table, stored, w)
    default:
      return unreachable(table.conflict)
  }
}
