import type { ConflictRecord } from '../../shared/protocol.ts'
import type { Row, Schema, Table } from '../../shared/schema.ts'

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
 * Whether a conflict record is visible to a caller's tenant scope (see `Warehouse.conflicts`):
 * undefined sees every record. On a tenant-scoped table the key decides (the tenant column is part
 * of the key); on a shared table, the tenant of the push that lost (`pushedBy`), since its
 * `incoming` values are that caller's. A record of a table the schema no longer declares, or whose
 * key names no tenant, is shown only to the unscoped view.
 */
export function conflictInTenant(
  schema: Schema,
  c: ConflictRecord,
  tenant: string | null | undefined,
  pushedBy: string | undefined,
): boolean {
  if (tenant === undefined) return true
  const table = schema.tables.get(c.table)
  if (table === undefined) return false
  if (table.tenantColumn === undefined) return pushedBy === (tenant ?? undefined)
  return tenant !== null && rowTenant(table, c.key) === tenant
}
