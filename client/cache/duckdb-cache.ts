import type { AsyncDuckDB } from '@duckdb/duckdb-wasm'
import { type ArrowTableLike, arrowToRows, textColumnsToIpc, valueText } from '../../shared/arrow-rows.ts'
import { canonicalKey } from '../../shared/digest.ts'
import { EddyError } from '../../shared/errors.ts'
import type { Row, Table } from '../../shared/schema.ts'
import type { CachedRow, LocalCache } from './cache.ts'
import { createCacheQueue } from './cache-queue.ts'
import { loadArrowPage } from './duckdb-bulk-load.ts'
import { createDuckDbDdl, signatureOf } from './duckdb-ddl.ts'
import { applyLocalBatch, revertLocalWrites } from './duckdb-local-writes.ts'
import { applyRemoteChanges, markRowsSynced } from './duckdb-remote-apply.ts'
import { createDuckDbSession, type DuckDbSession } from './duckdb-session.ts'
import {
  cacheError,
  castCol,
  ident,
  keyMatch,
  keyTexts,
  physical,
  SYSTEM_COLUMNS,
  toCached,
} from './duckdb-sql.ts'

/**
 * The browser's `LocalCache`: DuckDB-WASM.
 *
 * Layout: each schema table `t` is stored in `_eddy_t` (its columns plus `_hlc`, `_needs_sync`,
 * `_synced_at`, `_deleted`, primary key as declared), and `t` itself is a VIEW of the live rows
 * (`WHERE NOT _deleted`). So an app's `SELECT * FROM orders WHERE _needs_sync` reads live rows with
 * pending writes, and `_eddy_orders` still holds the tombstones of deletes not yet synced.
 *
 * Writes are set-based: each call is one transaction with one statement per table (a multi-row
 * VALUES list for small batches, an Arrow IPC staging table for large ones), never a statement per
 * row, because on OPFS every committed statement costs milliseconds. Every operation runs in a
 * queue on one connection, so transactions never interleave, and operations take effect in the
 * order they were called: a query called after `applyLocal` was called (not resolved) sees its rows.
 */
export interface DuckDbCacheOptions {
  db: AsyncDuckDB
  /** The database is a file (OPFS): `checkpoint()` runs `CHECKPOINT`. */
  persistent?: boolean
  /** Batches larger than this go through an Arrow staging table rather than a VALUES list (default `STAGING_THRESHOLD`). */
  stagingThreshold?: number
  /** Statements run when the cache connects (default `CACHE_SETTINGS`). */
  settings?: readonly string[]
  /** Local writes wait this long without a new one before their batch starts (default `LOCAL_BATCH_QUIET_MS`)... */
  localBatchQuietMs?: number
  /** ... and at most this long after the first (default `LOCAL_BATCH_MAX_MS`); any other operation starts them at once. */
  localBatchMaxMs?: number
}

export interface DuckDbCache extends LocalCache {
  /** The physical table (with tombstones) behind a schema table's view. */
  physicalName(table: Table): string
  /** Every stored row of a table, tombstones included, as all-text Arrow IPC (snapshots). */
  exportTable(table: Table): Promise<Uint8Array>
  /** Replaces a table's stored rows from `exportTable` output. */
  importTable(table: Table, ipc: Uint8Array): Promise<void>
}

/** Rows per write above which a batch is staged as an Arrow table rather than sent as a VALUES list. */
const STAGING_THRESHOLD = 256
/** Default quiet time and longest wait of a batch of local writes (see `cache-queue.ts`). */
const LOCAL_BATCH_QUIET_MS = 25
const LOCAL_BATCH_MAX_MS = 250

/**
 * DuckDB settings for the cache's database, applied when the cache connects (they are global to
 * the instance, and take effect for the row groups written from then on).
 *
 * FSST off: text columns are stored as dictionaries or plain strings instead. Every scan of an
 * FSST segment decompresses each string, which in single-threaded DuckDB-WASM was a large share of
 * a GROUP BY over a text column cast to a number (docs/benchmarks.md); the price is a larger file.
 */
export const CACHE_SETTINGS: readonly string[] = ["SET disabled_compression_methods = 'fsst'"]

/** The stored rows (tombstones included) of the given keys, by `canonicalKey`. */
async function readRows(s: DuckDbSession, t: Table, keys: readonly Row[]): Promise<Map<string, CachedRow>> {
  const out = new Map<string, CachedRow>()
  if (keys.length === 0) return out
  const src = await s.source(
    t.primaryKey,
    keys.map((k) => keyTexts(t, k)),
  )
  try {
    const rows = await s.run(
      `SELECT t.* FROM ${ident(physical(t))} AS t, ${src.from} WHERE ${keyMatch(t, 't')}`,
    )
    for (const r of rows) out.set(canonicalKey(t, r), toCached(t, r))
    return out
  } finally {
    await src.drop()
  }
}

