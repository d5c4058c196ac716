import { type DuckDBConnection, DuckDBInstance, type DuckDBValue } from '@duckdb/node-api'
import { EddyError } from '../../../shared/errors.ts'
import type { Schema } from '../../../shared/schema.ts'
import { createSerialQueue } from '../../../shared/serial-queue.ts'
import { readConflicts, readEvents, readHighWater } from '../bookkeeping-reads.ts'
import { selectList } from '../column-codec.ts'
import { readDigestEntries } from '../digest-entries.ts'
import {
  addedColumnsSql,
  bookkeepingDdl,
  columnsByTable,
  createTableSql,
  migratedTables,
} from '../migrations.ts'
import { pruneStatements } from '../prune.ts'
import { pulledChangeOf, pullPage } from '../pull-page.ts'
import type { PulledChange, Warehouse } from '../warehouse.ts'
import { changesAfter, readColumns } from './duckdb-arrow-read.ts'
import { openDuckDbTx } from './duckdb-tx.ts'
import { createDuckDbWriter } from './duckdb-writer.ts'

/*
 * edge/warehouse/duckdb/: the embedded DuckDB warehouse (`@duckdb/node-api`). This file wires it;
 * `duckdb-tx.ts` is a write transaction, `duckdb-writer.ts` the write connection (prepared
 * statements, staging), `duckdb-staging.ts` how row sets reach a statement, `duckdb-arrow-read.ts`
 * the column-wise read behind the Arrow pull. What all three warehouses share is in edge/warehouse/.
 */

export interface DuckDbWarehouseOptions {
  schema: Schema
  /** A database file, or `:memory:` (the default). */
  path?: string
}

type RawRow = Record<string, unknown>

/**
 * Up to this many staged keys, a join of a table to them (`readRows`, the write path's key lookup)
 * reads the table through its primary-key index instead of scanning it: DuckDB pushes the smaller
 * side's keys into the other side's scan as an IN filter up to this count (an instance-wide
 * setting, default 50, far below the key counts of a typical push). Past a few times this, the
 * index probes cost about what the scan does.
 */
const KEY_FILTER_THRESHOLD = 500

/**
 * Failures that mean the store itself is gone (I/O, an invalidated or closed database) answer 503;
 * anything else is a bug and stays an ordinary error (500 `internal`). A caller never sees SQL.
 */
function unavailable(e: unknown): unknown {
  if (e instanceof EddyError) return e
  const message = e instanceof Error ? e.message : String(e)
  if (/IO Error|Connection Error|FATAL|invalidated|closed|Out of Memory/i.test(message))
    return new EddyError('warehouse_unavailable', 'the DuckDB warehouse failed', { cause: e })
  return e
}

async function rows(
  conn: DuckDBConnection,
  sql: string,
  params: readonly DuckDBValue[] = [],
): Promise<RawRow[]> {
  const reader = await conn.runAndReadAll(sql, [...params])
  return reader.getRowObjectsJS() as RawRow[]
}

/**
 * The embedded DuckDB warehouse. One connection writes, serialised by an in-process queue, so
 * versions commit in order; each read uses its own connection and sees only committed data.
 */
export async function openDuckDbWarehouse(opts: DuckDbWarehouseOptions): Promise<Warehouse> {
  const { schema } = opts
  const instance = await DuckDBInstance.create(opts.path ?? ':memory:')
  const writer = await instance.connect()
  await writer.run(`SET dynamic_or_filter_threshold = ${KEY_FILTER_THRESHOLD}`)
  const w = createDuckDbWriter(writer)
  let closed = false

  /** Every write, prune and close runs alone, after the ones called before it. */
  const exclusive = createSerialQueue()

  /** `fn` on the write connection, alone; its failures mapped by `unavailable`. */
  const onWriter = <T>(fn: () => Promise<T>): Promise<T> =>
    exclusive(async () => {
      if (closed) throw new EddyError('warehouse_unavailable', 'the warehouse is closed')
      try {
        return await fn()
      } catch (e) {
        throw unavailable(e)
      }
    })

  async function withReader<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    if (closed) throw new EddyError('warehouse_unavailable', 'the warehouse is closed')
    let conn: DuckDBConnection | undefined
    try {
      conn = await instance.connect()
      return await fn(conn)
    } catch (e) {
      throw unavailable(e)
    } finally {
      conn?.closeSync()
    }
  }
  const query = (sql: string, params: readonly DuckDBValue[]): Promise<RawRow[]> =>
    withReader((conn) => rows(conn, sql, params))

  /**
   * Creates what is missing. A migration that altered anything checkpoints at once: DuckDB 1.5
   * failed to replay an `ALTER TABLE … ADD COLUMN` from its WAL after a kill (`GetDefaultDatabase`).
   */
  async function migrate(): Promise<void> {
    for (const sql of bookkeepingDdl('duckdb')) await writer.run(sql)
    for (const table of schema.tables.values()) await writer.run(createTableSql(table, 'duckdb'))
    const names = migratedTables(schema, 'duckdb')
    const existing = columnsByTable(
      await rows(
        writer,
        `SELECT table_name, column_name FROM information_schema.columns
         WHERE table_schema = 'main' AND table_name IN (${names.map(() => '?').join(', ')})`,
        names,
      ),
    )
    const alters = addedColumnsSql(schema, 'duckdb', existing)
    for (const sql of alters) await writer.run(sql)
    if (alters.length > 0) await writer.run('CHECKPOINT')
  }

  return {
    kind: 'duckdb',
    schema,
    migrate: () => onWriter(migrate),
    write(fn) {
      return exclusive(async () => {
        if (closed) throw new EddyError('warehouse_unavailable', 'the warehouse is closed')
        try {
          await writer.run('BEGIN TRANSACTION')
        } catch (e) {
          throw unavailable(e)
        }
        try {
          const { tx, flush } = openDuckDbTx(w)
          const out = await fn(tx)
          await flush()
          await writer.run('COMMIT')
          return out
        } catch (e) {
          try {
            await writer.run('ROLLBACK')
          } catch {
            // the transaction is already gone (e.g. a failed COMMIT rolled it back)
          }
          throw unavailable(e)
        }
      })
    },
    pull(req) {
      return withReader(async (conn) => {
        // One snapshot for every table, so the merged version order has no holes.
        await conn.run('BEGIN TRANSACTION')
        const all: PulledChange[] = []
        for (const table of req.tables) {
          const from = changesAfter(table, req.afterVersion, req.tenant, req.limit)
          const found = await rows(
            conn,
            `SELECT ${selectList(table, 'duckdb', 't')} ${from.sql}`,
            from.params,
          )
          for (const raw of found) all.push(pulledChangeOf(table, raw))
        }
        await conn.run('COMMIT')
        return pullPage(all, req.limit)
      })
    },
    pullColumns(req) {
      return withReader((conn) => readColumns(conn, req))
    },
    highWater: () => readHighWater(query, 'duckdb'),
    digestEntries: (table, tenant) => readDigestEntries(query, 'duckdb', table, tenant),

    events: (limit, tenant) => readEvents(query, 'duckdb', limit, tenant),
    conflicts: (tenant) => readConflicts(query, 'duckdb', schema, tenant),
    async health() {
      await query('SELECT 1', [])
    },
    prune(opts) {
      return onWriter(async () => {
        for (const s of pruneStatements(schema, 'duckdb', opts)) await writer.run(s.sql, [...s.params])
      })
    },
    async close() {
      await exclusive(async () => {
        if (closed) return
        closed = true
        writer.closeSync()
        instance.closeSync()
      })
    },
  }
}
