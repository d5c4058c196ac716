import type { Table } from '../../shared/schema.ts'
import { keyOf, storedRowOf } from './column-codec.ts'
import type { PulledChange } from './warehouse.ts'

/**
 * One page of `Warehouse.pull`, for every store: each table is read after the cursor in version
 * order (up to `limit + 1` rows, in one snapshot), then the tables' changes are merged by version
 * and cut at `limit`; what was cut says there is more.
 */

/** A row read with `selectList` as the change it is. */
export function pulledChangeOf(table: Table, raw: Readonly<Record<string, unknown>>): PulledChange {
  const s = storedRowOf(table, raw)
  return {
    table: table.name,
    key: keyOf(table, s.values),
    row: s.deleted ? null : s.values,
    hlc: s.hlc,
    version: BigInt(String(raw._version)),
  }
}

/** The tables' changes merged in version order and cut at `limit`. */
export function pullPage(
  changes: PulledChange[],
  limit: number,
): { changes: PulledChange[]; hasMore: boolean } {
  changes.sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0))
  return { changes: changes.slice(0, limit), hasMore: changes.length > limit }
}
