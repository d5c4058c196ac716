import type { ConflictRecord, SyncEvent } from '../../shared/protocol.ts'
import type { Schema } from '../../shared/schema.ts'
import { conflictInTenant } from '../conflicts/tenant.ts'
import { conflictFromRow, pushedByOf, syncEventFromRow } from './bookkeeping-rows.ts'
import { metaKey, param, timestampExpr, timestampOf, type WarehouseDialect } from './dialect.ts'

/**
 * The reads of the bookkeeping tables, written once for the three stores: each adapter hands in how
 * it runs a statement outside a write (`Query`), and the dialect.
 */
export type Query = (
  sql: string,
  params: ReadonlyArray<string | number | null>,
) => Promise<Array<Record<string, unknown>>>

/** `Warehouse.events`: newest first, optionally only the events of one tenant's pushes. */
export async function readEvents(
  query: Query,
  dialect: WarehouseDialect,
  limit: number,
  tenant: string | undefined,
): Promise<SyncEvent[]> {
  const scoped = tenant !== undefined
  const found = await query(
    `SELECT id, client_id, ${timestampExpr(dialect, 'received_at')} AS received_at, mutations, applied, stale,
       duplicate, conflict, rejected, duration_ms FROM _eddy_sync_events
     ${scoped ? `WHERE tenant = ${param(dialect, 1)}` : ''} ORDER BY id DESC LIMIT ${param(dialect, scoped ? 2 : 1)}`,
    scoped ? [tenant, limit] : [limit],
  )
  return found.map((r) => syncEventFromRow(r, timestampOf(dialect, r.received_at)))
}

/** `Warehouse.conflicts`: oldest first, scoped as `conflictInTenant` says. */
export async function readConflicts(
  query: Query,
  dialect: WarehouseDialect,
  schema: Schema,
  tenant: string | null | undefined,
): Promise<ConflictRecord[]> {
  const found = await query(
    `SELECT id, table_name, key_json, stored_json, incoming_json, hlc,
       ${timestampExpr(dialect, 'detected_at')} AS detected_at, tenant FROM _eddy_conflicts ORDER BY id`,
    [],
  )
  return found.flatMap((r) => {
    const c = conflictFromRow(r, timestampOf(dialect, r.detected_at))
    return conflictInTenant(schema, c, tenant, pushedByOf(r)) ? [c] : []
  })
}

/** The version counter: the highest `_version` committed (it commits with the rows it numbered). */
export async function readHighWater(query: Query, dialect: WarehouseDialect): Promise<bigint> {
  const r = await query(
    `SELECT CAST(value AS TEXT) AS value FROM _eddy_meta WHERE ${metaKey(dialect)} = 'version'`,
    [],
  )
  return BigInt(String(r[0]?.value ?? 0))
}
