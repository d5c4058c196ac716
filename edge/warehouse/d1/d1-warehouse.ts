import type { D1Database, D1PreparedStatement } from '@cloudflare/workers-types'
import { EddyError } from '../../../shared/errors.ts'
import type { Row, Schema, Table } from '../../../shared/schema.ts'
import { createSerialQueue } from '../../../shared/serial-queue.ts'
import { readConflicts, readEvents, readHighWater } from '../bookkeeping-reads.ts'
import { keyOf, quoteIdent } from '../column-codec.ts'
import { addedColumnsSql, bookkeepingDdl, createTableSql, migratedTables } from '../migrations.ts'
import { pruneStatements } from '../prune.ts'
import type { PulledChange, PullRequest, Warehouse, WarehouseTx } from '../warehouse.ts'
import { decodeArray, jsonArray, planTable, readExpr } from './d1-table-plan.ts'
import { D1Tx, planFor, unavailable } from './d1-tx.ts'

/*
 * edge/warehouse/d1/: the warehouse on a Cloudflare D1 binding (SQLite). This file wires it and
 * holds its optimistic concurrency; `d1-tx.ts` records a write transaction, `d1-table-plan.ts`
 * builds each table's SQL and carries rows as JSON. What all three warehouses share is in
 * edge/warehouse/.
 *
 * D1 has no interactive transactions, only `db.batch([...])`, which runs its statements as one atomic
 * transaction. So `write(fn)` runs `fn` against a recording transaction: its reads
 * (`client`, `readRows`, `deleteConflict`) go to D1 at once, its writes are queued as statements, and
 * when `fn` returns the queue runs as ONE batch. If `fn` throws, nothing is sent.
 *
 * Isolation. Writes on one adapter (one isolate) are serialised by a promise chain. Another isolate
 * may still commit between our reads and our batch, which would make the outcomes `fn` computed from
 * those reads wrong (a lost lastSeq, an lww decision against a row that has since changed). Every
 * write batch therefore bumps a `generation` counter in `_eddy_meta`, and each attempt reads the
 * generation BEFORE its first read. The batch's first statement inserts into `_eddy_guard` whether
 * the stored generation still equals the one read; a CHECK constraint on that table refuses a false,
 * which aborts the whole batch (plain SQLite, no trigger needed). D1 runs batches one at a time, so a
 * batch that passes the guard ran with nothing committed since its reads; a batch that fails it
 * changed nothing, and `write` re-runs `fn` on fresh reads (a few times, then `warehouse_unavailable`,
 * which the client retries). So `fn` may run more than once: it must act only through `tx`.
 *
 * Versions. `_version` comes from the `version` counter row in `_eddy_meta`, read and bumped inside the
 * same batch, so versions commit in counter order and a puller following `_version` never skips a
 * change (a batch is invisible until it commits, and no later batch can take a smaller version).
 *
 * Storage types: integer/bigint/boolean as INTEGER, double as REAL, everything else (decimal included,
 * to keep its exact text) as TEXT; json as its JSON text. Reads convert back to the wire forms of
 * PROTOCOL.md (bigint past 2^53 as a string, booleans as booleans).
 */

export interface D1WarehouseOptions {
  readonly db: D1Database
  readonly schema: Schema
  /** Clock for `detectedAt` stamps; injectable for tests. */
  readonly now?: () => number
  /** How many times a write re-runs after another isolate moved the generation (default `MAX_ATTEMPTS`). */
  readonly maxAttempts?: number
}

/** Write attempts before a write that keeps meeting other isolates' commits gives up. */
const MAX_ATTEMPTS = 8
/** The name of the guard's CHECK constraint, which D1's error for a refused batch carries. */
const CONCURRENT_WRITE = 'eddy_concurrent_write'
/** How deep a refused batch's error nests D1's message in `cause`s. */
const MAX_CAUSE_DEPTH = 4

/** What D1 needs beside the core's tables: the generation counter, its guard, an index for prune. */
const D1_BOOKKEEPING = [
  `INSERT OR IGNORE INTO _eddy_meta (key, value) VALUES ('generation', 0)`,
  'CREATE INDEX IF NOT EXISTS _eddy_sync_events_received ON _eddy_sync_events (received_at)',
  // The optimistic-concurrency guard (see the file comment): a batch whose expected generation is no
  // longer the stored one inserts 0 here, the CHECK fails and the batch aborts.
  `CREATE TABLE IF NOT EXISTS _eddy_guard (ok INTEGER NOT NULL CONSTRAINT ${CONCURRENT_WRITE} CHECK (ok = 1))`,
]

