import type { ConflictRecord } from '../shared/protocol.ts'
import type { Row, Schema, Table } from '../shared/schema.ts'

/**
 * Tenant scoping: a table that names a `tenantColumn` is split by the caller's `tenant` claim.
 * Tables without one are shared by every tenant.
 */

/** The tenant a row belongs to, or undefined when the table is not scoped or the row names none. */
export function rowTenant(table: Table, row: Row | null | undefined): string | undefined {
  const col = table.tenantColumn
  if (col === undefined || row === null || row === undefined) return undefined
  const v = row[col]
  return v === null || v === undefined ? undefined : String(v)
}

/**
 * Whether a conflict record is visible to the tenant (every record when no tenant is given). The
 * key decides: the tenant column is part of every scoped table's key. A record whose key names no
 * tenant, or whose table the schema no longer declares, is shown to no tenant (only to an admin
 * without one).
 */
export function conflictInTenant(schema: Schema, c: ConflictRecord, tenant: string | undefined): boolean {
  if (tenant === undefined) return true
  const table = schema.tables.get(c.table)
  if (table === undefined) return false
  if (table.tenantColumn === undefined) return true
  return rowTenant(table, c.key) === tenant
}
