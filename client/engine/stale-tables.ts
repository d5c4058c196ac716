import type { Schema } from '../../shared/schema.ts'
import type { SyncEngine } from '../sync/sync-engine.ts'
import { retryable } from '../sync/transport.ts'
import { mentionedTables } from './live-queries.ts'

export interface StaleTablesDeps {
  schema: Schema
  sync: Pick<SyncEngine, 'push' | 'pull'>
  online(): boolean
  noteError(e: unknown): void
}

/**
 * The invalidate-on-write tables written since their last reload: a read that mentions one pushes
 * and pulls first, so it sees the warehouse's answer to the write.
 */
export interface StaleTables {
  add(table: string): void
  delete(table: string): void
  clear(): void
  /** Pushes and pulls first when the SQL mentions a stale table; offline, the cache answers as is. */
  reloadFor(sql: string): Promise<void>
}

export function createStaleTables(d: StaleTablesDeps): StaleTables {
  const stale = new Set<string>()
  return {
    add: (table) => {
      stale.add(table)
    },
    delete: (table) => {
      stale.delete(table)
    },
    clear: () => stale.clear(),
    async reloadFor(sql) {
      const hit = mentionedTables(d.schema, sql).filter((t) => stale.has(t))
      if (hit.length === 0 || !d.online()) return
      try {
        await d.sync.push(new Set(hit))
        await d.sync.pull()
        for (const t of hit) stale.delete(t)
      } catch (e) {
        // Unreachable: serve what the cache has; the table stays stale for the next read.
        if (!retryable(e)) throw e
        d.noteError(e)
      }
    },
  }
}
