import type { NewMutation } from '../../shared/protocol.ts'
import type { Row, Schema, Table } from '../../shared/schema.ts'
import type { LocalCache } from '../cache/cache.ts'

/**
 * Finds and drops cache rows marked `_needs_sync` that no pending outbox mutation accounts for.
 *
 * A local write reaches the cache only after its outbox commit, but a pushed write leaves the
 * outbox before the cache's `markSynced` is flushed: when the tab dies between the two, the
 * restarted cache shows a pending write the outbox no longer holds, which would never be pushed,
 * so the cache would disagree with the outbox and the warehouse for good. (A cache flushed by an
 * older version that wrote the cache before the outbox looks the same.) The warehouse holds the
 * truth for these keys: the caller drops them and pulls from scratch.
 *
 * Reads each table's stored rows (tombstones included) from the DuckDB cache's layout: schema table
 * `t` is stored in `_eddy_t` (see `duckdb-cache.ts`). `pending` must hold every unsettled mutation,
 * parked hybrid writes included (`Outbox.pendingMutations`). Returns the number of rows dropped.
 */
export async function dropOrphanWrites(
  cache: LocalCache,
  schema: Schema,
  pending: readonly NewMutation[],
): Promise<number> {
  const stamps = new Set(pending.map((m) => `${m.table}\u0000${m.hlc}`))
  const orphans: Array<{ table: Table; key: Row; row: undefined }> = []
  for (const t of schema.tables.values()) {
    const cols = t.primaryKey.map((c) => `"${c}"`).join(', ')
    const rows = await cache.query(`SELECT ${cols}, _hlc FROM "_eddy_${t.name}" WHERE _needs_sync`)
    for (const r of rows) {
      if (stamps.has(`${t.name}\u0000${String(r._hlc)}`)) continue
      const key: Row = {}
      for (const c of t.primaryKey) key[c] = r[c]
      orphans.push({ table: t, key, row: undefined })
    }
  }
  if (orphans.length > 0) await cache.revertLocal(orphans)
  return orphans.length
}
