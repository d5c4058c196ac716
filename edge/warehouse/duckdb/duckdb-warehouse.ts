import {
  type DuckDBConnection,
  DuckDBInstance,
  type DuckDBPreparedStatement,
  type DuckDBResultReader,
  type DuckDBType,
  type DuckDBValue,
  LIST,
  listValue,
  VARCHAR,
} from '@duckdb/node-api'
import { canonicalKey } from '../../../shared/digest.ts'
import { EddyError, must } from '../../../shared/errors.ts'
import type { StoredRow } from '../../../shared/reconcile.ts'
import type { Row, Schema, Table } from '../../../shared/schema.ts'
import { createSerialQueue } from '../../../shared/serial-queue.ts'
import { sqlType } from '../../../shared/sql-types.ts'
import { conflictInTenant } from '../../conflicts/tenant.ts'
import { clientFromRow, conflictFromRow, pushedByOf, syncEventFromRow } from '../bookkeeping-rows.ts'
import {
  decodeRow,
  encodeValue,
  keyOf,
  quoteIdent,
  selectExpr,
  selectList,
  storedRowOf,
} from '../column-codec.ts'
import {
  EVENT_COLUMNS,
  eventValues,
  type NewConflict,
  type NewEvent,
  type PulledChange,
  type PullRequest,
  type RowWrite,
  type Warehouse,
  type WarehouseTx,
} from '../warehouse.ts'
import { changesAfter, readColumns } from './duckdb-arrow-read.ts'
import { intoTable, type Staged, stageRows } from './duckdb-staging.ts'

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
 * setting, default 50). The write path's lookup of 200 / 500 fresh random uuids, median of 9: on a
 * 1,000,000-row `orders` table 20.5 / 22.2 ms with the default, 4.1 / 6.6 ms with 500; on 100,000
 * rows 11.5 / 3.9 vs 2.7 / 4.4 ms. At 1,000 keys the index probes cost about what the scan does.
 */
const KEY_FILTER_THRESHOLD = 500

/** Rows per statement when a group's client bookkeeping is read and its conflicts are written. */
const FLUSH_ROWS = 200

/** The type of the text lists that carry the flush's columns. */
const TEXT_LIST = LIST(VARCHAR)

/** Flush statements of up to this many rows are prepared once per text and kept. */
const CACHED_FLUSH_ROWS = 64

/** Prepared statements kept on the write connection (least recently used ones are dropped). */
const MAX_PREPARED = 256

/** Bookkeeping tables, shared by every schema. */
const BOOKKEEPING = [
  `CREATE TABLE IF NOT EXISTS _eddy_meta (name VARCHAR PRIMARY KEY, value BIGINT NOT NULL)`,
  `INSERT INTO _eddy_meta VALUES ('version', 0) ON CONFLICT DO NOTHING`,
  `CREATE TABLE IF NOT EXISTS _eddy_clients (client_id VARCHAR PRIMARY KEY, last_seq BIGINT NOT NULL, owner VARCHAR)`,
  `CREATE SEQUENCE IF NOT EXISTS _eddy_event_ids`,
  `CREATE TABLE IF NOT EXISTS _eddy_sync_events (id BIGINT PRIMARY KEY DEFAULT nextval('_eddy_event_ids'),
     client_id VARCHAR NOT NULL, received_at TIMESTAMP NOT NULL, mutations INTEGER NOT NULL, applied INTEGER NOT NULL,
     stale INTEGER NOT NULL, duplicate INTEGER NOT NULL, conflict INTEGER NOT NULL, rejected INTEGER NOT NULL,
     duration_ms DOUBLE NOT NULL, tenant VARCHAR)`,
  `CREATE SEQUENCE IF NOT EXISTS _eddy_conflict_ids`,
  `CREATE TABLE IF NOT EXISTS _eddy_conflicts (id BIGINT PRIMARY KEY DEFAULT nextval('_eddy_conflict_ids'),
     table_name VARCHAR NOT NULL, key_json VARCHAR NOT NULL, stored_json VARCHAR, incoming_json VARCHAR,
     hlc VARCHAR NOT NULL, client_id VARCHAR NOT NULL, detected_at TIMESTAMP NOT NULL, tenant VARCHAR)`,
]

