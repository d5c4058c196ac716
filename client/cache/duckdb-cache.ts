import type { AsyncDuckDB, AsyncDuckDBConnection } from '@duckdb/duckdb-wasm'
import { type ArrowTableLike, arrowToRows, textColumnsToIpc, valueText } from '../../shared/arrow-rows.ts'
import { canonicalKey } from '../../shared/digest.ts'
import { EddyError, must } from '../../shared/errors.ts'
import type { Change } from '../../shared/protocol.ts'
import type { Column, Row, Table } from '../../shared/schema.ts'
import { createSerialQueue } from '../../shared/serial-queue.ts'
import { sqlType } from '../../shared/sql-types.ts'
import { physicalPage } from './arrow-page.ts'
import type { CachedRow, LocalCache, LocalWrite } from './cache.ts'

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
  /** Batches larger than this go through an Arrow staging table rather than a VALUES list. */
  stagingThreshold?: number
  /** Statements run when the cache connects (default `CACHE_SETTINGS`). */
  settings?: readonly string[]
  /** Local writes wait this long without a new one before their batch starts (default 25 ms)... */
  localBatchQuietMs?: number
  /** ... and at most this long after the first (default 250 ms); any other operation starts them at once. */
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

const SYSTEM_COLUMNS = ['_hlc', '_needs_sync', '_synced_at', '_deleted'] as const

/**
 * DuckDB settings for the cache's database, applied when the cache connects (they are global to
 * the instance, and take effect for the row groups written from then on).
 *
 * FSST off: text columns are stored as dictionaries or plain strings instead. Every scan of an
 * FSST segment decompresses each string, which in single-threaded DuckDB-WASM was nearly half of a
 * GROUP BY over a text column cast to a number (1M orders: 116 -> 64 ms, measured side by side in
 * Chromium, docs/benchmarks.md); the price is a larger file (about +50% for uuid-keyed rows).
 */
export const CACHE_SETTINGS: readonly string[] = ["SET disabled_compression_methods = 'fsst'"]

/** Identifiers come from the checked schema (lower-case a-z0-9_), quoted anyway. */
function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

function literal(text: string | null): string {
  return text === null ? 'NULL' : `'${text.replaceAll("'", "''")}'`
}

/** A key's values as cast text, in primary-key order. */
function keyTexts(t: Table, key: Row): Array<string | null> {
  return t.primaryKey.map((k) => valueText(key[k], false, t.columnsByName.get(k)?.type === 'timestamp'))
}

function physical(t: Table): string {
  return `_eddy_${t.name}`
}

/** Groups in place: copying the list on every append made a 10,000-row batch quadratic. */
function appendTo<K, V>(groups: Map<K, V[]>, key: K, value: V): void {
  const list = groups.get(key)
  if (list === undefined) groups.set(key, [value])
  else list.push(value)
}

/** DuckDB's refusal of a row whose primary key is already stored (raised by the INSERT or its COMMIT). */
function isKeyConflict(e: unknown): boolean {
  const message = e instanceof Error ? e.message : String(e)
  return /duplicate key|violates primary key|constraint/i.test(message)
}

/** Wraps a DuckDB failure as an EddyError (`quota` when the storage is full). */
function cacheError(e: unknown, what: string): EddyError {
  if (e instanceof EddyError) return e
  const message = e instanceof Error ? e.message : String(e)
  const quota = /quota|no space|disk is full|out of memory/i.test(message)
  return new EddyError(quota ? 'quota' : 'internal', `cache ${what}: ${message}`, { cause: e })
}

