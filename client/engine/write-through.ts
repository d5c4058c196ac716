import { canonicalKey } from '../../shared/digest.ts'
import { EddyError, toEddyError } from '../../shared/errors.ts'
import type { NewMutation, PushResult } from '../../shared/protocol.ts'
import type { Row, Schema } from '../../shared/schema.ts'
import type { LocalCache } from '../cache/cache.ts'
import type { SyncEngine } from '../sync/sync-engine.ts'
import { retryable } from '../sync/transport.ts'
import type { StatusStore } from './status.ts'
import type { PlannedWrite } from './write-plan.ts'

export interface WriteThroughDeps {
  schema: Schema
  cache: Pick<LocalCache, 'applyRemote' | 'getRows'>
  sync: Pick<SyncEngine, 'pushDirect' | 'pull'>
  status: StatusStore
  online(): boolean
  emitChange(tables: Iterable<string>, source: 'local' | 'remote'): void
}

/**
 * A write-through group: pushed at once, nothing local until the edge answers; the cache then
 * takes the warehouse's rows. Any refusal (rejected, conflict) fails the whole call. Returns the
 * row each upsert leaves in the warehouse (null for deletes).
 */
export async function writeThrough(
  d: WriteThroughDeps,
  planned: readonly PlannedWrite[],
  muts: readonly NewMutation[],
  fulls: ReadonlyArray<Row | null>,
): Promise<Array<Row | null>> {
  const { cache, schema, status, sync } = d
  if (!d.online()) throw new EddyError('offline', 'offline: a write-through write needs the edge')
  let results: PushResult[]
  try {
    results = await sync.pushDirect(muts)
  } catch (e) {
    if (retryable(e)) {
      const err = toEddyError(e)
      throw new EddyError('offline', `the edge is unreachable: ${err.message}`, { cause: e })
    }
    throw e
  }
  const bad = results.find((r) => r.status === 'rejected')
  if (bad !== undefined) {
    const err = bad.error ?? { code: 'rejected', message: 'rejected by the edge' }
    throw new EddyError(
      'rejected',
      `${err.code}: ${err.message}`,
      err.field === undefined ? {} : { field: err.field },
    )
  }
  if (results.some((r) => r.status === 'conflict')) {
    status.update({
      conflicts: status.get().conflicts + results.filter((r) => r.status === 'conflict').length,
    })
    throw new EddyError(
      'rejected',
      'conflict: the write was recorded for manual review, the row is unchanged',
    )
  }
  if (results.some((r) => r.status === 'duplicate'))
    throw new EddyError('internal', 'the edge answered duplicate to a fresh write-through seq')
  const out: Array<Row | null> = []
  const changes = planned.map((p, i) => {
    const r = results[i]
    const row = p.op === 'delete' ? null : (r?.row ?? fulls[i] ?? null)
    out.push(row)
    return { table: p.table.name, key: p.key, row, hlc: muts[i]?.hlc ?? '' }
  })
  const applied = changes.filter((_, i) => results[i]?.status === 'applied')
  const changed = await cache.applyRemote(applied, schema.tables)
  d.emitChange(changed, 'local')
  if (results.some((r) => r.status === 'stale')) {
    // A newer write holds the row: fetch the winner and answer with it.
    await sync.pull()
    for (const [i, p] of planned.entries()) {
      if (results[i]?.status !== 'stale' || p.op === 'delete') continue
      const got = (await cache.getRows(p.table, [p.key])).get(canonicalKey(p.table, p.key))
      out[i] = got === undefined || got.deleted ? null : got.values
    }
  }
  return out
}
