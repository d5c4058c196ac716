import postgres from 'postgres'
import { canonicalKey } from '../../../shared/digest.ts'
import { EddyError } from '../../../shared/errors.ts'
import type { StoredRow } from '../../../shared/reconcile.ts'
import type { Row, Schema, Table } from '../../../shared/schema.ts'
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
import type {
  NewConflict,
  NewEvent,
  PulledChange,
  PullRequest,
  RowWrite,
  Warehouse,
  WarehouseTx,
} from '../warehouse.ts'
import { readColumns } from './postgres-arrow-read.ts'

export interface PostgresWarehouseOptions {
  schema: Schema
  /** `postgres://user@host:port/db` */
  url: string
  /** Put Eddy's tables in this schema (created if missing) instead of the connection's default. */
  searchPath?: string
  /** Pool size (default 10). */
  max?: number
}

type Sql = postgres.Sql
type Param = string | number | boolean | null | readonly (string | null)[]
type RawRow = Record<string, unknown>

/**
 * One postgres.js pool. postgres.js 3.4.9 cannot be trusted with a connection that has closed: its
 * socket is null until it reconnects, a query written to it then throws from a `setImmediate`
 * (an uncaught exception: porsager/postgres#1154, #1208), and a write cut short by the close stays
 * buffered and corrupts the connection's next startup. So a pool whose connection closed is
 * `broken`: nothing more is sent through it, and it is ended and replaced by a fresh one.
 */
interface Pool {
  broken: boolean
  readonly sql: Sql
}

/** Where a query goes: a pool, and either the pool itself or one of its transactions. */
interface Db {
  readonly pool: Pool
  readonly client: Sql | postgres.TransactionSql
}

/**
 * Seconds a retired pool's queries already sent (a COMMIT on another, healthy connection) get to
 * finish before its connections are destroyed; nothing new is sent through a broken pool.
 */
const RETIRE_GRACE_S = 1

/** PostgreSQL's `text[]`. */
const TEXT_ARRAY_OID = 1009

/** A `text[]` parameter as PostgreSQL's array literal: every element quoted, NULL for null. */
function textArrayLiteral(xs: unknown): string {
  if (!Array.isArray(xs)) return String(xs)
  const items = new Array<string>(xs.length)
  for (let i = 0; i < xs.length; i++) {
    const x: unknown = xs[i]
    if (x === null || x === undefined) {
      items[i] = 'NULL'
      continue
    }
    const text = String(x)
    // most values need no escaping: they skip the regex
    items[i] =
      text.includes('"') || text.includes('\\') ? `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"` : `"${text}"`
  }
  return `{${items.join(',')}}`
}

/** The advisory lock every write transaction takes first, so versions commit in order. */
const WRITE_LOCK = 0x3edd7

