import type postgres from 'postgres'
import type { Schema } from '../../../shared/schema.ts'
import { readConflicts, readEvents, readHighWater } from '../bookkeeping-reads.ts'
import { quoteIdent, selectList } from '../column-codec.ts'
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
import { readColumns } from './postgres-arrow-read.ts'
import { guard, openPostgresPool, type Param, q, type RawRow, unavailable } from './postgres-pool.ts'
import { openPostgresTx } from './postgres-tx.ts'

/*
 * edge/warehouse/postgres/: the PostgreSQL warehouse (the `postgres` client). This file wires it;
 * `postgres-pool.ts` holds the connections (a pool replaced when it loses one, transactions, which
 * failures mean the server is gone), `postgres-tx.ts` a write transaction, `postgres-arrow-read.ts`
 * the packed read behind the Arrow pull. What all three warehouses share is in edge/warehouse/.
 */

export interface PostgresWarehouseOptions {
  schema: Schema
  /** `postgres://user@host:port/db` */
  url: string
  /** Put Eddy's tables in this schema (created if missing) instead of the connection's default. */
  searchPath?: string
  /** Pool size (default `DEFAULT_POOL_SIZE`). */
  max?: number
}

/** Connections per warehouse unless `max` says otherwise. */
const DEFAULT_POOL_SIZE = 10

/**
 * The PostgreSQL warehouse. Writes take an advisory lock first, so they commit one after another in
 * version order; loads go through `unnest` of text arrays into one set-based upsert. Connection
 * failures surface as `warehouse_unavailable`; a pool that lost a connection is replaced, so the
 * next call reconnects once the server is back (see `postgres-pool.ts`).
 */
export async function openPostgresWarehouse(opts: PostgresWarehouseOptions): Promise<Warehouse> {
  const { schema } = opts
  const pool = await openPostgresPool({
    url: opts.url,
    searchPath: opts.searchPath,
    max: opts.max ?? DEFAULT_POOL_SIZE,
  })
  const { db } = pool
  /** The server's `server_encoding`, once asked (see `sendsStoredBytes`). */
  let serverEncoding: Promise<string> | undefined
  const query = (sql: string, params: readonly Param[]): Promise<RawRow[]> => guard(() => q(db, sql, params))

  return {
    kind: 'postgres',
    schema,
    writesElsewhere: true,
    async migrate() {
      await pool.locked(async (tx) => {
        for (const sql of bookkeepingDdl('postgres')) await q(tx, sql)
        for (const table of schema.tables.values()) await q(tx, createTableSql(table, 'postgres'))
        const existing = columnsByTable(
          await q(
            tx,
            `SELECT table_name, column_name FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = ANY($1::text[])`,
            [migratedTables(schema, 'postgres')],
          ),
        )
        for (const sql of addedColumnsSql(schema, 'postgres', existing)) await q(tx, sql)
        for (const table of schema.tables.values()) {
          await q(
            tx,
            `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${table.name}__eddy_version`)} ON ${quoteIdent(table.name)} (_version)`,
          )
        }
      })
    },
    write(fn) {
      return pool.locked(async (tx) => {
        const { tx: ops, flush } = openPostgresTx(tx)
        const out = await fn(ops)
        await flush()
        return out
      })
    },
    pull(req) {
      return guard(async () => {
        // One snapshot for every table, so the merged version order has no holes.
        const all = await pool.transaction('isolation level repeatable read read only', async (tx) => {
          const out: PulledChange[] = []
          for (const table of req.tables) {
            const params: Param[] = [req.afterVersion.toString()]
            let tenantFilter = ''
            if (req.tenant !== undefined && table.tenantColumn !== undefined) {
              params.push(req.tenant)
              tenantFilter = ` AND t.${quoteIdent(table.tenantColumn)}::text = $${params.length}`
            }
            params.push(req.limit + 1)
            const found = await q(
              tx,
              `SELECT ${selectList(table, 'postgres', 't')} FROM ${quoteIdent(table.name)} t
               WHERE t._version > $1::bigint${tenantFilter} ORDER BY t._version LIMIT $${params.length}`,
              params,
            )
            for (const raw of found) out.push(pulledChangeOf(table, raw))
          }
          return out
        })
        return pullPage(all, req.limit)
      })
    },
    pullColumns(req) {
      // one statement (one snapshot) for one table: no transaction needed for a hole-free page
      return guard(async () => {
        // a database's encoding never changes: asked once (again only after a failure)
        serverEncoding ??= q(db, 'SHOW server_encoding').then((r) => String(r[0]?.server_encoding))
        const encoding = await serverEncoding.catch((e: unknown) => {
          serverEncoding = undefined
          throw e
        })
        return readColumns(
          async (text, params, onRow) => {
            const { pool: current, client } = db
            if (current.broken) throw unavailable()
            // each row as it arrives, its cells as the bytes received (`raw`), none kept afterwards
            await client
              .unsafe(text, params as postgres.ParameterOrJSON<never>[])
              .raw()
              .forEach((row) => {
                onRow((row as unknown as (Uint8Array | null)[])[0] ?? null)
              })
          },
          req,
          encoding,
        )
      })
    },
    digestEntries: (table, tenant) => readDigestEntries(query, 'postgres', table, tenant),

    events: (limit, tenant) => readEvents(query, 'postgres', limit, tenant),
    conflicts: (tenant) => readConflicts(query, 'postgres', schema, tenant),
    async health() {
      await query('SELECT 1', [])
    },
    // the counter commits with the rows it numbered (writes hold the write lock), so all below it are visible
    highWater: () => readHighWater(query, 'postgres'),
    async prune(opts) {
      await pool.locked(async (tx) => {
        for (const s of pruneStatements(schema, 'postgres', opts)) await q(tx, s.sql, s.params)
      })
    },
    close: () => pool.close(),
  }
}