export async function createDuckDbCache(opts: DuckDbCacheOptions): Promise<DuckDbCache> {
  const conn = await opts.db.connect()
  for (const sql of opts.settings ?? CACHE_SETTINGS) await conn.query(sql)
  const s = createDuckDbSession(conn, opts.stagingThreshold ?? STAGING_THRESHOLD)
  const ddl = createDuckDbDdl(s)
  const queue = createCacheQueue({
    quietMs: opts.localBatchQuietMs ?? LOCAL_BATCH_QUIET_MS,
    maxWaitMs: opts.localBatchMaxMs ?? LOCAL_BATCH_MAX_MS,
  })
  const closedError = (): EddyError => new EddyError('closed', 'the cache is closed')

  return {
    async init(tables) {
      const signature = signatureOf(tables)
      await queue.run(() => ddl.init(tables, signature))
    },

    physicalName: physical,

    getRows(t, keys) {
      return queue.run(() =>
        readRows(s, t, keys).catch((e: unknown) => Promise.reject(cacheError(e, 'read'))),
      )
    },

    applyLocal: (writes) => queue.local(writes, (batch) => applyLocalBatch(s, batch)),

    revertLocal: (previous) => queue.run(() => revertLocalWrites(s, previous)),

    applyRemote: (changes, tables) => queue.run(() => applyRemoteChanges(s, changes, tables)),

    markSynced: (t, rows, syncedAt) => queue.run(() => markRowsSynced(s, t, rows, syncedAt)),

    loadArrow: (t, ipc) => queue.run(() => loadArrowPage(s, ddl, t, ipc)),

    query(sql, params = []) {
      return queue.run(async () => {
        if (s.isClosed()) throw closedError()
        if (params.length === 0) return s.run(sql)
        const stmt = await conn.prepare(sql)
        try {
          return arrowToRows((await stmt.query(...params)) as unknown as ArrowTableLike)
        } finally {
          await stmt.close()
        }
      })
    },

    digestEntries(t) {
      return queue.run(async () => {
        const rows = await s.run(
          `SELECT ${[...t.primaryKey.map(ident), '_hlc'].join(', ')} FROM ${ident(physical(t))} WHERE NOT _deleted`,
        )
        return rows.map((r) => ({ keyText: canonicalKey(t, r), hlc: String(r._hlc) }))
      })
    },

    exportTable(t) {
      return queue.run(async () => {
        const rows = await s.run(`SELECT * FROM ${ident(physical(t))}`)
        const names = [...t.columns.map((c) => c.name), ...SYSTEM_COLUMNS]
        return textColumnsToIpc(
          names.map((n) => ({ name: n, values: rows.map((r) => valueText(r[n], false)) })),
        )
      })
    },

    importTable(t: Table, ipc: Uint8Array) {
      return queue.run(() =>
        s.inTransaction('restore', async () => {
          const target = ident(physical(t))
          const name = s.stageName()
          await conn.insertArrowFromIPCStream(ipc, { name, create: true })
          try {
            await conn.query(`DELETE FROM ${target}`)
            await conn.query(
              `INSERT INTO ${target} (${[...t.columns.map((c) => ident(c.name)), ...SYSTEM_COLUMNS].join(', ')})
               SELECT ${[
                 ...t.columns.map((c) => castCol(c)),
                 's._hlc',
                 'CAST(s._needs_sync AS BOOLEAN)',
                 'CAST(s._synced_at AS TIMESTAMP)',
                 'CAST(s._deleted AS BOOLEAN)',
               ].join(', ')} FROM ${ident(name)} AS s`,
            )
          } finally {
            await conn.query(`DROP TABLE IF EXISTS ${ident(name)}`)
          }
        }),
      )
    },

    checkpoint() {
      return queue.run(async () => {
        if (s.isClosed() || !opts.persistent) return
        await conn.query('CHECKPOINT').catch((e: unknown) => Promise.reject(cacheError(e, 'checkpoint')))
      })
    },

    close() {
      return queue.run(async () => {
        if (s.isClosed()) return
        if (opts.persistent) await conn.query('CHECKPOINT').catch(() => undefined)
        await s.close()
      })
    },
  }
}