const BOOKKEEPING = [
  `CREATE TABLE IF NOT EXISTS _eddy_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
  `INSERT INTO _eddy_meta VALUES ('version', 0) ON CONFLICT DO NOTHING`,
  `CREATE TABLE IF NOT EXISTS _eddy_clients (client_id TEXT PRIMARY KEY, last_seq BIGINT NOT NULL, owner TEXT)`,
  `CREATE TABLE IF NOT EXISTS _eddy_sync_events (id BIGSERIAL PRIMARY KEY, client_id TEXT NOT NULL,
     received_at TIMESTAMPTZ NOT NULL, mutations INTEGER NOT NULL, applied INTEGER NOT NULL, stale INTEGER NOT NULL,
     duplicate INTEGER NOT NULL, conflict INTEGER NOT NULL, rejected INTEGER NOT NULL,
     duration_ms DOUBLE PRECISION NOT NULL, tenant TEXT)`,
  `CREATE TABLE IF NOT EXISTS _eddy_conflicts (id BIGSERIAL PRIMARY KEY, table_name TEXT NOT NULL,
     key_json TEXT NOT NULL, stored_json TEXT, incoming_json TEXT, hlc TEXT NOT NULL, client_id TEXT NOT NULL,
     detected_at TIMESTAMPTZ NOT NULL DEFAULT now(), tenant TEXT)`,
]

function systemColumns(table: Table): Array<[string, string]> {
  const cols: Array<[string, string]> = [
    ['_hlc', 'TEXT COLLATE "C" NOT NULL'],
    ['_deleted', 'BOOLEAN NOT NULL DEFAULT false'],
    ['_version', 'BIGINT NOT NULL DEFAULT 0'],
    ['_client_id', "TEXT NOT NULL DEFAULT ''"],
  ]
  if (table.conflict === 'merge') cols.push(['_col_hlcs', 'TEXT'])
  return cols
}

/** SQLSTATE classes and client codes that mean "the server is not there", not "the query is wrong". */
function isConnectionError(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false
  const code = 'code' in e ? String(e.code) : ''
  return (
    code.startsWith('08') ||
    ['57P01', '57P02', '57P03', '53300'].includes(code) ||
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EPIPE',
      'ENOTFOUND',
      'EHOSTUNREACH',
      'CONNECT_TIMEOUT',
      'CONNECTION_CLOSED',
      'CONNECTION_ENDED',
      'CONNECTION_DESTROYED',
    ].includes(code)
  )
}

function unavailable(cause?: unknown): EddyError {
  return new EddyError('warehouse_unavailable', 'the PostgreSQL warehouse is unreachable', { cause })
}

function mapError(e: unknown): unknown {
  if (e instanceof EddyError) return e
  if (isConnectionError(e)) return unavailable(e)
  return e
}

async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    throw mapError(e)
  }
}

function toJson(v: Row | null): string | null {
  return v === null ? null : JSON.stringify(v)
}

/**
 * The PostgreSQL warehouse (the `postgres` client). Writes take `pg_advisory_xact_lock` first, so
 * they commit one after another in version order; loads go through `unnest` of text arrays into
 * one set-based upsert. Connection failures surface as `warehouse_unavailable`; a pool that lost a
 * connection is replaced, so the next call reconnects once the server is back (see `Pool`).
 */
export async function openPostgresWarehouse(opts: PostgresWarehouseOptions): Promise<Warehouse> {
  const { schema } = opts
  let closing = false

  /**
   * A fresh postgres.js pool. Any connection of it closing marks the whole pool broken, and the
   * next call gets a new pool: see `Pool` for why a broken one is never used again.
   */
  function openPool(): Pool {
    const pool: Pool = {
      broken: false,
      sql: postgres(opts.url, {
        max: opts.max ?? 10,
        onnotice: () => {},
        connect_timeout: 5,
        // No idle or lifetime recycling: a connection closes only when the server or the network
        // drops it (or on close()), so every close is a failure and retires the pool.
        idle_timeout: 0,
        max_lifetime: 0,
        onclose: () => retire(pool),
        // The array-type lookup postgres.js runs on each new connection is a promise nobody awaits:
        // if the server dies during it, its rejection is unhandled and kills the process. Eddy only
        // sends text[] parameters, so it serialises those itself and skips the lookup.
        fetch_types: false,
        types: {
          textArray: { to: TEXT_ARRAY_OID, from: [], serialize: textArrayLiteral, parse: (x: string) => x },
        },
        // dates read back as YYYY-MM-DD whatever the server's default DateStyle
        connection: {
          DateStyle: 'ISO, YMD',
          ...(opts.searchPath === undefined ? {} : { search_path: opts.searchPath }),
        },
      }),
    }
    return pool
  }

  /** Marks a pool broken (once), swaps in a new one, and ends the old one, in-flight work and all. */
  function retire(pool: Pool): void {
    if (pool.broken) return
    pool.broken = true
    if (current === pool && !closing) current = openPool()
    // Healthy transactions still running on it get a moment; the rest are destroyed.
    pool.sql.end({ timeout: RETIRE_GRACE_S }).catch(() => {})
  }

  let current = openPool()
  /** The server's `server_encoding`, once asked (see `sendsStoredBytes`). */
  let serverEncoding: Promise<string> | undefined
  /** Queries outside a transaction: whichever pool is current when the query is issued. */
  const sql: Db = {
    get pool() {
      return current
    },
    get client() {
      return current.sql
    },
  }

  /**
   * Every query goes through here. The broken check and the query's dispatch to its connection
   * happen in one run of microtasks (postgres.js executes a query on the `then` that `await`
   * makes), while a connection's close (which nulls its socket, then calls `onclose`) always runs
   * from a socket event, so no query is ever written to a connection that has closed.
   */
  const q = (db: Db, text: string, params: readonly Param[] = []): Promise<RawRow[]> => {
    const { pool, client } = db
    if (pool.broken) return Promise.reject(unavailable())
    return client.unsafe(text, params as postgres.ParameterOrJSON<never>[]) as unknown as Promise<RawRow[]>
  }

  /**
   * `fn` in one transaction (`sql.begin`). postgres.js writes its own COMMIT when `fn` settles and
   * its own ROLLBACK when `fn` throws, and if the connection closed meanwhile that write lands on
   * a null socket and throws from a timer: an uncaught exception (porsager/postgres#1208). So once
   * the pool is broken, `fn`'s promise is left pending instead: postgres.js sends nothing more,
   * `begin` itself rejects (it races `fn` against the connection's close), and the server has
   * rolled back or will when the retired pool ends. The check and postgres.js's COMMIT/ROLLBACK
   * run in the same run of microtasks, so a close cannot slip in between.
   */
  async function transaction<T>(mode: string, fn: (db: Db) => Promise<T>): Promise<T> {
    const pool = current
    if (pool.broken) throw unavailable()
    const stuck = new Promise<never>(() => {})
    try {
      return (await pool.sql.begin(mode, async (tx) => {
        let result: T
        try {
          result = await fn({ pool, client: tx })
        } catch (e) {
          if (pool.broken) return stuck
          throw e
        }
        return pool.broken ? stuck : result
      })) as T
    } catch (e) {
      // A failure while the connection went away is the outage, whatever the query said.
      throw pool.broken && !(e instanceof EddyError) ? unavailable(e) : e
    }
  }

  if (opts.searchPath !== undefined) {
    await guard(() => q(sql, `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(opts.searchPath ?? '')}`))
  }

  /**
   * A write transaction's operations, and the flush that runs before its COMMIT: the clients'
   * lastSeqs and the audit events are kept until then and written by one statement, so a
   * group-committed transaction of many pushes does not pay two round trips per push for them.
   * Reads inside the transaction see them: `client` overlays the lastSeqs not yet written.
   */
  function txFor(db: Db): { tx: WarehouseTx; flush(): Promise<void> } {
    const lastSeqs = new Map<string, { seq: number; owner: string | undefined }>()
    const events: NewEvent[] = []
    const flush = async (): Promise<void> => {
      if (lastSeqs.size === 0 && events.length === 0) return
      const seqs = [...lastSeqs]
      const added = events.splice(0)
      lastSeqs.clear()
      const col = <T>(
        xs: readonly T[],
        f: (x: T) => string | number | null | undefined,
      ): Array<string | null> =>
        xs.map((x) => {
          const v = f(x)
          return v === null || v === undefined ? null : String(v)
        })
      // one statement for both (a data-modifying CTE); events keep their order, so their ids do too
      await q(
        db,
        `WITH clients AS (
           INSERT INTO _eddy_clients (client_id, last_seq, owner)
           SELECT s.client_id, s.last_seq::bigint, s.owner FROM unnest($1::text[], $2::text[], $3::text[])
             AS s(client_id, last_seq, owner)
           ON CONFLICT (client_id) DO UPDATE
           SET last_seq = excluded.last_seq, owner = coalesce(_eddy_clients.owner, excluded.owner)
         )
         INSERT INTO _eddy_sync_events (client_id, received_at, mutations, applied, stale, duplicate, conflict,
           rejected, duration_ms, tenant)
         SELECT s.client_id, s.received_at::timestamptz, s.mutations::int, s.applied::int, s.stale::int,
           s.duplicate::int, s.conflict::int, s.rejected::int, s.duration_ms::float8, s.tenant
         FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
           $11::text[], $12::text[], $13::text[]) WITH ORDINALITY
           AS s(client_id, received_at, mutations, applied, stale, duplicate, conflict, rejected, duration_ms,
             tenant, n)
         ORDER BY s.n`,
        [
          col(seqs, ([clientId]) => clientId),
          col(seqs, ([, p]) => p.seq),
          col(seqs, ([, p]) => p.owner),
          col(added, (e) => e.clientId),
          col(added, (e) => e.receivedAt),
          col(added, (e) => e.mutations),
          col(added, (e) => e.applied),
          col(added, (e) => e.stale),
          col(added, (e) => e.duplicate),
          col(added, (e) => e.conflict),
          col(added, (e) => e.rejected),
          col(added, (e) => e.durationMs),
          col(added, (e) => e.tenant),
        ],
      )
    }
    return { tx: txOps(db, lastSeqs, events), flush }
  }

  function txOps(
    db: Db,
    lastSeqs: Map<string, { seq: number; owner: string | undefined }>,
    events: NewEvent[],
  ): WarehouseTx {
    /** Clients' stored bookkeeping read by `preloadClients`. */
    const preloaded = new Map<string, { lastSeq: number; owner: string | undefined }>()
    /**
     * One set-based upsert, rows numbered with fresh versions in order. lww tables keep the hlc
     * guard in SQL: an older stamp never overwrites a newer row. With `report`, resolves the
     * positions of the rows actually written (the guard skips the others).
     */
    const upsert = async (table: Table, writes: readonly RowWrite[], report: boolean): Promise<number[]> => {
      if (writes.length === 0) return []
      const bumped = await q(
        db,
        `UPDATE _eddy_meta SET value = value + $1 WHERE name = 'version' RETURNING value`,
        [writes.length],
      )
      const top = BigInt(String(bumped[0]?.value ?? writes.length))
      const first = top - BigInt(writes.length) + 1n
      const merge = table.conflict === 'merge'
      const names = [...table.columns.map((c) => c.name), '_hlc', '_deleted', '_version', '_client_id']
      if (merge) names.push('_col_hlcs')
      // one text array per column, filled column by column (no array per row)
      const arrays: Array<Array<string | null>> = table.columns.map((c) =>
        writes.map((w) => encodeValue(c, w.row.values[c.name])),
      )
      // versions as numbers while they are exact (a BigInt per row is one more object per row)
      const small = top <= BigInt(Number.MAX_SAFE_INTEGER)
      const firstNumber = Number(first)
      arrays.push(
        writes.map((w) => w.row.hlc),
        writes.map((w) => (w.row.deleted ? 'true' : 'false')),
        writes.map((_, i) => (small ? String(firstNumber + i) : (first + BigInt(i)).toString())),
        writes.map((w) => w.clientId),
      )
      if (merge)
        arrays.push(
          writes.map((w) => (w.row.columnHlcs === undefined ? null : JSON.stringify(w.row.columnHlcs))),
        )
      const casts = [
        ...table.columns.map((c) => `s.${quoteIdent(c.name)}::${sqlType(c, 'postgres')}`),
        's._hlc',
        's._deleted::boolean',
        's._version::bigint',
        's._client_id',
      ]
      if (merge) casts.push('s._col_hlcs')
      const updates = names
        .filter((n) => !table.primaryKey.includes(n))
        .map((n) => `${quoteIdent(n)} = excluded.${quoteIdent(n)}`)
      const where = table.conflict === 'lww' ? ' WHERE excluded._hlc > t._hlc' : ''
      const insert = `INSERT INTO ${quoteIdent(table.name)} AS t (${names.map(quoteIdent).join(', ')})
           SELECT ${casts.join(', ')}
           FROM unnest(${names.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS s(${names.map(quoteIdent).join(', ')})
           ON CONFLICT (${table.primaryKey.map(quoteIdent).join(', ')}) DO UPDATE SET ${updates.join(', ')}${where}`
      if (!report) {
        await q(db, insert, arrays)
        return []
      }
      // One row back, not one per written row: the count, and the written positions only when the
      // guard skipped some (parsing 10,000 rows costs the edge's thread more than the statement).
      const [found] = await q(
        db,
        `WITH w AS (${insert} RETURNING (t._version - $${names.length + 1}::bigint)::int AS i)
         SELECT count(*)::int AS n, CASE WHEN count(*) < $${names.length + 2}::int THEN string_agg(i::text, ',') END AS i FROM w`,
        [...arrays, first.toString(), writes.length],
      )
      if (Number(found?.n) === writes.length) return Array.from({ length: writes.length }, (_, i) => i)
      const written = found?.i
      if (written === null || written === undefined) return []
      return String(written).split(',').map(Number)
    }
    return {
      async preloadClients(clientIds) {
        const found = await q(
          db,
          'SELECT client_id, last_seq, owner FROM _eddy_clients WHERE client_id = ANY($1::text[])',
          [[...clientIds]],
        )
        for (const id of clientIds) preloaded.set(id, clientFromRow(undefined))
        for (const r of found) preloaded.set(String(r.client_id), clientFromRow(r))
      },
      async client(clientId) {
        // what is stored does not change before the flush: a preloaded answer stays true
        const stored =
          preloaded.get(clientId) ??
          clientFromRow(
            (await q(db, 'SELECT last_seq, owner FROM _eddy_clients WHERE client_id = $1', [clientId]))[0],
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
        const arrays = pk.map((c) => keys.map((key) => encodeValue(c, key[c.name])))
        const on = pk
          .map((c) => `t.${quoteIdent(c.name)} = s.${quoteIdent(c.name)}::${sqlType(c, 'postgres')}`)
          .join(' AND ')
        const found = await q(
          db,
          `SELECT ${selectList(table, 'postgres', 't')} FROM ${quoteIdent(table.name)} t
           JOIN unnest(${pk.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS s(${pk.map((c) => quoteIdent(c.name)).join(', ')})
           ON ${on}`,
          arrays,
        )
        for (const raw of found) {
          const row = storedRowOf(table, raw)
          out.set(canonicalKey(table, row.values), row)
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
        if (conflicts.length === 0) return
        await q(
          db,
          `INSERT INTO _eddy_conflicts (table_name, key_json, stored_json, incoming_json, hlc, client_id, tenant)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])`,
          [
            conflicts.map((c) => c.table),
            conflicts.map((c) => JSON.stringify(c.key)),
            conflicts.map((c) => toJson(c.stored)),
            conflicts.map((c) => toJson(c.incoming)),
            conflicts.map((c) => c.hlc),
            conflicts.map((c) => c.clientId),
            conflicts.map((c) => c.tenant ?? null),
          ],
        )
      },
      async deleteConflict(id) {
        if (!/^\d{1,18}$/.test(id)) return false
        const found = await q(db, 'DELETE FROM _eddy_conflicts WHERE id = $1::bigint RETURNING id', [id])
        return found.length > 0
      },
      async addEvent(e: NewEvent) {
        events.push(e)
      },
    }
  }

  /** One transaction holding the write lock. */
  function locked<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    return guard(() =>
      transaction('', async (db) => {
        await q(db, 'SELECT pg_advisory_xact_lock($1)', [WRITE_LOCK])
        return fn(db)
      }),
    )
  }

  return {
    kind: 'postgres',
    schema,
    writesElsewhere: true,
    async migrate() {
      await locked(async (db) => {
        for (const text of BOOKKEEPING) await q(db, text)
        // The pushing caller's tenant (null: none), for scoping the audit trail and conflicts. Looked up
        // first: ALTER takes an exclusive lock on the table even when the column exists.
        for (const name of ['_eddy_sync_events', '_eddy_conflicts']) {
          const found = await q(
            db,
            `SELECT 1 FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'tenant'`,
            [name],
          )
          if (found.length === 0) await q(db, `ALTER TABLE ${name} ADD COLUMN tenant TEXT`)
        }
        for (const table of schema.tables.values()) {
          const cols = [
            ...table.columns.map((c) => `${quoteIdent(c.name)} ${sqlType(c, 'postgres')}`),
            ...systemColumns(table).map(([n, t]) => `${n} ${t}`),
          ]
          await q(
            db,
            `CREATE TABLE IF NOT EXISTS ${quoteIdent(table.name)} (${cols.join(', ')},
               PRIMARY KEY (${table.primaryKey.map(quoteIdent).join(', ')}))`,
          )
          const existing = new Set(
            (
              await q(
                db,
                `SELECT column_name FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1`,
                [table.name],
              )
            ).map((r) => String(r.column_name)),
          )
          for (const c of table.columns) {
            if (!existing.has(c.name))
              await q(
                db,
                `ALTER TABLE ${quoteIdent(table.name)} ADD COLUMN ${quoteIdent(c.name)} ${sqlType(c, 'postgres')}`,
              )
          }
          for (const [n, t] of systemColumns(table)) {
            if (!existing.has(n)) await q(db, `ALTER TABLE ${quoteIdent(table.name)} ADD COLUMN ${n} ${t}`)
          }
          await q(
            db,
            `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${table.name}__eddy_version`)} ON ${quoteIdent(table.name)} (_version)`,
          )
        }
      })
    },
    write(fn) {
      return locked(async (db) => {
        const { tx, flush } = txFor(db)
        const out = await fn(tx)
        await flush()
        return out
      })
    },
    pull(req: PullRequest) {
      return guard(async () => {
        // One snapshot for every table, so the merged version order has no holes.
        const all = await transaction('isolation level repeatable read read only', async (db) => {
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
              db,
              `SELECT ${selectList(table, 'postgres', 't')} FROM ${quoteIdent(table.name)} t
               WHERE t._version > $1::bigint${tenantFilter} ORDER BY t._version LIMIT $${params.length}`,
              params,
            )
            for (const raw of found) {
              const s = storedRowOf(table, raw)
              out.push({
                table: table.name,
                key: keyOf(table, s.values),
                row: s.deleted ? null : s.values,
                hlc: s.hlc,
                version: BigInt(String(raw._version)),
              })
            }
          }
          return out
        })
        all.sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0))
        return { changes: all.slice(0, req.limit), hasMore: all.length > req.limit }
      })
    },
    pullColumns(req) {
      // one statement (one snapshot) for one table: no transaction needed for a hole-free page
      return guard(async () => {
        // a database's encoding never changes: asked once (again only after a failure)
        serverEncoding ??= q(sql, 'SHOW server_encoding').then((r) => String(r[0]?.server_encoding))
        const encoding = await serverEncoding.catch((e: unknown) => {
          serverEncoding = undefined
          throw e
        })
        return readColumns(
          async (text, params, onRow) => {
            const { pool, client } = sql
            if (pool.broken) throw unavailable()
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
    digestEntries(table, tenant) {
      return guard(async () => {
        const params: Param[] = []
        let where = 'NOT t._deleted'
        if (tenant !== undefined && table.tenantColumn !== undefined) {
          params.push(tenant)
          where += ` AND t.${quoteIdent(table.tenantColumn)}::text = $1`
        }
        const pkCols = table.primaryKey.map((k) => table.columnsByName.get(k)).filter((c) => c !== undefined)
        const found = await q(
          sql,
          `SELECT ${pkCols.map((c) => `${selectExpr(c, 'postgres', 't')} AS ${quoteIdent(c.name)}`).join(', ')},
             t._hlc AS _hlc FROM ${quoteIdent(table.name)} t WHERE ${where}`,
          params,
        )
        return found.map((raw) => ({ key: keyOf(table, decodeRow(table, raw)), hlc: String(raw._hlc) }))
      })
    },
    events(limit, tenant) {
      return guard(async () => {
        const found = await q(
          sql,
          `SELECT id, client_id, floor(extract(epoch from received_at) * 1000)::float8 AS received_at, mutations,
             applied, stale, duplicate, conflict, rejected, duration_ms
           FROM _eddy_sync_events ${tenant === undefined ? '' : 'WHERE tenant = $2'} ORDER BY id DESC LIMIT $1`,
          tenant === undefined ? [limit] : [limit, tenant],
        )
        return found.map((r) => syncEventFromRow(r, new Date(Number(r.received_at)).toISOString()))
      })
    },
    conflicts(tenant) {
      return guard(async () => {
        const found = await q(
          sql,
          `SELECT id, table_name, key_json, stored_json, incoming_json, hlc,
             floor(extract(epoch from detected_at) * 1000)::float8 AS detected_at, tenant
           FROM _eddy_conflicts ORDER BY id`,
        )
        return found.flatMap((r) => {
          const c = conflictFromRow(r, new Date(Number(r.detected_at)).toISOString())
          return conflictInTenant(schema, c, tenant, pushedByOf(r)) ? [c] : []
        })
      })
    },
    async health() {
      await guard(() => q(sql, 'SELECT 1'))
    },
    highWater() {
      // the counter commits with the rows it numbered (writes hold WRITE_LOCK), so all below it are visible
      return guard(async () => {
        const r = await q(sql, `SELECT value::text AS value FROM _eddy_meta WHERE name = 'version'`)
        return BigInt(String(r[0]?.value ?? 0))
      })
    },
    async prune({ keepEvents, maxAgeMs, now }) {
      await locked(async (db) => {
        if (keepEvents !== undefined) {
          await q(
            db,
            `DELETE FROM _eddy_sync_events
             WHERE id NOT IN (SELECT id FROM _eddy_sync_events ORDER BY id DESC LIMIT $1)`,
            [keepEvents],
          )
        }
        if (maxAgeMs !== undefined) {
          const cutoff = now - maxAgeMs
          await q(db, 'DELETE FROM _eddy_sync_events WHERE received_at < $1::timestamptz', [
            new Date(cutoff).toISOString(),
          ])
          // A tombstone's age is its stamp's wall time: the first 15 digits of `_hlc`.
          const stamp = String(Math.max(0, cutoff)).padStart(15, '0')
          for (const table of schema.tables.values()) {
            await q(db, `DELETE FROM ${quoteIdent(table.name)} WHERE _deleted AND _hlc < $1`, [stamp])
          }
        }
      })
    },
    async close() {
      closing = true
      await current.sql.end({ timeout: 5 })
    },
  }
}
