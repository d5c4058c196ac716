import { createStore, del, get, set, type UseStore } from 'idb-keyval'
import type { Table } from '../../shared/schema.ts'
import type { DuckDbCache } from './duckdb-cache.ts'

/**
 * The persistence fallback for browsers without OPFS: the in-memory DuckDB cache is saved to
 * IndexedDB as one Arrow IPC snapshot per table (tombstones and `_needs_sync` included) and loaded
 * back when the worker starts. Snapshots are taken on a debounce, not per write: the outbox is the
 * durable record of pending writes, and the worker re-applies it over whatever the snapshot held.
 */
export interface SnapshotStore {
  save(cache: DuckDbCache, tables: readonly Table[]): Promise<void>
  /** Loads every table the snapshot holds; false when there is none (or it was for other columns). */
  restore(cache: DuckDbCache, tables: readonly Table[]): Promise<boolean>
  clear(): Promise<void>
}

interface Snapshot {
  /** The columns each table had when saved: a snapshot of another shape is not loaded. */
  shape: string
  tables: Record<string, Uint8Array>
}

/** The tables and columns a snapshot or copy was taken with: one of another shape is not loaded. */
export function shapeOf(tables: readonly Table[]): string {
  return JSON.stringify(
    tables.map((t) => [t.name, t.columns.map((c) => [c.name, c.type, c.precision, c.scale])]),
  )
}

export function openSnapshotStore(name: string): SnapshotStore {
  const store: UseStore = createStore(`${name}-cache-snapshot`, 'snapshot')
  return {
    async save(cache, tables) {
      const out: Snapshot = { shape: shapeOf(tables), tables: {} }
      for (const t of tables) out.tables[t.name] = await cache.exportTable(t)
      await set('snapshot', out, store)
    },
    async restore(cache, tables) {
      const snap = await get<Snapshot>('snapshot', store)
      if (snap === undefined || snap.shape !== shapeOf(tables)) return false
      for (const t of tables) {
        const ipc = snap.tables[t.name]
        if (ipc !== undefined) await cache.importTable(t, ipc)
      }
      return true
    },
    clear: () => del('snapshot', store),
  }
}