function isConcurrentWrite(e: unknown): boolean {
  let cur: unknown = e
  for (let depth = 0; cur instanceof Error && depth < MAX_CAUSE_DEPTH; depth++) {
    if (cur.message.includes(CONCURRENT_WRITE)) return true
    cur = cur.cause
  }
  return false
}

/** Opens the D1 warehouse for a schema. Call `migrate()` once before use. */
export function openD1Warehouse(opts: D1WarehouseOptions): Warehouse {
  const { db, schema } = opts
  const now = opts.now ?? Date.now
  const maxAttempts = opts.maxAttempts ?? MAX_ATTEMPTS
  const plans = new Map([...schema.tables.values()].map((t) => [t.name, planTable(t)]))
  const serial = createSerialQueue()
  let closed = false

  const guarded = async <T>(op: () => Promise<T>): Promise<T> => {
    if (closed) throw new EddyError('warehouse_unavailable', 'the D1 warehouse is closed')
    try {
      return await op()
    } catch (e) {
      throw unavailable(e)
    }
  }
  const query = (sql: string, params: ReadonlyArray<string | number | null>) =>
    guarded(
      async () =>
        (
          await db
            .prepare(sql)
            .bind(...params)
            .all<Record<string, unknown>>()
        ).results,
    )

  /** Runs statements as one batch, guarded by the generation and bumping it. */
  const commit = async (generation: number, statements: D1PreparedStatement[]): Promise<void> => {
    await db.batch([
      db
        .prepare(
          `INSERT INTO _eddy_guard (ok) SELECT coalesce(max(value = ?1), 0) FROM _eddy_meta WHERE key = 'generation'`,
        )
        .bind(generation),
      ...statements,
      db.prepare(`UPDATE _eddy_meta SET value = value + 1 WHERE key = 'generation'`),
      db.prepare('DELETE FROM _eddy_guard'),
    ])
  }

  const generation = async (): Promise<number> => {
    const g = await db.prepare(`SELECT value FROM _eddy_meta WHERE key = 'generation'`).first<number>('value')
    if (g === null) throw new EddyError('internal', 'the D1 warehouse is not migrated (no generation)')
    return g
  }

  /**
   * One guarded batch: `attempt` reads (after the generation is read) and returns its statements;
   * it runs again on fresh reads while other isolates commit in between.
   */
  async function commitGuarded<T>(
    attempt: () => Promise<{ statements: D1PreparedStatement[]; result: T }>,
  ): Promise<T> {
    for (let n = 1; ; n++) {
      const gen = await guarded(generation)
      const { statements, result } = await attempt()
      if (statements.length === 0) return result
      try {
        await commit(gen, statements)
        return result
      } catch (e) {
        if (isConcurrentWrite(e)) {
          if (n < maxAttempts) continue
          throw new EddyError('warehouse_unavailable', 'the D1 warehouse is busy; retry the batch', {
            cause: e,
          })
        }
        throw unavailable(e)
      }
    }
  }

  async function migrate(): Promise<void> {
    await db.batch(
      [
        ...bookkeepingDdl('sqlite'),
        ...D1_BOOKKEEPING,
        ...[...schema.tables.values()].map((t) => createTableSql(t, 'sqlite')),
      ].map((s) => db.prepare(s)),
    )
    const addMissing = async (): Promise<void> => {
      // `PRAGMA table_info` is one of the PRAGMAs D1 documents as supported.
      const tables = migratedTables(schema, 'sqlite')
      const listings = await db.batch<{ name: string }>(
        tables.map((t) => db.prepare(`PRAGMA table_info(${quoteIdent(t)})`)),
      )
      const have = new Map(tables.map((t, i) => [t, new Set(listings[i]?.results.map((r) => r.name))]))
      const alters = addedColumnsSql(schema, 'sqlite', (t) => have.get(t) ?? new Set())
      const indexes = [...schema.tables.values()].map(
        (t) =>
          `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${t.name}__version`)} ON ${quoteIdent(t.name)} (_version)`,
      )
      await db.batch([...alters, ...indexes].map((s) => db.prepare(s)))
    }
    try {
      await addMissing()
    } catch (e) {
      // Another isolate may have added the same column a moment ago: look again once.
      if (!(e instanceof Error && /duplicate column/i.test(`${e.message} ${String(e.cause)}`))) throw e
      await addMissing()
    }
  }

  function write<T>(fn: (tx: WarehouseTx) => Promise<T>): Promise<T> {
    return serial(() =>
      commitGuarded(async () => {
        const tx = new D1Tx(db, plans, now)
        // Errors from `fn` itself (validation, 403s, bugs) pass through unchanged; its D1 reads map theirs.
        const result = await fn(tx)
        return { statements: tx.statements(), result }
      }),
    )
  }

  async function pull(req: PullRequest): Promise<{ changes: PulledChange[]; hasMore: boolean }> {
    if (req.tables.length === 0) return { changes: [], hasMore: false }
    // one statement over every table (one snapshot), merged and cut in SQL
    const tenantParam = 3
    const parts = req.tables.map((t) => {
      const plan = planFor(plans, t)
      const scoped = req.tenant !== undefined && t.tenantColumn !== undefined
      return [
        `SELECT '${plan.table.name}' AS tbl, ${jsonArray(t.columns.map((c) => readExpr(c)))} AS vals,`,
        ` _hlc AS hlc, _deleted AS deleted, _version AS version FROM ${quoteIdent(t.name)} WHERE _version > ?1`,
        scoped ? ` AND ${quoteIdent(t.tenantColumn ?? '')} = ?${tenantParam}` : '',
      ].join('')
    })
    const sql = `${parts.join(' UNION ALL ')} ORDER BY version LIMIT ?2`
    const params: Array<string | number> = [Number(req.afterVersion), req.limit + 1]
    if (req.tenant !== undefined && sql.includes(`?${tenantParam}`)) params.push(req.tenant)
    const rows = await query(sql, params)
    const hasMore = rows.length > req.limit
    const changes = rows.slice(0, req.limit).map((r): PulledChange => {
      const table = schema.table(String(r.tbl))
      const values = decodeArray(table.columns, r.vals)
      return {
        table: table.name,
        key: keyOf(table, values),
        row: r.deleted === 1 ? null : values,
        hlc: String(r.hlc),
        version: BigInt(Number(r.version)),
      }
    })
    return { changes, hasMore }
  }

  async function digestEntries(table: Table, tenant?: string): Promise<Array<{ key: Row; hlc: string }>> {
    planFor(plans, table)
    const keyCols = table.primaryKey.map((k) => table.columnsByName.get(k)).filter((c) => c !== undefined)
    const scoped = tenant !== undefined && table.tenantColumn !== undefined
    const sql = [
      `SELECT ${jsonArray(keyCols.map((c) => readExpr(c)))} AS k, _hlc AS hlc FROM ${quoteIdent(table.name)}`,
      ' WHERE _deleted = 0',
      scoped ? ` AND ${quoteIdent(table.tenantColumn ?? '')} = ?1` : '',
    ].join('')
    const rows = await query(sql, scoped ? [tenant] : [])
    return rows.map((r) => ({ key: decodeArray(keyCols, r.k), hlc: String(r.hlc) }))
  }

  return {
    kind: 'd1',
    schema,
    migrate: () => guarded(migrate),
    write,
    pull,
    highWater: () => readHighWater(query, 'sqlite'),
    digestEntries,
    events: (limit, tenant) => readEvents(query, 'sqlite', limit, tenant),
    conflicts: (tenant) => readConflicts(query, 'sqlite', schema, tenant),
    async health() {
      await query('SELECT 1 AS ok', [])
    },
    async prune(opts) {
      const statements = pruneStatements(schema, 'sqlite', opts).map((s) =>
        db.prepare(s.sql).bind(...s.params),
      )
      // Dropping tombstones changes what a write would read, so pruning is a guarded write too.
      await serial(() => commitGuarded(async () => ({ statements, result: undefined })))
    },
    async close() {
      // The binding belongs to the runtime; closing only stops this adapter from being used again.
      closed = true
    },
  }
}
