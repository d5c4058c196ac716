import { EddyError } from '../../shared/errors.ts'
import type { Row, Schema, Table } from '../../shared/schema.ts'
import { validateWrite } from '../../shared/validators.ts'

/** One validated write of a put, delete or transaction, before it has a stamp. */
export interface PlannedWrite {
  table: Table
  op: 'upsert' | 'delete'
  key: Row
  values: Row | undefined
}

function splitRow(table: Table, row: Row): { key: Row; values: Row } {
  const key: Row = {}
  const values: Row = {}
  for (const [k, v] of Object.entries(row)) {
    if (table.primaryKey.includes(k)) key[k] = v
    else values[k] = v
  }
  return { key, values }
}

/**
 * Validates one write. A delete takes the primary-key columns of what it is given, so a row read
 * back from `query` (with its other columns) can be passed as is.
 */
export function plan(schema: Schema, name: string, op: 'upsert' | 'delete', row: Row): PlannedWrite {
  const table = schema.table(name)
  const { key, values } =
    op === 'upsert' ? splitRow(table, row) : { key: splitRow(table, row).key, values: undefined }
  const checked = validateWrite(table, op, key, values)
  const first = checked.errors[0]
  if (first !== undefined) throw new EddyError(first.code, first.message, { field: first.field })
  return { table, op, key: checked.key, values: op === 'upsert' ? checked.values : undefined }
}

/** The full row an upsert leaves over `base` (columns neither sets are null). */
export function overlay(table: Table, base: Row | undefined, key: Row, values: Row): Row {
  const row: Row = {}
  for (const c of table.columns) {
    const v = Object.hasOwn(key, c.name)
      ? key[c.name]
      : Object.hasOwn(values, c.name)
        ? values[c.name]
        : base !== undefined && Object.hasOwn(base, c.name)
          ? base[c.name]
          : null
    row[c.name] = v ?? null
  }
  return row
}

/** Whether an upsert names every column of its table (then no stored row is needed under it). */
export function coversAllColumns(p: PlannedWrite): boolean {
  const values = p.values ?? {}
  return p.table.columns.every((c) => Object.hasOwn(p.key, c.name) || Object.hasOwn(values, c.name))
}
