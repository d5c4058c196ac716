import postgres from 'postgres'
import { EddyError } from '../../../shared/errors.ts'
import { quoteIdent } from '../column-codec.ts'

/**
 * The PostgreSQL warehouse's connections: a postgres.js pool that is replaced when it loses a
 * connection, the one function every query goes through, transactions, and which failures mean
 * "the server is not there" (`warehouse_unavailable`) rather than "the query is wrong".
 *
 * postgres.js 3.4.9 cannot be trusted with a connection that has closed: its socket is null until it
 * reconnects, a query written to it then throws from a `setImmediate` (an uncaught exception:
 * porsager/postgres#1154, #1208), and a write cut short by the close stays buffered and corrupts the
 * connection's next startup. So a pool whose connection closed is `broken`: nothing more is sent
 * through it, and it is ended and replaced by a fresh one.
 */

export type Param = string | number | boolean | null | readonly (string | null)[]
export type RawRow = Record<string, unknown>

interface Pool {
  broken: boolean
  readonly sql: postgres.Sql
}

/** Where a query goes: a pool, and either the pool itself or one of its transactions. */
export interface Db {
  readonly pool: Pool
  readonly client: postgres.Sql | postgres.TransactionSql
}

export interface PoolOptions {
  /** `postgres://user@host:port/db` */
  readonly url: string
  /** The schema Eddy's tables live in, instead of the connection's default. */
  readonly searchPath?: string | undefined
  /** Pool size. */
  readonly max: number
}

/**
 * Seconds a retired pool's queries already sent (a COMMIT on another, healthy connection) get to
 * finish before its connections are destroyed; nothing new is sent through a broken pool.
 */
const RETIRE_GRACE_S = 1

/** Seconds to wait for a connection before the server counts as unreachable. */
const CONNECT_TIMEOUT_S = 5

/** Seconds `close()` gives queries in flight before the connections are destroyed. */
const CLOSE_TIMEOUT_S = 5

/** PostgreSQL's `text[]`. */
const TEXT_ARRAY_OID = 1009

/** The advisory lock every write transaction takes first, so versions commit in order. */
const WRITE_LOCK = 0x3edd7

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

export function unavailable(cause?: unknown): EddyError {
  return new EddyError('warehouse_unavailable', 'the PostgreSQL warehouse is unreachable', { cause })
}

/** `fn`, with connection failures as `warehouse_unavailable` (anything else passes unchanged). */
export async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    throw e instanceof EddyError || !isConnectionError(e) ? e : unavailable(e)
  }
}

/**
 * Every query goes through here. The broken check and the query's dispatch to its connection
 * happen in one run of microtasks (postgres.js executes a query on the `then` that `await` makes),
 * while a connection's close (which nulls its socket, then calls `onclose`) always runs from a
 * socket event, so no query is ever written to a connection that has closed.
 */
export function q(db: Db, text: string, params: readonly Param[] = []): Promise<RawRow[]> {
  const { pool, client } = db
  if (pool.broken) return Promise.reject(unavailable())
  return client.unsafe(text, params as postgres.ParameterOrJSON<never>[]) as unknown as Promise<RawRow[]>
}

/** The warehouse's connections: see the module comment. */
export interface PostgresPool {
  /** Queries outside a transaction: whichever pool is current when the query is issued. */
  readonly db: Db
  /** `fn` in one transaction (`mode`: what follows BEGIN). */
  transaction<T>(mode: string, fn: (db: Db) => Promise<T>): Promise<T>
  /** `fn` in one transaction that holds the write lock, failures mapped by `guard`. */
  locked<T>(fn: (db: Db) => Promise<T>): Promise<T>
  /** Ends every connection. */
  close(): Promise<void>
}

/** Opens the pool (and creates `searchPath`'s schema when missing). */
export async function openPostgresPool(opts: PoolOptions): Promise<PostgresPool> {
  let closing = false

  /**
   * A fresh postgres.js pool. Any connection of it closing marks the whole pool broken, and the
   * next call gets a new pool: see the module comment for why a broken one is never used again.
   */
  function openPool(): Pool {
    const pool: Pool = {
      broken: false,
      sql: postgres(opts.url, {
        max: opts.max,
        onnotice: () => {},
        connect_timeout: CONNECT_TIMEOUT_S,
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
  const db: Db = {
    get pool() {
      return current
    },
    get client() {
      return current.sql
    },
  }

  /**
   * postgres.js writes its own COMMIT when `fn` settles and its own ROLLBACK when `fn` throws, and
   * if the connection closed meanwhile that write lands on a null socket and throws from a timer: an
   * uncaught exception (porsager/postgres#1208). So once the pool is broken, `fn`'s promise is left
   * pending instead: postgres.js sends nothing more, `begin` itself rejects (it races `fn` against
   * the connection's close), and the server has rolled back or will when the retired pool ends. The
   * check and postgres.js's COMMIT/ROLLBACK run in the same run of microtasks, so a close cannot
   * slip in between.
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
    await guard(() => q(db, `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(opts.searchPath ?? '')}`))
  }

  return {
    db,
    transaction,
    locked: (fn) =>
      guard(() =>
        transaction('', async (tx) => {
          await q(tx, 'SELECT pg_advisory_xact_lock($1)', [WRITE_LOCK])
          return fn(tx)
        }),
      ),
    async close() {
      closing = true
      await current.sql.end({ timeout: CLOSE_TIMEOUT_S })
    },
  }
}
