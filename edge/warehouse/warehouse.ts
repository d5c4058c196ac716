import type { Vector } from 'apache-arrow'
import type { ConflictRecord, SyncEvent } from '../../shared/protocol.ts'
import type { StoredRow } from '../../shared/reconcile.ts'
import type { Row, Schema, Table } from '../../shared/schema.ts'

/**
 * What the edge needs from a warehouse. Three adapters implement it (DuckDB, PostgreSQL, D1) and one
 * contract suite (`edge/testing/warehouse-contract.ts`) runs against each. The push algorithm itself lives
 * once, in `edge/push/apply-batch.ts`, on top of `write()`; adapters only store and fetch.
 *
 * Every synced table carries, beside its columns: `_hlc`, `_deleted`, `_version`, `_client_id`
 * (and `_col_hlcs` for merge tables). Bookkeeping: `_eddy_clients`, `_eddy_sync_events`,
 * `_eddy_conflicts`, `_eddy_meta` (the version counter).
 */
export type WarehouseKind = 'duckdb' | 'postgres' | 'd1'

/** A row to store, as `reconcile` produced it, with the client that wrote it. */
export interface RowWrite {
  readonly key: Row
  readonly row: StoredRow
  readonly clientId: string
}

export interface NewConflict {
  readonly table: string
  readonly key: Row
  readonly stored: Row | null
  readonly incoming: Row | null
  readonly hlc: string
  readonly clientId: string
  /** The pushing caller's tenant claim; absent for callers without one (or without auth). */
  readonly tenant?: string | undefined
}

export interface NewEvent {
  readonly clientId: string
  readonly receivedAt: string
  readonly mutations: number
  readonly applied: number
  readonly stale: number
  readonly duplicate: number
  readonly conflict: number
  readonly rejected: number
  readonly durationMs: number
  /** The pushing caller's tenant claim; absent for callers without one (or without auth). */
  readonly tenant?: string | undefined
}

/** Operations inside one write transaction. */
export interface WarehouseTx {
  setLastSeq(clientId: string, seq: number, owner: string | undefined): Promise<void>
  /**
   * The client's bookkeeping in one read: the highest seq processed (0 when unknown) and its owner
   * (the token `sub` that first pushed it), if recorded.
   */
  client(clientId: string): Promise<{ lastSeq: number; owner: string | undefined }>
  /**
   * Reads the bookkeeping of these clients in one read, so that `client` answers for them in this
   * transaction without a read of its own (a group commit of many pushes calls it first).
   * Optional: without it each `client` call reads.
   */
  preloadClients?(clientIds: readonly string[]): Promise<void>
  /** Current rows (tombstones included) for the given keys, by `canonicalKey`. One set-based read. */
  readRows(table: Table, keys: readonly Row[]): Promise<Map<string, StoredRow>>
  /**
   * Stores rows with one set-based upsert (a staging load, then one INSERT … ON CONFLICT), giving
   * each a fresh `_version` greater than every version committed before. Keys are unique per call.
   */
  writeRows(table: Table, rows: readonly RowWrite[]): Promise<void>
  /**
   * For lww tables: `writeRows` with the decision left to the store. Each row is written only when
   * no row is stored under its key or the stored row's `_hlc` is lower than the row's (a tombstone
   * included); the others leave the stored row untouched. Resolves, per row in order, whether it
   * was written. Keys are unique per call. Optional: without it a push reads every stored row
   * first and decides in JS.
   */
  writeNewer?(table: Table, rows: readonly RowWrite[]): Promise<boolean[]>
  addConflicts(conflicts: readonly NewConflict[]): Promise<void>
  /**
   * Removes a conflict record with this transaction, so a resolution's write and the record's
   * removal commit together or not at all. False when no record has this id (never had, or removed
   * already, by this transaction or by one committed before it).
   */
  deleteConflict(id: string): Promise<boolean>
  addEvent(event: NewEvent): Promise<void>
}

export interface PullRequest {
  readonly tables: readonly Table[]
  /** Return changes with `_version` greater than this. */
  readonly afterVersion: bigint
  readonly limit: number
  /** Restrict tables with a tenant column to this tenant. */
  readonly tenant?: string | undefined
}

export interface ColumnPullRequest {
  readonly table: Table
  readonly afterVersion: bigint
  readonly limit: number
  readonly tenant?: string | undefined
}

