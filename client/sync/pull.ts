import { DEFAULT_LIMITS } from '../../shared/protocol.ts'
import { hydrate } from './arrow-first-load.ts'
import type { SyncDeps } from './sync-deps.ts'

/**
 * Changes asked for per pull request: the edge's maximum page. Each page costs a round trip, a
 * cache transaction and a cursor write, so fewer, larger pages hydrate faster.
 */
export const PULL_LIMIT = DEFAULT_LIMITS.maxPullLimit

/**
 * Pulls every table until `hasMore` is false, from the cache's cursor (a first load, with no
 * cursor, goes through the Arrow bulk pull when `bulkLoad` allows); returns the number of
 * changes applied. One pull at a time per engine: a pull asked for while one runs starts after it,
 * since two overlapping pulls would fetch the same pages twice.
 */
export function createPuller(d: SyncDeps): () => Promise<number> {
  const allTables = [...d.schema.tables.keys()]
  let pulling: Promise<number> | undefined

  async function pullOnce(): Promise<number> {
    d.status.update({ syncing: true })
    try {
      let applied = 0
      let cursor = await d.cursor.get()
      if (cursor === undefined && d.bulkLoad) {
        const loaded = await hydrate(d, allTables)
        if (loaded !== undefined) {
          applied += loaded.rows
          cursor = loaded.cursor
          await d.cursor.set(cursor)
        }
      }
      for (;;) {
        const page = await d.transport.pull({ tables: allTables, cursor, limit: PULL_LIMIT })
        for (const c of page.changes) if (c.hlc !== '') d.hlc.receive(c.hlc)
        const changed = await d.cache.applyRemote(page.changes, d.schema.tables)
        applied += page.changes.length
        cursor = page.cursor
        await d.cursor.set(cursor)
        d.emitChange(changed, 'remote')
        if (!page.hasMore) break
      }
      const last = d.hlc.last()
      if (last !== undefined) await d.meta.saveHlc(last)
      return applied
    } finally {
      d.status.update({ syncing: false })
      d.status.clearProgress()
    }
  }

  function pull(): Promise<number> {
    if (pulling !== undefined) return pulling.then(() => pull())
    const p = pullOnce().finally(() => {
      if (pulling === p) pulling = undefined
    })
    pulling = p
    return p
  }
  return pull
}
