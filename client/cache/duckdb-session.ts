import type { AsyncDuckDBConnection } from '@duckdb/duckdb-wasm'
import { type ArrowTableLike, arrowToRows, textColumnsToIpc } from '../../shared/arrow-rows.ts'
import { EddyError } from '../../shared/errors.ts'
import type { Row } from '../../shared/schema.ts'
import { cacheError, ident, literal } from './duckdb-sql.ts'

/**
 * The cache's one DuckDB connection and the statements every part runs on it: queries as rows,
 * transactions, and relations of encoded rows (a VALUES list, or an Arrow staging table for large
 * batches). Callers run one operation at a time (the cache's queue).
 */
export interface DuckDbSession {
  readonly conn: AsyncDuckDBConnection
  run(sql: string): Promise<Row[]>
  /** The columns of a table or view, or undefined when nothing has that name. */
  columnsOf(name: string): Promise<string[] | undefined>
  /** Runs `fn` in one transaction; a failure rolls back and is wrapped by `cacheError`. */
  inTransaction<T>(what: string, fn: () => Promise<T>): Promise<T>
  /**
   * A relation of text columns named `names` holding `rows` (already encoded), usable in FROM as
   * `s`. Large batches are staged as an Arrow table; the returned `drop` removes it.
   */
  source(
    names: readonly string[],
    rows: ReadonlyArray<ReadonlyArray<string | null>>,
  ): Promise<{ from: string; drop: () => Promise<void> }>
  /** A fresh name for a staging table. */
  stageName(): string
  isClosed(): boolean
  /** Closes the connection; every later operation fails with `closed`. */
  close(): Promise<void>
}

export function createDuckDbSession(conn: AsyncDuckDBConnection, stagingThreshold: number): DuckDbSession {
  let stageSeq = 0
  let closed = false
  const run = async (sql: string): Promise<Row[]> =>
    arrowToRows((await conn.query(sql)) as unknown as ArrowTableLike)
  const stageName = (): string => `_eddy_stage_${++stageSeq}`

  return {
    conn,
    run,
    stageName,

    /**
     * A `LIMIT 0` binds that one relation; `information_schema.columns` (and `duckdb_columns()`)
     * bind every view in the database, DuckDB's own catalog views included, which is slow on
     * every cold start.
     */
    async columnsOf(name) {
      try {
        const res = (await conn.query(`SELECT * FROM ${ident(name)} LIMIT 0`)) as unknown as {
          schema: { fields: ReadonlyArray<{ name: string }> }
        }
        return res.schema.fields.map((f) => f.name)
      } catch (e) {
        if (/does not exist/i.test(e instanceof Error ? e.message : String(e))) return undefined
        throw e
      }
    },

    async inTransaction(what, fn) {
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
    },

    async source(names, rows) {
      if (rows.length <= stagingThreshold) {
        const values = rows.map((r) => `(${r.map(literal).join(', ')})`).join(',\n')
        return { from: `(VALUES ${values}) AS s(${names.map(ident).join(', ')})`, drop: async () => {} }
      }
      const name = stageName()
      const ipc = textColumnsToIpc(names.map((n, i) => ({ name: n, values: rows.map((r) => r[i] ?? null) })))
      await conn.insertArrowFromIPCStream(ipc, { name, create: true })
      return {
        from: `${ident(name)} AS s`,
        drop: async () => {
          await conn.query(`DROP TABLE IF EXISTS ${ident(name)}`)
        },
      }
    },

    isClosed: () => closed,
    async close() {
      closed = true
      await conn.close()
    },
  }
}