/** A value of one Arrow column, in the form `columnVector` stores (see `arrowValue`). */
export type ArrowCell = number | bigint | string | boolean | null

/**
 * One table's pulled changes column by column, in version order: what a warehouse that can read
 * columns hands the Arrow pull (`Warehouse.pullColumns`) without building a row object per change.
 * `values` holds every schema column, keyed by name, each as long as `hlc`; a tombstone's non-key
 * columns are null. Cells follow `arrowValue`: integer/double numbers, bigint and timestamp (epoch
 * ms) bigints, dates as days since the epoch, booleans, and text for the rest (json as its text).
 */
export interface ArrowColumns {
  /** Cells, or the column already built as a vector of its `arrowType` (what a column reader makes). */
  readonly values: ReadonlyMap<string, readonly ArrowCell[] | Vector>
  /** The stamps, as text or as a Utf8 vector; one per row (so its length is the page's). */
  readonly hlc: readonly string[] | Vector
  /** The tombstone flags, as booleans or as a Bool vector. */
  readonly deleted: readonly boolean[] | Vector
  /** The greatest stamp, when the reader found it as it read (else `columnsMaxHlc` finds it). */
  readonly maxHlc?: string | undefined
}

/** One table's changes after a version, oldest first, as Arrow-ready columns. */
export interface PulledColumns {
  readonly columns: ArrowColumns
  /** The `_version` of the last change, undefined when none. */
  readonly lastVersion: bigint | undefined
  readonly hasMore: boolean
}

export interface PulledChange {
  readonly table: string
  readonly key: Row
  /** null for a tombstone */
  readonly row: Row | null
  readonly hlc: string
  readonly version: bigint
}

export interface Warehouse {
  readonly kind: WarehouseKind
  readonly schema: Schema
  /**
   * Whether a write's work is done in another process (a database server), leaving this thread
   * free meanwhile: a large push is then checked while its first mutations are written (see
   * `streamOne` in apply-batch.ts). Absent: the push is checked first, then written.
   */
  readonly writesElsewhere?: boolean
  /** Creates missing tables and columns; never drops data. Idempotent. */
  migrate(): Promise<void>
  /**
   * Runs `fn` in one transaction, serialised with every other `write` on this warehouse (so versions
   * commit in order and a puller never skips one). If `fn` throws, nothing it did takes effect.
   */
  write<T>(fn: (tx: WarehouseTx) => Promise<T>): Promise<T>
  /** Changes after a version, oldest first; `limit + 1` may be read to tell `hasMore`. */
  pull(req: PullRequest): Promise<{ changes: PulledChange[]; hasMore: boolean }>
  /**
   * `pull` for one table, answered column by column for the Arrow bulk pull (`arrow-pull.ts`):
   * the same changes in the same order, without a row object per change. Optional: the Arrow pull
   * converts `pull`'s rows otherwise.
   */
  pullColumns?(req: ColumnPullRequest): Promise<PulledColumns>
  /**
   * The highest `_version` committed so far (every version at or below it is visible to `pull`).
   * Optional: without it the Arrow bulk pull answers no resume cursor.
   */
  highWater?(): Promise<bigint>
  /** (key, hlc) of every live row of a table, for divergence digests. */
  digestEntries(table: Table, tenant?: string): Promise<Array<{ key: Row; hlc: string }>>
  /**
   * The audit trail, newest first. With a tenant, only the events of pushes made by callers with
   * that tenant claim; without one, every event.
   */
  events(limit: number, tenant?: string): Promise<SyncEvent[]>
  /**
   * Conflict records, oldest first. Undefined: every record. A tenant: records of its tenant-scoped
   * rows (the key names the tenant) and of shared tables when that tenant's caller pushed them.
   * Null (a caller without a tenant): shared tables' records pushed by callers without one.
   */
  conflicts(tenant?: string | null): Promise<ConflictRecord[]>
  /** Throws `warehouse_unavailable` when the store cannot be reached. */
  health(): Promise<void>
  /** Drops audit rows past `keepEvents` or older than `maxAgeMs`, and tombstones older than `maxAgeMs`. */
  prune(opts: { keepEvents?: number | undefined; maxAgeMs?: number | undefined; now: number }): Promise<void>
  close(): Promise<void>
}
