import type { Row, Schema } from '../../shared/schema.ts'
import type { LocalCache } from '../cache/cache.ts'
import type { ChangeEvent } from '../types.ts'

/** Schema tables the SQL names (as whole words): what a live query or a lazy reload depends on. */
export function mentionedTables(schema: Schema, sql: string): string[] {
  const words = new Set(sql.toLowerCase().match(/[a-z_][a-z0-9_]*/g) ?? [])
  return [...schema.tables.keys()].filter((t) => words.has(t))
}

export interface LiveQueriesDeps {
  schema: Schema
  cache: Pick<LocalCache, 'query'>
  noteError(e: unknown): void
}

/** The engine's 'change' events, and the live queries that rerun on them. */
export interface LiveQueries {
  /** One 'change' event per table, to every listener. */
  emitChange(tables: Iterable<string>, source: 'local' | 'remote'): void
  onChange(listener: (e: ChangeEvent) => void): () => void
  /**
   * Runs the SQL now and again on every change of a table it mentions. Reruns never overlap: changes
   * during a run make one more run after it.
   */
  subscribe(sql: string, params: unknown[], cb: (rows: Row[]) => void): () => void
}

export function createLiveQueries(d: LiveQueriesDeps): LiveQueries {
  const changeListeners = new Set<(e: ChangeEvent) => void>()
  return {
    emitChange(tables, source) {
      for (const table of tables) for (const l of [...changeListeners]) l({ table, source })
    },
    onChange(l) {
      changeListeners.add(l)
      return () => {
        changeListeners.delete(l)
      }
    },
    subscribe(sql, params, cb) {
      const tables = new Set(mentionedTables(d.schema, sql))
      let running = false
      let dirty = false
      let stopped = false
      const rerun = async (): Promise<void> => {
        if (running) {
          dirty = true
          return
        }
        running = true
        try {
          do {
            dirty = false
            const rows = await d.cache.query(sql, params)
            if (!stopped) cb(rows)
          } while (dirty && !stopped)
        } catch (e) {
          d.noteError(e)
        } finally {
          running = false
        }
      }
      const l = (e: ChangeEvent): void => {
        if (tables.has(e.table)) void rerun()
      }
      changeListeners.add(l)
      void rerun()
      return () => {
        stopped = true
        changeListeners.delete(l)
      }
    },
  }
}