export async function createDuckDbCache(opts: DuckDbCacheOptions): Promise<DuckDbCache> {
  const { db } = opts
  const threshold = opts.stagingThreshold ?? 256
  const conn: AsyncDuckDBConnection = await db.connect()
  for (const sql of opts.settings ?? CACHE_SETTINGS) await conn.query(sql)
  const serialQueue = createSerialQueue()
  const quietMs = opts.localBatchQuietMs ?? 25
  const maxWaitMs = opts.localBatchMaxMs ?? 250
  /**
   * Local writes waiting at the end of the queue: a later `applyLocal` joins them (one transaction,
   * one upsert per table) as long as nothing else was queued after them. The batch starts after
   * `quietMs` without a new write (at most `maxWaitMs` after its first), or at once when any other
   * operation is queued behind it: a read never waits for the quiet time, and a stream of
   * acknowledged writes costs a few cache transactions rather than one each, which would compete
   * with the outbox commits (CPU, disk) that the acknowledgements wait for.
   */
  let openBatch: { writes: LocalWrite[]; done: Promise<void>; go(): void; touch(): void } | undefined
  const queue = <T>(task: () => Promise<T>): Promise<T> => {
    openBatch?.go()
    openBatch = undefined
    return serialQueue(task)
  }
  let stageSeq = 0
  let closed = false

  const run = async (sql: string): Promise<Row[]> =>
    arrowToRows((await conn.query(sql)) as unknown as ArrowTableLike)

  /**
   * The columns of a table or view, or undefined when nothing has that name. A `LIMIT 0` binds that
   * one relation; `information_schema.columns` (and `duckdb_columns()`) bind every view in the
   * database, DuckDB's own catalog views included: 150–250 ms on each cold start in DuckDB-WASM.
   */
  async function columnsOf(name: string): Promise<string[] | undefined> {
    try {
      const res = (await conn.query(`SELECT * FROM ${ident(name)} LIMIT 0`)) as unknown as {
        schema: { fields: ReadonlyArray<{ name: string }> }
      }
      return res.schema.fields.map((f) => f.name)
    } catch (e) {
      if (/does not exist/i.test(e instanceof Error ? e.message : String(e))) return undefined
      throw e
    }
  }

  async function inTransaction<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (closed) throw new EddyError('closed', 'the cache is closed')
    await conn.query('BEGIN TRANSACTION')
    try {
      const out = await fn()
      await conn.query('COMMIT')
      return out
    } catch (e) {
      await conn.query('ROLLBACK').catch(() => undefined)
      throw cacheError(e, what)
    }
  }

  /**
   * A relation of text columns named `names` holding `rows` (already encoded), usable in FROM.
   * Large batches are staged as an Arrow table; the returned `drop` removes it.
   */
  async function source(
    names: readonly string[],
    rows: ReadonlyArray<ReadonlyArray<string | null>>,
  ): Promise<{ from: string; drop: () => Promise<void> }> {
    if (rows.length <= threshold) {
      const values = rows.map((r) => `(${r.map(literal).join(', ')})`).join(',\n')
      return { from: `(VALUES ${values}) AS s(${names.map(ident).join(', ')})`, drop: async () => {} }
    }
    const name = `_eddy_stage_${++stageSeq}`
    const ipc = textColumnsToIpc(names.map((n, i) => ({ name: n, values: rows.map((r) => r[i] ?? null) })))
    await conn.insertArrowFromIPCStream(ipc, { name, create: true })
    return {
      from: `${ident(name)} AS s`,
      drop: async () => {
        await conn.query(`DROP TABLE IF EXISTS ${ident(name)}`)
      },
    }
  }

  const castCol = (c: Column, src = 's'): string => `CAST(${src}.${ident(c.name)} AS ${sqlType(c, 'cache')})`
  const keyMatch = (t: Table, target: string, src = 's'): string =>
    t.primaryKey
      .map((k) => `${target}.${ident(k)} = ${castCol(t.columnsByName.get(k) as Column, src)}`)
      .join(' AND ')

  function encodeRow(t: Table, row: Row | null, key: Row): Array<string | null> {
    return t.columns.map((c) =>
      valueText(
        (row ?? key)[c.name] ?? (c.primaryKey ? key[c.name] : null),
        c.type === 'json',
        c.type === 'timestamp',
      ),
    )
  }

  /** Latest entry per key, in input order otherwise (DuckDB's upsert cannot touch one row twice). */
  function foldByKey<T>(
    t: Table,
    items: readonly T[],
    keyOf: (x: T) => Row,
    wins: (a: T, b: T) => boolean,
  ): T[] {
    const byKey = new Map<string, T>()
    for (const x of items) {
      const k = canonicalKey(t, keyOf(x))
      const prev = byKey.get(k)
      if (prev === undefined || wins(x, prev)) byKey.set(k, x)
    }
    return [...byKey.values()]
  }

  /**
   * One upsert of encoded rows into a table's physical table. `remote` decides the rule: a pulled
   * row replaces the stored one when the stored row has no pending write, or when the pulled hlc is
   * greater or equal: an equal hlc is the same write, now in the warehouse (another tab of the
   * profile pushed it), so the row is no longer pending here either.
   */
  async function upsert(
    t: Table,
    rows: ReadonlyArray<{ values: Array<string | null>; hlc: string; deleted: boolean }>,
    mode: 'local' | 'remote' | 'restore',
    needsSync?: readonly boolean[],
  ): Promise<number> {
    if (rows.length === 0) return 0
    const names = [...t.columns.map((c) => c.name), '_hlc', '_deleted', '_needs_sync']
    const encoded = rows.map((r, i) => [
      ...r.values,
      r.hlc,
      String(r.deleted),
      String(mode === 'local' ? true : mode === 'remote' ? false : (needsSync?.[i] ?? false)),
    ])
    const src = await source(names, encoded)
    try {
      const target = ident(physical(t))
      const cols = [...t.columns.map((c) => ident(c.name)), '_hlc', '_deleted', '_needs_sync', '_synced_at']
      const select = [
        ...t.columns.map((c) => castCol(c)),
        's._hlc',
        'CAST(s._deleted AS BOOLEAN)',
        'CAST(s._needs_sync AS BOOLEAN)',
        mode === 'remote' ? 'CAST(now() AS TIMESTAMP)' : 'NULL',
      ]
      const sets = [
        ...t.columns.filter((c) => !c.primaryKey).map((c) => `${ident(c.name)} = excluded.${ident(c.name)}`),
        '_hlc = excluded._hlc',
        '_deleted = excluded._deleted',
        '_needs_sync = excluded._needs_sync',
        mode === 'local' ? `_synced_at = ${target}._synced_at` : '_synced_at = excluded._synced_at',
      ]
      const where =
        mode === 'remote' ? ` WHERE excluded._hlc >= ${target}._hlc OR NOT ${target}._needs_sync` : ''
      const res = await run(
        `INSERT INTO ${target} (${cols.join(', ')}) SELECT ${select.join(', ')} FROM ${src.from}
         ON CONFLICT DO UPDATE SET ${sets.join(', ')}${where}`,
      )
      const count = res[0]?.Count ?? res[0]?.count ?? 0
      return typeof count === 'bigint' ? Number(count) : Number(count)
    } finally {
      await src.drop()
    }
  }

  async function dropSyncedTombstones(t: Table): Promise<void> {
    await conn.query(`DELETE FROM ${ident(physical(t))} WHERE _deleted AND NOT _needs_sync`)
  }

  function toCached(t: Table, r: Row): CachedRow {
    const values: Row = {}
    for (const c of t.columns) {
      const v = r[c.name] ?? null
      values[c.name] = c.type === 'json' && typeof v === 'string' ? JSON.parse(v) : v
    }
    return { values, hlc: String(r._hlc), deleted: r._deleted === true, needsSync: r._needs_sync === true }
  }

  /** The tables the last `init` made sure of (a repeated init of the same schema does nothing). */
  let initialized: string | undefined
  /** Each physical table's columns in the table's order (read once; `init` may add columns). */
  const physicalColumns = new Map<string, readonly string[]>()

  /**
   * Creates what is missing (tables, columns added to the schema, views) and nothing else: one
   * catalog read, and DDL only when the catalog differs. On an OPFS file a start that rewrote the
   * views every time paid a catalog write before its first query (cold start).
   */
  async function init(tables: readonly Table[]): Promise<void> {
    const signature = JSON.stringify(
      tables.map((t) => [t.name, t.primaryKey, t.columns.map((c) => [c.name, sqlType(c, 'cache')])]),
    )
    await queue(async () => {
      if (closed) throw new EddyError('closed', 'the cache is closed')
      if (signature === initialized) return
      const names = tables.flatMap((t) => [physical(t), t.name])
      const found = new Map<string, string[]>()
      for (const name of names) {
        const columns = await columnsOf(name)
        if (columns !== undefined) found.set(name, columns)
      }
      const ddl: string[] = []
      for (const t of tables) {
        const target = ident(physical(t))
        const have = found.get(physical(t))
        if (have === undefined) {
          const defs = t.columns.map((c) => `${ident(c.name)} ${sqlType(c, 'cache')}`)
          ddl.push(
            `CREATE TABLE IF NOT EXISTS ${target} (${defs.join(', ')},
              _hlc VARCHAR NOT NULL, _needs_sync BOOLEAN NOT NULL DEFAULT false,
              _synced_at TIMESTAMP, _deleted BOOLEAN NOT NULL DEFAULT false,
              PRIMARY KEY (${t.primaryKey.map(ident).join(', ')}))`,
          )
        } else {
          // a column added to the schema since the cache was created
          for (const c of t.columns) {
            if (!have.includes(c.name))
              ddl.push(`ALTER TABLE ${target} ADD COLUMN ${ident(c.name)} ${sqlType(c, 'cache')}`)
          }
        }
        const viewColumns = [...t.columns.map((c) => c.name), ...SYSTEM_COLUMNS]
        if ((found.get(t.name) ?? []).join('\u0000') !== viewColumns.join('\u0000')) {
          ddl.push(
            `CREATE OR REPLACE VIEW ${ident(t.name)} AS SELECT ${viewColumns.map(ident).join(', ')} FROM ${target} WHERE NOT _deleted`,
          )
        }
      }
      physicalColumns.clear()
      if (ddl.length > 0) {
        await inTransaction('init', async () => {
          for (const sql of ddl) await conn.query(sql)
        })
      }
      initialized = signature
    })
  }

  async function getRowsNow(t: Table, keys: readonly Row[]): Promise<Map<string, CachedRow>> {
    const out = new Map<string, CachedRow>()
    if (keys.length === 0) return out
    const src = await source(
      t.primaryKey,
      keys.map((k) => keyTexts(t, k)),
    )
    try {
      const rows = await run(
        `SELECT t.* FROM ${ident(physical(t))} AS t, ${src.from} WHERE ${keyMatch(t, 't')}`,
      )
      for (const r of rows) out.set(canonicalKey(t, r), toCached(t, r))
      return out
    } finally {
      await src.drop()
    }
  }

  /**
   * Upserts a staged Arrow page into a table's physical table (inside the caller's transaction):
   * the path of a page that meets stored keys. A pulled row never overwrites a pending local write
   * with a greater stamp, and its tombstones delete.
   */
  async function upsertStaged(t: Table, name: string): Promise<number> {
    const target = ident(physical(t))
    const stagedCols = new Set(await columnsOf(name))
    if (!stagedCols.has('_hlc'))
      throw new EddyError('protocol', `Arrow load of '${t.name}' has no _hlc column`)
    const cols = t.columns.filter((c) => stagedCols.has(c.name))
    const deleted = stagedCols.has('_deleted') ? 'CAST(s._deleted AS BOOLEAN)' : 'false'
    const res = await run(
      `INSERT INTO ${target} (${[...cols.map((c) => ident(c.name)), '_hlc', '_deleted', '_needs_sync', '_synced_at'].join(', ')})
       SELECT ${[...cols.map((c) => castCol(c)), 'CAST(s._hlc AS VARCHAR)', deleted, 'false', 'CAST(now() AS TIMESTAMP)'].join(', ')}
       FROM ${ident(name)} AS s
       ON CONFLICT DO UPDATE SET ${[
         ...cols.filter((c) => !c.primaryKey).map((c) => `${ident(c.name)} = excluded.${ident(c.name)}`),
         '_hlc = excluded._hlc',
         '_deleted = excluded._deleted',
         '_needs_sync = false',
         '_synced_at = excluded._synced_at',
       ].join(', ')} WHERE excluded._hlc >= ${target}._hlc OR NOT ${target}._needs_sync`,
    )
    await dropSyncedTombstones(t)
    return Number(res[0]?.Count ?? res[0]?.count ?? 0)
  }

  /**
   * Stages `ipc` (DuckDB takes its buffer), runs `load` on it and drops the staging table, inside
   * the caller's transaction: when `load` fails, the caller's rollback removes the table (DuckDB
   * refuses any further statement in a failed transaction).
   */
  async function withStaged(ipc: Uint8Array, load: (name: string) => Promise<number>): Promise<number> {
    const name = `_eddy_stage_${++stageSeq}`
    await conn.insertArrowFromIPCStream(ipc, { name, create: true })
    const out = await load(name)
    await conn.query(`DROP TABLE ${ident(name)}`)
    return out
  }

  /**
   * The first try of a bulk load (inside the caller's transaction): when none of the page's keys
   * is stored (a first load, and its later pages too: a key comes back in a later page only if it
   * changed meanwhile), the page is appended to the physical table as it is, tombstones included,
   * and a page that carried tombstones then drops them (the upsert's outcome when no key matches:
   * a tombstone has nothing to delete). A stored key makes the append fail on the primary key, and
   * the caller rolls back and loads the page again through `upsertStaged`, which never lets
   * an older pulled row overwrite a pending local write and whose tombstones delete. Returns the
   * live rows appended.
   */
  async function appendPage(t: Table, ipc: Uint8Array): Promise<number> {
    let columns = physicalColumns.get(t.name)
    if (columns === undefined) {
      columns = must(await columnsOf(physical(t)), `no cache table for '${t.name}'`)
      physicalColumns.set(t.name, columns)
    }
    const page = physicalPage(ipc, columns, Date.now())
    if (page === undefined) throw new EddyError('protocol', `Arrow load of '${t.name}' has no _hlc column`)
    if (page.rows === 0) return 0
    await conn.insertArrowFromIPCStream(page.ipc, { name: physical(t), create: false })
    if (page.tombstones > 0) await dropSyncedTombstones(t)
    return page.rows - page.tombstones
  }

  const cache: DuckDbCache = {
    init,

    physicalName: physical,

    getRows(t, keys) {
      return queue(() => getRowsNow(t, keys).catch((e: unknown) => Promise.reject(cacheError(e, 'read'))))
    },

    applyLocal(writes: readonly LocalWrite[]) {
      if (openBatch !== undefined) {
        for (const w of writes) openBatch.writes.push(w)
        openBatch.touch()
        return openBatch.done
      }
      const batch: LocalWrite[] = [...writes]
      const firstAt = Date.now()
      let timer: ReturnType<typeof setTimeout> | undefined
      let go: () => void = () => {}
      const ready = new Promise<void>((resolve) => {
        go = () => {
          if (timer !== undefined) clearTimeout(timer)
          resolve()
        }
      })
      const touch = (): void => {
        if (timer !== undefined) clearTimeout(timer)
        timer = setTimeout(go, Math.max(0, Math.min(quietMs, firstAt + maxWaitMs - Date.now())))
      }
      touch()
      const done = queue(async () => {
        await ready
        if (openBatch?.writes === batch) openBatch = undefined
        return inTransaction('write', async () => {
          const byTable = new Map<Table, LocalWrite[]>()
          for (const w of batch) appendTo(byTable, w.table, w)
          for (const [t, ws] of byTable) {
            // the later write of a key in one batch is the one that stands
            const last = foldByKey(
              t,
              ws,
              (w) => w.key,
              () => true,
            )
            await upsert(
              t,
              last.map((w) => ({ values: encodeRow(t, w.row, w.key), hlc: w.hlc, deleted: w.row === null })),
              'local',
            )
          }
        })
      })
      openBatch = { writes: batch, done, go: () => go(), touch }
      return done
    },

    revertLocal(previous) {
      return queue(() =>
        inTransaction('revert', async () => {
          const byTable = new Map<Table, Array<(typeof previous)[number]>>()
          for (const p of previous) appendTo(byTable, p.table, p)
          for (const [t, ps] of byTable) {
            const keys = ps.map((p) => keyTexts(t, p.key))
            const src = await source(t.primaryKey, keys)
            try {
              await conn.query(
                `DELETE FROM ${ident(physical(t))} AS t USING ${src.from} WHERE ${keyMatch(t, 't')}`,
              )
            } finally {
              await src.drop()
            }
            const restore = ps.flatMap((p) => (p.row === undefined ? [] : [p.row]))
            const folded = foldByKey(
              t,
              restore,
              (r) => r.values,
              () => true,
            )
            await upsert(
              t,
              folded.map((r) => ({
                values: encodeRow(t, r.values, r.values),
                hlc: r.hlc,
                deleted: r.deleted,
              })),
              'restore',
              folded.map((r) => r.needsSync),
            )
          }
        }),
      )
    },

    applyRemote(changes: readonly Change[], tables) {
      return queue(() =>
        inTransaction('pull', async () => {
          const changed = new Set<string>()
          const byTable = new Map<string, Change[]>()
          for (const c of changes) appendTo(byTable, c.table, c)
          for (const [name, cs] of byTable) {
            const t = tables.get(name)
            if (t === undefined)
              throw new EddyError('unknown_table', `pulled a change for unknown table '${name}'`)
            const newest = foldByKey(
              t,
              cs,
              (c) => c.key,
              (a, b) => a.hlc > b.hlc,
            )
            const n = await upsert(
              t,
              newest.map((c) => ({
                values: encodeRow(t, c.row, c.key),
                hlc: c.hlc,
                deleted: c.row === null,
              })),
              'remote',
            )
            await dropSyncedTombstones(t)
            if (n > 0) changed.add(name)
          }
          return changed
        }),
      )
    },

    markSynced(t, rows, syncedAt) {
      return queue(() =>
        inTransaction('mark synced', async () => {
          if (rows.length === 0) return
          const names = [...t.primaryKey, '_hlc']
          const src = await source(
            names,
            rows.map((r) => [...keyTexts(t, r.key), r.hlc]),
          )
          try {
            const target = ident(physical(t))
            await conn.query(
              `UPDATE ${target} AS t SET _needs_sync = false, _synced_at = CAST(${literal(syncedAt)} AS TIMESTAMP)
               FROM ${src.from} WHERE ${keyMatch(t, 't')} AND t._hlc = s._hlc`,
            )
          } finally {
            await src.drop()
          }
          await dropSyncedTombstones(t)
        }),
      )
    },

    // DuckDB-WASM transfers the buffer it is given to its worker: the caller's `ipc` is detached
    // afterwards. The first try appends a rewritten copy, so that a page whose keys are stored can
    // be staged again for the upsert.
    loadArrow(t, ipc) {
      return queue(async () => {
        try {
          return await inTransaction('bulk load', () => appendPage(t, ipc))
        } catch (e) {
          if (!(e instanceof EddyError && isKeyConflict(e.cause))) throw e
        }
        return inTransaction('bulk load', () => withStaged(ipc, (name) => upsertStaged(t, name)))
      })
    },

    query(sql, params = []) {
      return queue(async () => {
        if (closed) throw new EddyError('closed', 'the cache is closed')
        if (params.length === 0) return run(sql)
        const stmt = await conn.prepare(sql)
        try {
          return arrowToRows((await stmt.query(...params)) as unknown as ArrowTableLike)
        } finally {
          await stmt.close()
        }
      })
    },

    digestEntries(t) {
      return queue(async () => {
        const rows = await run(
          `SELECT ${[...t.primaryKey.map(ident), '_hlc'].join(', ')} FROM ${ident(physical(t))} WHERE NOT _deleted`,
        )
        return rows.map((r) => ({ keyText: canonicalKey(t, r), hlc: String(r._hlc) }))
      })
    },

    exportTable(t) {
      return queue(async () => {
        const rows = await run(`SELECT * FROM ${ident(physical(t))}`)
        const names = [...t.columns.map((c) => c.name), ...SYSTEM_COLUMNS]
        return textColumnsToIpc(
          names.map((n) => ({
            name: n,
            values: rows.map((r) => valueText(r[n], false)),
          })),
        )
      })
    },

    importTable(t, ipc) {
      return queue(() =>
        inTransaction('restore', async () => {
          const target = ident(physical(t))
          const name = `_eddy_stage_${++stageSeq}`
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
      return queue(async () => {
        if (closed || !opts.persistent) return
        await conn.query('CHECKPOINT').catch((e: unknown) => Promise.reject(cacheError(e, 'checkpoint')))
      })
    },

    close() {
      return queue(async () => {
        if (closed) return
        if (opts.persistent) await conn.query('CHECKPOINT').catch(() => undefined)
        closed = true
        await conn.close()
      })
    },
  }
  return cache
}
