import type { Column } from '../shared/schema.ts'
import { formatCell } from './format.ts'

/**
 * Converts a form field's text to the value a write carries, by column type. Text that does not
 * parse is passed on unchanged, so the client's validators report it (`invalid_value` with the
 * field) exactly as they would for any other caller. An empty field is null.
 */
export function parseInput(col: Column, text: string): unknown {
  const t = text.trim()
  if (t === '') return null
  switch (col.type) {
    case 'integer':
      return /^-?\d+$/.test(t) ? Number(t) : t
    case 'bigint':
      return /^-?\d+$/.test(t) && Number.isSafeInteger(Number(t)) ? Number(t) : t
    case 'double':
      return t !== '' && Number.isFinite(Number(t)) ? Number(t) : t
    case 'boolean':
      return t === 'true' ? true : t === 'false' ? false : t
    default:
      return text
  }
}

/** The text a field shows for a stored value. */
export function inputText(v: unknown): string {
  return formatCell(v)
}

/** The allowed values when a column has an enum validator. */
export function enumValues(col: Column): readonly string[] | undefined {
  for (const v of col.validators) if (v.type === 'enum') return v.allowedValues
  return undefined
}

/** Timestamps the demo stamps itself: `updated_at` on every save, `created_at` when a row is created. */
export function autoStamp(col: Column, creating: boolean): boolean {
  return col.type === 'timestamp' && (col.name === 'updated_at' || (creating && col.name === 'created_at'))
}