/**
 * Columns added to bookkeeping tables after their first release: [table, column, type]. Each is
 * added only when missing, and a migration that altered anything checkpoints at once: DuckDB 1.5
 * failed to replay an `ALTER TABLE … ADD COLUMN` from its WAL after a kill (`GetDefaultDatabase`).
 */
const BOOKKEEPING_ADDED: ReadonlyArray<readonly [string, string, string]> = [
  // the pushing caller's tenant (null: none), for a tenant admin's view of the audit trail
  ['_eddy_sync_events', 'tenant', 'VARCHAR'],
  ['_eddy_conflicts', 'tenant', 'VARCHAR'],
]

/** System columns of every synced table (`_col_hlcs` only on merge tables). */
function systemColumns(table: Table): Array<[string, string]> {
  const cols: Array<[string, string]> = [
    ['_hlc', 'VARCHAR NOT NULL'],
    ['_deleted', 'BOOLEAN NOT NULL DEFAULT false'],
    ['_version', 'BIGINT NOT NULL'],
    ['_client_id', 'VARCHAR NOT NULL'],
  ]
  if (table.conflict === 'merge') cols.push(['_col_hlcs', 'VARCHAR'])
  return cols
}

/** Joins a table `t` to a staged relation `s` of text columns on the primary key. */
function keyMatch(table: Table): string {
  return table.primaryKey
    .map((k) => {
      const col = must(table.columnsByName.get(k), 'key column')
      return `t.${quoteIdent(k)} = CAST(s.${quoteIdent(k)} AS ${sqlType(col, 'duckdb')})`
    })
    .join(' AND ')
}

function toJson(v: Row | null): string | null {
  return v === null ? null : JSON.stringify(v)
}

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

/**
 * The embedded DuckDB warehouse. One connection writes, serialised by an in-process mutex, so
 * versions commit in order; each read uses its own connection and sees only committed data.
 */
