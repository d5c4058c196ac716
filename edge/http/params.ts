/** Query parameters the routes share: a bounded page size, and a list of the schema's tables. */
import type { Schema, Table } from '../../shared/schema.ts'
import { fail } from './errors.ts'

/** A positive integer parameter: `fallback` when absent or empty, capped at `max`, 400 otherwise. */
export function intParam(text: string | undefined, name: string, fallback: number, max: number): number {
  if (text === undefined || text === '') return fallback
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1)
    throw fail('bad_request', `${name} must be a positive integer`)
  return Math.min(Number(text), max)
}

/** The tables a comma-separated list names (all of the schema's when absent or blank), 400 for an unknown one. */
export function tablesOf(schema: Schema, names: string | undefined): Table[] {
  if (names === undefined || names.trim() === '') return [...schema.tables.values()]
  const list = [...new Set(names.split(',').map((s) => s.trim()))]
  return list.map((n) => {
    const t = schema.tables.get(n)
    if (t === undefined) throw fail('unknown_table', `unknown table '${n}'`)
    return t
  })
}
