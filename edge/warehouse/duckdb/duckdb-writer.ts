import type {
  DuckDBConnection,
  DuckDBPreparedStatement,
  DuckDBResultReader,
  DuckDBType,
  DuckDBValue,
} from '@duckdb/node-api'
import { intoTable, type Staged, stageRows } from './duckdb-staging.ts'

/** Prepared statements kept on the write connection (least recently used ones are dropped). */
const MAX_PREPARED = 256

/**
 * The DuckDB warehouse's one write connection: statements run on it, statements prepared once, and
 * row sets staged for one statement. Only ever used under the write mutex, so a statement's bind
 * and run never interleave with another's.
 */
export interface DuckDbWriter {
  readonly conn: DuckDBConnection
  /**
   * Runs a statement. With `cache` (the default) a parameterised statement is prepared once per
   * text and kept: `run(sql, params)` would extract, prepare and plan it on every call (three trips
   * to DuckDB's threads before it runs), and a small push runs several such statements. `types`
   * fixes the parameters' types (a list's is otherwise guessed from its first item).
   */
  sql(sql: string, params: DuckDBValue[], cache?: boolean, types?: DuckDBType[]): Promise<DuckDBResultReader>
  /**
   * Text rows staged for one statement (`duckdb-staging.ts`); `cell(row, column)` gives each value,
   * so nothing is copied into row arrays first (the push's own objects are still alive, and the
   * collector would copy those arrays on every young-generation pass).
   */
  stage(
    columns: readonly string[],
    count: number,
    cell: (row: number, column: number) => string | null,
  ): Promise<Staged>
  /** Staged rows as a temp table (see `intoTable`). */
  intoTable(staged: Staged, columns: readonly string[]): Promise<Staged>
}

export function createDuckDbWriter(conn: DuckDBConnection): DuckDbWriter {
  const prepared = new Map<string, DuckDBPreparedStatement>()
  let stageCounter = 0
  /** A temp table name no live staging uses. */
  const tempName = (): string => {
    stageCounter += 1
    return `_eddy_stage_${stageCounter}`
  }
  return {
    conn,
    async sql(sql, params, cache = true, types) {
      if (params.length === 0) return conn.runAndReadAll(sql)
      if (!cache) return conn.runAndReadAll(sql, params, types)
      let statement = prepared.get(sql)
      if (statement === undefined) {
        statement = await conn.prepare(sql)
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
    },
    stage: (columns, count, cell) => stageRows(conn, columns, count, cell, tempName),
    intoTable: (staged, columns) => intoTable(conn, staged, columns, tempName),
  }
}
