import { canonicalKey } from '../../shared/digest.ts'
import { must } from '../../shared/errors.ts'
import type { NewMutation } from '../../shared/protocol.ts'
import type { Row, Schema, Table } from '../../shared/schema.ts'
import type { CachedRow, LocalCache, LocalWrite } from '../cache/cache.ts'

/**
 * Re-applies pending outbox mutations over a cache that lost them. The outbox is the durable
 * record of acknowledged writes; the cache receives them after the acknowledgement, is flushed on
 * a debounce, may refuse a write (full storage), and a tab that does not own the OPFS file starts
 * with an empty in-memory cache. For each key, the mutations stamped after the cached row (all of
 * them when the cache holds none) are laid over it in stamp order: an upsert's values over the row
 * so far (upserts may be partial), a delete leaving a tombstone.
 *
 * Returns the number of rows written, all in one `applyLocal` (one transaction).
 */
export async function replayOutbox(
  cache: LocalCache,
  schema: Schema,
  muts: readonly NewMutation[],
): Promise<number> {
  // every pending mutation per key, by table
  const byTable = new Map<Table, Map<string, NewMutation[]>>()
  for (const m of muts) {
    const t = schema.tables.get(m.table)
    if (t === undefined) continue
    let byKey = byTable.get(t)
    if (byKey === undefined) {
      byKey = new Map()
      byTable.set(t, byKey)
    }
    const k = canonicalKey(t, m.key)
    const list = byKey.get(k)
    if (list === undefined) byKey.set(k, [m])
    else list.push(m)
  }
  const writes: LocalWrite[] = []
  for (const [t, byKey] of byTable) {
    const cached = await cache.getRows(
      t,
      [...byKey.values()].map((list) => must(list[0], 'a key with no mutation').key),
    )
    for (const [k, list] of byKey) {
      const have = cached.get(k)
      const last = withPending(have, list)
      if (last === undefined || last === have) continue
      writes.push({
        table: t,
        key: must(list[0], 'a key with no mutation').key,
        row: last.deleted ? null : last.values,
        hlc: last.hlc,
      })
    }
  }
  if (writes.length > 0) await cache.applyLocal(writes)
  return writes.length
}

/**
 * A key's cached row with its pending mutations stamped after it laid over it in stamp order: an
 * upsert's values over the row so far, a delete leaving a tombstone. `have` itself when none is newer.
 */
export function withPending(
  have: CachedRow | undefined,
  muts: readonly NewMutation[],
): CachedRow | undefined {
  const newer = muts.filter((m) => have === undefined || m.hlc > have.hlc).sort(byStamp)
  const last = newer.at(-1)
  if (last === undefined) return have
  let row: Row | null = have === undefined || have.deleted ? null : have.values
  for (const m of newer) row = m.op === 'delete' ? null : { ...(row ?? {}), ...m.values, ...m.key }
  return { values: row ?? { ...last.key }, hlc: last.hlc, deleted: row === null, needsSync: true }
}

function byStamp(a: NewMutation, b: NewMutation): number {
  return a.hlc < b.hlc ? -1 : a.hlc > b.hlc ? 1 : 0
}
