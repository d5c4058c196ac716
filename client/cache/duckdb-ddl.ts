import { EddyError, must } from '../../shared/errors.ts'
import type { Table } from '../../shared/schema.ts'
import { sqlType } from '../../shared/sql-types.ts'
import type { DuckDbSession } from './duckdb-session.ts'
import { ident, physical, SYSTEM_COLUMNS } from './duckdb-sql.ts'

/**
 * The cache's tables and views. Each schema table `t` is stored in `_eddy_t` (its columns plus
 * the system columns, primary key as declared), and `t` itself is a VIEW of the live rows.
 */
export interface DuckDbDdl {
  /**
   * Creates what is missing (tables, columns added to the schema, views) and nothing else: one
   * catalog read, and DDL only when the catalog differs. On an OPFS file a start that rewrote the
   * views every time paid a catalog write before its first query (cold start). A repeated init of
   * the same schema (`signatureOf`) does nothing. Run it inside the cache's queue.
   */
  init(tables: readonly Table[], signature: string): Promise<void>
  /** A physical table's columns in the table's order (read once per init). */
  physicalColumns(t: Table): Promise<readonly string[]>
}

/** What `init` makes sure of: the tables, their keys, columns and cache types. */
export function signatureOf(tables: readonly Table[]): string {
  return JSON.stringify(
    tables.map((t) => [t.name, t.primaryKey, t.columns.map((c) => [c.name, sqlType(c, 'cache')])]),
  )
}

export function createDuckDbDdl(s: DuckDbSession): DuckDbDdl {
  /** The tables the last `init` made sure of. */
  let initialized: string | undefined
  const physicalColumns = new Map<string, readonly string[]>()

  return {
    async init(tables, signature) {
      if (s.isClosed()) throw new EddyError('closed', 'the cache is closed')
      if (signature === initialized) return
      const names = tables.flatMap((t) => [physical(t), t.name])
      const found = new Map<string, string[]>()
      for (const name of names) {
        const columns = await s.columnsOf(name)
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
        await s.inTransaction('init', async () => {
          for (const sql of ddl) await s.conn.query(sql)
        })
      }
      initialized = signature
    },

    async physicalColumns(t) {
      let columns = physicalColumns.get(t.name)
      if (columns === undefined) {
        columns = must(await s.columnsOf(physical(t)), `no cache table for '${t.name}'`)
        physicalColumns.set(t.name, columns)
      }
      return columns
    },
  }
}
