import { canonicalKey } from '../shared/digest.ts'
import type { Mutation } from '../shared/protocol.ts'
import type { Schema, Table } from '../shared/schema.ts'
import type { LocalCache, LocalWrite } from './cache.ts'

/**
 * Re-applies pending outbox mutations over a cache that lost them. The outbox is the durable
 * record of acknowledged writes; the cache is flushed on a debounce, and a tab that does not own
 * the OPFS file starts with an empty in-memory cache. A mutation is re-applied when the cache holds
 * no row for its key or an older one (lower hlc); the row it writes is the cached row with the
 * mutation's values over it (upserts may be partial), or a tombstone for a delete.
 *
 * Returns the number of rows written, all in one `applyLocal` (one transaction).
 */
export async function replayOutbox(
  cache: LocalCache,
  schema: Schema,
  muts: readonly Mutation[],
): Promise<number> {
  // the newest pending mutation per key, by table
  const latest = new Map<Table, Map<string, Mutation>>()
  for (const m of muts) {
    const t = schema.tables.get(m.table)
    if (t === undefined) continue
    const byKey = latest.get(t) ?? new Map<string, Mutation>()
    latest.set(t, byKey)
    const k = canonicalKey(t, m.key)
    const prev = byKey.get(k)
    if (prev === undefined || m.hlc > prev.hlc) byKey.set(k, m)
  }
  const writes: LocalWrite[] = []
  for (const [t, byKey] of latest) {
    const cached = await cache.getRows(
      t,
      [...byKey.values()].map((m) => m.key),
    )
    for (const [k, m] of byKey) {
      const have = cached.get(k)
      if (have !== undefined && have.hlc >= m.hlc) continue
      const row =
        m.op === 'delete' ? null : { ...(have?.deleted === false ? have.values : {}), ...m.values, ...m.key }
      writes.push({ table: t, key: m.key, row, hlc: m.hlc })
    }
  }
  if (writes.length > 0) await cache.applyLocal(writes)
  return writes.length
}
