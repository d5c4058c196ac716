import type { Schema } from '../../shared/schema.ts'
import type { LocalCache, LocalWrite } from '../cache/cache.ts'
import type { Outbox } from '../outbox/outbox.ts'
import { replayOutbox } from '../outbox/outbox-replay.ts'

/** First and longest wait before retrying a failed repair of the cache from the outbox. */
const REPAIR_FIRST_MS = 500
const REPAIR_MAX_MS = 30_000

export interface CacheRepairDeps {
  schema: Schema
  cache: LocalCache
  outbox: Pick<Outbox, 'pendingMutations'>
  emitChange(tables: Iterable<string>, source: 'local' | 'remote'): void
  noteError(e: unknown): void
  isClosed(): boolean
}

/**
 * The cache's side of the write path: acknowledged writes are handed to the cache without
 * waiting, and when the cache refuses them the outbox (which still holds every pending write) is
 * replayed into it.
 */
export interface CacheRepair {
  /**
   * Hands acknowledged writes to the cache without waiting for them. If the cache refuses them
   * (full storage, a broken file), the error goes to `status().lastError` and the cache is rebuilt
   * from the outbox.
   */
  queue(writes: readonly LocalWrite[]): void
  /** Counts cache write failures and repairs: a read that spans one may have missed pending rows. */
  trouble(): number
  /** A repair is scheduled or running: until it is done, the outbox holds rows the cache lacks. */
  underway(): boolean
  /** Cache writes (and repairs) queued but not yet done. */
  pending(): Array<Promise<unknown>>
  /** Cancels a scheduled repair (the engine is closing). */
  stop(): void
}

export function createCacheRepair(d: CacheRepairDeps): CacheRepair {
  const applying = new Set<Promise<unknown>>()
  let repairTimer: ReturnType<typeof setTimeout> | undefined
  let repairing = false
  let cacheTrouble = 0

  /** Replays the pending outbox into the cache; retried with a growing delay until it succeeds. */
  function repairCache(delayMs = 0): void {
    if (d.isClosed() || repairTimer !== undefined) return
    repairTimer = setTimeout(() => {
      repairTimer = undefined
      repairing = true
      const run = (async () => {
        const muts = await d.outbox.pendingMutations()
        const n = await replayOutbox(d.cache, d.schema, muts)
        if (n > 0) d.emitChange(new Set(muts.map((m) => m.table)), 'local')
      })()
      applying.add(run)
      run
        .then(
          () => {
            repairing = false
            cacheTrouble += 1
          },
          (e: unknown) => {
            repairing = false
            d.noteError(e)
            repairCache(Math.min(Math.max(delayMs * 2, REPAIR_FIRST_MS), REPAIR_MAX_MS))
          },
        )
        .finally(() => applying.delete(run))
    }, delayMs)
  }

  return {
    queue(writes) {
      const applied = d.cache.applyLocal(writes).catch((e: unknown) => {
        cacheTrouble += 1
        d.noteError(e)
        repairCache()
      })
      applying.add(applied)
      void applied.finally(() => applying.delete(applied))
    },
    trouble: () => cacheTrouble,
    underway: () => repairTimer !== undefined || repairing,
    pending: () => [...applying],
    stop() {
      // The timer is left set: a closed engine schedules no repair anyway.
      if (repairTimer !== undefined) clearTimeout(repairTimer)
    },
  }
}