export async function openDuckDbWarehouse(opts: DuckDbWarehouseOptions): Promise<Warehouse> {
  const { schema } = opts
  const instance = await DuckDBInstance.create(opts.path ?? ':memory:')
  const writer = await instance.connect()
  await writer.run(`SET dynamic_or_filter_threshold = ${KEY_FILTER_THRESHOLD}`)
  let closed = false
  let stageCounter = 0

  /** Every write, prune and close runs alone, after the ones called before it. */
  const exclusive = createSerialQueue()

  async function rows(conn: DuckDBConnection, sql: string, params: DuckDBValue[] = []): Promise<RawRow[]> {
    const reader = await conn.runAndReadAll(sql, params)
    return reader.getRowObjectsJS() as RawRow[]
  }

  /**
   * The write path's parameterised statements, prepared once per text. `run(sql, params)` would
   * extract, prepare and plan the statement on every call (three trips to DuckDB's threads before
   * it runs); a small push runs several such statements, so a cached one saves most of its cost.
   * Only ever used under the write mutex, so a statement's bind and run never interleave.
   */
  const prepared = new Map<string, DuckDBPreparedStatement>()
  async function writeSql(
    sql: string,
    params: DuckDBValue[],
    cache = true,
    types?: DuckDBType[],
  ): Promise<DuckDBResultReader> {
    if (params.length === 0) return writer.runAndReadAll(sql)
    if (!cache) return writer.runAndReadAll(sql, params, types)
    let statement = prepared.get(sql)
    if (statement === undefined) {
      statement = await writer.prepare(sql)
      if (prepared.size >= MAX_PREPARED) {
        const [oldest, stale] = prepared.entries().next().value ?? []
        if (oldest !== undefined) prepared.delete(oldest)
        stale?.destroySync()
      }
    } else {
      prepared.delete(sql)
    }
    prepared.set(sql, statement)
    statement.clearBindings()
    statement.bind(params, types)
    return statement.runAndReadAll()
  }

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

  /**
   * Text rows staged for one statement (`duckdb-staging.ts`). `cell(row, column)` gives each value;
   * nothing is copied into row arrays first (a 10,000-row push would otherwise allocate 10,000
   * arrays while the push's own objects are still alive, and the collector copies those on every
   * young-generation pass).
   */
  function source(
    columns: readonly string[],
    count: number,
    cell: (row: number, column: number) => string | null,
  ): Promise<Staged> {
    return stageRows(writer, columns, count, cell, tempName)
  }

  /** A temp table name no live staging uses. */
  function tempName(): string {
    stageCounter += 1
    return `_eddy_stage_${stageCounter}`
  }

  /**
   * A write transaction's operations, and the flush that runs before its COMMIT. The version
   * counter is read once per transaction (under the write mutex) and advanced in memory; it, the
   * clients' lastSeqs and the audit events are written by the flush, one statement each, so a
   * group-committed transaction of many pushes does not pay three statements per push for them
   * (every statement is a trip to DuckDB's threads). Reads inside the transaction see them:
   * `client` overlays the lastSeqs not yet written.
   */
  function txFor(): { tx: WarehouseTx; flush(): Promise<void> } {
    let version: bigint | undefined
    let versionWritten: bigint | undefined
    const lastSeqs = new Map<string, { seq: number; owner: string | undefined }>()
    const events: NewEvent[] = []
    /** Clients' stored bookkeeping read by `preloadClients`. */
    const preloaded = new Map<string, { lastSeq: number; owner: string | undefined }>()
    /**
     * Per table, the canonical keys `readRows` found stored in this transaction. Rows are never
     * deleted while it runs, so they stay stored until COMMIT: a write that meets one of them goes
     * to the upsert without a lookup (the edge writes with `writeRows` only keys it read first).
     */
    const storedKeys = new Map<string, Set<string>>()
    const knownStored = (table: Table, writes: readonly RowWrite[]): boolean => {
      const keys = storedKeys.get(table.name)
      return keys !== undefined && writes.some((w) => keys.has(canonicalKey(table, w.key)))
    }
    const currentVersion = async (): Promise<bigint> => {
      if (version === undefined) {
        const r = await rows(writer, `SELECT value FROM _eddy_meta WHERE name = 'version'`)
        version = BigInt(String(r[0]?.value ?? 0))
      }
      return version
    }
    /**
     * Whether any staged key (`names` are the staged columns) is stored in `table`, tombstones
     * included. Up to `KEY_FILTER_THRESHOLD` keys DuckDB answers it from the primary-key index (the
     * join's key filter becomes an index scan); past it, by a scan of the key column.
     */
    const anyStored = async (table: Table, src: Staged, names: readonly string[]): Promise<boolean> => {
      const keys = src.from(table.primaryKey.map((k) => names.indexOf(k)))
      const found = await writeSql(
        `SELECT count(*) FROM ${quoteIdent(table.name)} t JOIN ${keys.sql} ON ${keyMatch(table)}`,
        keys.params,
        src.cache,
      )
      return Number(found.getColumnsJS()[0]?.[0] ?? 0) > 0
    }
    /**
     * One set-based upsert, rows numbered with fresh versions in order. lww tables keep the hlc
     * guard in SQL: an older stamp never overwrites a newer row. With `report`, resolves the
     * positions of the rows actually written (the guard skips the others).
     */
    const upsert = async (table: Table, writes: readonly RowWrite[], report: boolean): Promise<number[]> => {
      if (writes.length === 0) return []
      const merge = table.conflict === 'merge'
      const names = [...table.columns.map((c) => c.name), '_hlc', '_deleted', '_version', '_client_id']
      if (merge) names.push('_col_hlcs')
      const first = (await currentVersion()) + 1n
      const v = first + BigInt(writes.length) - 1n
      // versions as numbers while they are exact (a BigInt per row is one more object per row)
      const small = v <= BigInt(Number.MAX_SAFE_INTEGER)
      const firstNumber = Number(first)
      const { columns } = table
      const n = columns.length
      let at = -1
      let w = must(writes[0], 'row write')
      const cell = (r: number, c: number): string | null => {
        if (r !== at) {
          at = r
          w = must(writes[r], 'row write')
        }
        if (c < n) {
          const col = must(columns[c], 'column')
          return encodeValue(col, w.row.values[col.name])
        }
        switch (c - n) {
          case 0:
            return w.row.hlc
          case 1:
            return w.row.deleted ? 'true' : 'false'
          case 2:
            return small ? String(firstNumber + r) : (first + BigInt(r)).toString()
          case 3:
            return w.clientId
          default:
            return w.row.columnHlcs === undefined ? null : JSON.stringify(w.row.columnHlcs)
        }
      }
      const casts = [
        ...table.columns.map((c) => `CAST(s.${quoteIdent(c.name)} AS ${sqlType(c, 'duckdb')})`),
        's._hlc',
        'CAST(s._deleted AS BOOLEAN)',
        'CAST(s._version AS BIGINT)',
        's._client_id',
      ]
      if (merge) casts.push('s._col_hlcs')
      const updates = names
        .filter((n) => !table.primaryKey.includes(n))
        .map((n) => `${quoteIdent(n)} = excluded.${quoteIdent(n)}`)
      const into = `INSERT INTO ${quoteIdent(table.name)} AS t (${names.map(quoteIdent).join(', ')})`
      let staged = await source(names, writes.length, cell)
      let written: number[] = []
      if (!knownStored(table, writes) && !(await anyStored(table, staged, names))) {
        // No key is stored yet: a plain INSERT writes every row, as the upsert would have. Worth a
        // lookup first: DuckDB's ON CONFLICT costs ~2.5 ms more per statement at 10 rows and ~3×
        // a plain INSERT at 10,000, and a failed INSERT would abort the whole transaction.
        const from = staged.from()
        await writeSql(`${into} SELECT ${casts.join(', ')} FROM ${from.sql}`, from.params, staged.cache)
        if (report) written = Array.from(writes, (_, i) => i)
      } else {
        if (staged.kind === 'packed') staged = await intoTable(writer, staged, names, tempName)
        const from = staged.from()
        const guard = table.conflict === 'lww' ? ' WHERE excluded._hlc > t._hlc' : ''
        const sql = `${into} SELECT ${casts.join(', ')} FROM ${from.sql}
           ON CONFLICT (${table.primaryKey.map(quoteIdent).join(', ')}) DO UPDATE SET ${updates.join(', ')}${guard}`
        if (report) {
          // the statement text stays the same from push to push (it is prepared once): offsets in JS
          const reader = await writeSql(`${sql} RETURNING _version`, from.params, staged.cache)
          written = (reader.getColumnsJS()[0] ?? []).map((x) => Number(BigInt(String(x)) - first))
        } else {
          await writeSql(sql, from.params, staged.cache)
        }
      }
      await staged.done()
      version = v
      return written
    }
    const flush = async (): Promise<void> => {
      if (version !== undefined && version !== versionWritten) {
        await writeSql(`UPDATE _eddy_meta SET value = ? WHERE name = 'version'`, [version])
        versionWritten = version
      }
      // one text list parameter per column, so each statement is prepared once whatever the count
      // (typed: a list's type is otherwise guessed from its first item, and a leading null makes
      // every item null); `unnest` keeps the lists' order, and the events' ids follow it
      const seqs = [...lastSeqs]
      lastSeqs.clear()
      if (seqs.length > 0) {
        await writeSql(
          `INSERT INTO _eddy_clients SELECT unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[])
           ON CONFLICT (client_id)
           DO UPDATE SET last_seq = excluded.last_seq, owner = coalesce(_eddy_clients.owner, excluded.owner)`,
          [
            listValue(seqs.map(([clientId]) => clientId)),
            listValue(seqs.map(([, p]) => String(p.seq))),
            listValue(seqs.map(([, p]) => p.owner ?? null)),
          ],
          true,
          [TEXT_LIST, TEXT_LIST, TEXT_LIST],
        )
      }
      const added = events.splice(0)
      if (added.length > 0) {
        const values = added.map(eventValues)
        const column = (i: number): DuckDBValue =>
          listValue(
            values.map((row) => {
              const v = row[i]
              return v === undefined || v === null ? null : String(v)
            }),
          )
        await writeSql(
          `INSERT INTO _eddy_sync_events (${EVENT_COLUMNS})
           SELECT unnest(?::VARCHAR[]), unnest(?::TIMESTAMP[]), unnest(?::INTEGER[]), unnest(?::INTEGER[]),
             unnest(?::INTEGER[]), unnest(?::INTEGER[]), unnest(?::INTEGER[]), unnest(?::INTEGER[]),
             unnest(?::DOUBLE[]), unnest(?::VARCHAR[])`,
          Array.from({ length: 10 }, (_, i) => column(i)),
          true,
          new Array<DuckDBType>(10).fill(TEXT_LIST),
        )
      }
    }
    const tx: WarehouseTx = {
      async preloadClients(clientIds) {
        for (let at = 0; at < clientIds.length; at += FLUSH_ROWS) {
          const part = clientIds.slice(at, at + FLUSH_ROWS)
          const found = (
            await writeSql(
              `SELECT client_id, last_seq, owner FROM _eddy_clients WHERE client_id IN (${part.map(() => '?').join(', ')})`,
              [...part],
              part.length <= CACHED_FLUSH_ROWS,
            )
          ).getRowObjectsJS() as RawRow[]
          for (const id of part) preloaded.set(id, clientFromRow(undefined))
          for (const r of found) preloaded.set(String(r.client_id), clientFromRow(r))
        }
      },
      async client(clientId) {
        // what is stored does not change before the flush: a preloaded answer stays true
        const stored =
          preloaded.get(clientId) ??
          clientFromRow(
            (
              (
                await writeSql('SELECT last_seq, owner FROM _eddy_clients WHERE client_id = ?', [clientId])
              ).getRowObjectsJS() as RawRow[]
            )[0],
          )
        const pending = lastSeqs.get(clientId)
        return pending === undefined ? stored : { lastSeq: pending.seq, owner: stored.owner ?? pending.owner }
      },
      async setLastSeq(clientId, seq, owner) {
        // the stored owner, if any, wins over this one (`coalesce` in the flush); so does an earlier call's
        const pending = lastSeqs.get(clientId)
        lastSeqs.set(clientId, { seq, owner: pending?.owner ?? owner })
      },
      async readRows(table, keys) {
        const out = new Map<string, StoredRow>()
        if (keys.length === 0) return out
        const pk = table.primaryKey.map((k) => table.columnsByName.get(k)).filter((c) => c !== undefined)
        const src = await source(table.primaryKey, keys.length, (r, c) => {
          const col = must(pk[c], 'key column')
          return encodeValue(col, must(keys[r], 'key')[col.name])
        })
        const from = src.from()
        const found = (
          await writeSql(
            `SELECT ${selectList(table, 'duckdb', 't')} FROM ${quoteIdent(table.name)} t JOIN ${from.sql} ON ${keyMatch(table)}`,
            from.params,
            src.cache,
          )
        ).getRowObjectsJS() as RawRow[]
        await src.done()
        let stored = storedKeys.get(table.name)
        if (stored === undefined) {
          stored = new Set()
          storedKeys.set(table.name, stored)
        }
        for (const raw of found) {
          const row = storedRowOf(table, raw)
          const key = canonicalKey(table, row.values)
          out.set(key, row)
          stored.add(key)
        }
        return out
      },
      async writeRows(table, writes) {
        await upsert(table, writes, false)
      },
      async writeNewer(table, writes) {
        const out = new Array<boolean>(writes.length).fill(false)
        for (const i of await upsert(table, writes, true)) out[i] = true
        return out
      },
      async addConflicts(conflicts: readonly NewConflict[]) {
        // one statement per FLUSH_ROWS conflicts (a group commit's conflicts arrive together); ids follow their order
        for (let at = 0; at < conflicts.length; at += FLUSH_ROWS) {
          const part = conflicts.slice(at, at + FLUSH_ROWS)
          await writeSql(
            `INSERT INTO _eddy_conflicts (table_name, key_json, stored_json, incoming_json, hlc, client_id, detected_at,
               tenant) VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, now(), ?)').join(', ')}`,
            part.flatMap((c) => [
              c.table,
              JSON.stringify(c.key),
              toJson(c.stored),
              toJson(c.incoming),
              c.hlc,
              c.clientId,
              c.tenant ?? null,
            ]),
            part.length <= CACHED_FLUSH_ROWS,
          )
        }
      },
      async deleteConflict(id) {
        const n = Number(id)
        if (!Number.isSafeInteger(n)) return false
        const found = await writeSql('DELETE FROM _eddy_conflicts WHERE id = ? RETURNING id', [n])
        return found.getRows().length > 0
      },
      async addEvent(e: NewEvent) {
        events.push(e)
      },
    }
    return { tx, flush }
  }

  const warehouse: Warehouse = {
    kind: 'duckdb',
    schema,
    async migrate() {
      await exclusive(async () => {
        try {
          for (const sql of BOOKKEEPING) await writer.run(sql)
          let altered = false
          const columnsOf = async (name: string): Promise<Set<string>> =>
            new Set(
              (
                await rows(
                  writer,
                  `SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'`,
                  [name],
                )
              ).map((r) => String(r.column_name)),
            )
          for (const [name, column, type] of BOOKKEEPING_ADDED) {
            if ((await columnsOf(name)).has(column)) continue
            await writer.run(`ALTER TABLE ${name} ADD COLUMN ${column} ${type}`)
            altered = true
          }
          for (const table of schema.tables.values()) {
            const cols = [
              ...table.columns.map((c) => `${quoteIdent(c.name)} ${sqlType(c, 'duckdb')}`),
              ...systemColumns(table).map(([n, t]) => `${n} ${t}`),
            ]
            await writer.run(
              `CREATE TABLE IF NOT EXISTS ${quoteIdent(table.name)} (${cols.join(', ')},
                 PRIMARY KEY (${table.primaryKey.map(quoteIdent).join(', ')}))`,
            )
            const existing = await columnsOf(table.name)
            // A grown schema: add what is missing, never drop. New system columns get defaults.
            for (const c of table.columns) {
              if (existing.has(c.name)) continue
              await writer.run(
                `ALTER TABLE ${quoteIdent(table.name)} ADD COLUMN ${quoteIdent(c.name)} ${sqlType(c, 'duckdb')}`,
              )
              altered = true
            }
            for (const [n, t] of systemColumns(table)) {
              if (existing.has(n)) continue
              await writer.run(
                `ALTER TABLE ${quoteIdent(table.name)} ADD COLUMN ${n} ${t.replace(' NOT NULL', '')}`,
              )
              altered = true
            }
          }
          if (altered) await writer.run('CHECKPOINT')
        } catch (e) {
          throw unavailable(e)
        }
      })
    },
    write(fn) {
      return exclusive(async () => {
        if (closed) throw new EddyError('warehouse_unavailable', 'the warehouse is closed')
        try {
          await writer.run('BEGIN TRANSACTION')
        } catch (e) {
          throw unavailable(e)
        }
        try {
          const { tx, flush } = txFor()
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
    pull(req: PullRequest) {
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
          for (const raw of found) {
            const s = storedRowOf(table, raw)
            all.push({
              table: table.name,
              key: keyOf(table, s.values),
              row: s.deleted ? null : s.values,
              hlc: s.hlc,
              version: BigInt(String(raw._version)),
            })
          }
        }
        await conn.run('COMMIT')
        all.sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0))
        return { changes: all.slice(0, req.limit), hasMore: all.length > req.limit }
      })
    },
    pullColumns(req) {
      return withReader((conn) => readColumns(conn, req))
    },
    highWater() {
      return withReader(async (conn) => {
        const r = await rows(conn, `SELECT value FROM _eddy_meta WHERE name = 'version'`)
        return BigInt(String(r[0]?.value ?? 0))
      })
    },
    digestEntries(table, tenant) {
      return withReader(async (conn) => {
        const params: DuckDBValue[] = []
        let where = 'NOT t._deleted'
        if (tenant !== undefined && table.tenantColumn !== undefined) {
          where += ` AND CAST(t.${quoteIdent(table.tenantColumn)} AS VARCHAR) = ?`
          params.push(tenant)
        }
        const pkCols = table.primaryKey.map((k) => table.columnsByName.get(k)).filter((c) => c !== undefined)
        const found = await rows(
          conn,
          `SELECT ${pkCols.map((c) => `${selectExpr(c, 'duckdb', 't')} AS ${quoteIdent(c.name)}`).join(', ')},
             t._hlc AS _hlc FROM ${quoteIdent(table.name)} t WHERE ${where}`,
          params,
        )
        return found.map((raw) => ({ key: keyOf(table, decodeRow(table, raw)), hlc: String(raw._hlc) }))
      })
    },
    events(limit, tenant) {
      return withReader(async (conn) => {
        const found = await rows(
          conn,
          `SELECT id, client_id, epoch_ms(received_at) AS received_at, mutations, applied, stale, duplicate,
             conflict, rejected, duration_ms FROM _eddy_sync_events
           ${tenant === undefined ? '' : 'WHERE tenant = ?'} ORDER BY id DESC LIMIT ?`,
          tenant === undefined ? [limit] : [tenant, limit],
        )
        return found.map((r) => syncEventFromRow(r, new Date(Number(r.received_at)).toISOString()))
      })
    },
    conflicts(tenant) {
      return withReader(async (conn) => {
        const found = await rows(
          conn,
          `SELECT id, table_name, key_json, stored_json, incoming_json, hlc, epoch_ms(detected_at) AS detected_at,
             tenant FROM _eddy_conflicts ORDER BY id`,
        )
        return found.flatMap((r) => {
          const c = conflictFromRow(r, new Date(Number(r.detected_at)).toISOString())
          return conflictInTenant(schema, c, tenant, pushedByOf(r)) ? [c] : []
        })
      })
    },
    async health() {
      await withReader(async (conn) => {
        await rows(conn, 'SELECT 1')
      })
    },
    prune({ keepEvents, maxAgeMs, now }) {
      return exclusive(async () => {
        try {
          if (keepEvents !== undefined) {
            await writer.run(
              `DELETE FROM _eddy_sync_events
               WHERE id NOT IN (SELECT id FROM _eddy_sync_events ORDER BY id DESC LIMIT ?)`,
              [keepEvents],
            )
          }
          if (maxAgeMs !== undefined) {
            const cutoff = now - maxAgeMs
            await writer.run(`DELETE FROM _eddy_sync_events WHERE received_at < CAST(? AS TIMESTAMP)`, [
              new Date(cutoff).toISOString(),
            ])
            // A tombstone's age is its stamp's wall time: the first 15 digits of `_hlc`.
            const stamp = String(Math.max(0, cutoff)).padStart(15, '0')
            for (const table of schema.tables.values()) {
              await writer.run(`DELETE FROM ${quoteIdent(table.name)} WHERE _deleted AND _hlc < ?`, [stamp])
            }
          }
        } catch (e) {
          throw unavailable(e)
        }
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
  return warehouse
}
