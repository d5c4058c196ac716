/**
 * client/cache/: the local cache. cache.ts is the contract the engine drives; duckdb-cache.ts the
 * browser's implementation (DuckDB-WASM), wired from its parts (duckdb-session, duckdb-ddl,
 * cache-queue, duckdb-upsert, duckdb-local-writes, duckdb-remote-apply, duckdb-bulk-load,
 * duckdb-sql, arrow-page); persistence.ts keeps it between sessions (OPFS file, IndexedDB
 * snapshots in idb-snapshot.ts, one owner per file in cache-file-lock.ts, copies for other tabs in
 * cache-copy.ts); duckdb-bundle.ts starts DuckDB-WASM.
 */
import type { Change } from '../../shared/protocol.ts'
import type { Row, Table } from '../../shared/schema.ts'

/**
 * The local cache the sync engine drives. In the browser it is DuckDB-WASM in the worker
 * (`client/cache/duckdb-cache.ts`); each table from the schema gets `_hlc`, `_needs_sync`, `_synced_at`
 * and `_deleted` columns, so an app can ask `SELECT * FROM orders WHERE _needs_sync`.
 *
 * Deleted rows stay as tombstones (`_deleted = true`) until the delete is synced; queries that want
 * live rows filter on `NOT _deleted` (the client's `query` runs on views that do this).
 *
 * Calls take effect in the order they are made, not the order they resolve: a read called after
 * `applyLocal` was called sees its rows even if the write has not resolved yet. The engine relies
 * on it: it acknowledges a write once the outbox holds it and only then calls `applyLocal`, without
 * waiting, so the app's next read still sees the write.
 */
export interface LocalWrite {
  readonly table: Table
  readonly key: Row
  /** The full row after the write (all columns), or null for a delete. */
  readonly row: Row | null
  readonly hlc: string
}

export interface CachedRow {
  readonly values: Row
  readonly hlc: string
  readonly deleted: boolean
  readonly needsSync: boolean
}

export interface LocalCache {
  /** Creates every table of the schema (and the system columns) if missing. */
  init(tables: readonly Table[]): Promise<void>
  /** Current rows for the keys, by `canonicalKey`. */
  getRows(table: Table, keys: readonly Row[]): Promise<Map<string, CachedRow>>
  /**
   * Applies local writes in one cache transaction and marks them `_needs_sync`; writes of several
   * calls may share that transaction. Resolves once applied, rejects if the cache refused them.
   */
  applyLocal(writes: readonly LocalWrite[]): Promise<void>
  /** Undoes local writes whose outbox commit failed: restores each key's previous row. */
  revertLocal(previous: ReadonlyArray<{ table: Table; key: Row; row: CachedRow | undefined }>): Promise<void>
  /**
   * Applies pulled changes: a change replaces the local row when its hlc is greater or equal (an
   * equal hlc is the same write, already in the warehouse, so it is no longer pending), or when the
   * local row has no pending write. Returns the tables that changed.
   */
  applyRemote(changes: readonly Change[], tables: ReadonlyMap<string, Table>): Promise<Set<string>>
  /** Clears `_needs_sync` (and stamps `_synced_at`) for rows still at the given hlc; drops synced tombstones. */
  markSynced(table: Table, rows: ReadonlyArray<{ key: Row; hlc: string }>, syncedAt: string): Promise<void>
  /**
   * Bulk load of pulled rows (first hydration), as Arrow IPC (the edge's Arrow pull: the table's
   * columns plus `_hlc` and `_deleted`); never row by row. Same rule as `applyRemote`: a row
   * replaces the local one unless that has a pending write with a greater stamp; tombstones delete.
   * Returns the number of rows in the stream. The caller's buffer may be transferred (detached).
   * Unlike `applyRemote`, it does not make the rows durable: a first load is many pages, and the
   * caller runs `checkpoint()` once after the last one, before it saves a cursor past them.
   */
  loadArrow(table: Table, ipc: Uint8Array): Promise<number>
  /** Runs SQL on the cache; plain objects, BigInt only past 2^53. */
  query(sql: string, params?: readonly unknown[]): Promise<Row[]>
  /** (key, hlc) of every live row, for divergence digests. */
  digestEntries(table: Table): Promise<Array<{ keyText: string; hlc: string }>>
  /** Makes the cache durable where it is persisted (OPFS `CHECKPOINT`). */
  checkpoint(): Promise<void>
  close(): Promise<void>
}
