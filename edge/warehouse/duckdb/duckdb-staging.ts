import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api'
import { quoteIdent } from '../column-codec.ts'

/**
 * How the DuckDB warehouse hands a set of text rows to one statement. Three forms, each exact
 * (every value arrives as written, NULL stays NULL, `''` stays `''`):
 *
 * - small sets: the values as parameters of a `VALUES` list;
 * - larger sets: one parameter per column holding the column's values joined by `SEPARATOR`,
 *   split back in SQL (`string_split` + `unnest`, the columns zipped in order). A NULL travels as
 *   `NULL_MARK`. One native value per column instead of one per cell (about twice as fast as the
 *   appender), and the statement text does not depend on the row count, so it is prepared once;
 * - otherwise (a value contains `SEPARATOR`, or is exactly `NULL_MARK`, so packing would split or
 *   misread it): the appender, into a fresh temp table.
 *
 * The separator is one byte in UTF-8 (0x1F, unit separator) and never part of a multi-byte
 * sequence, so splitting the UTF-8 text on it cannot cut a character.
 */
const SEPARATOR = '\x1f'
const NULL_MARK = '\x1e'

/**
 * Up to this many values (rows × columns), rows travel as `VALUES` parameters: for a handful of
 * rows they beat the packed form (no split in SQL), past a couple of dozen rows they fall behind.
 */
const MAX_VALUES_CELLS = 128

/** A staged row set as a relation `s` with one text column per staged column. */
export interface Staged {
  /** Which form carries it. */
  readonly kind: 'values' | 'packed' | 'table'
  /**
   * The relation (aliased `s`) and the parameters that carry it, with the given columns (by
   * index; all when omitted), so a statement that needs only the key pays only for the key.
   */
  from(columns?: readonly number[]): { sql: string; params: DuckDBValue[] }
  /** Whether statements over it are worth preparing (their text recurs). */
  readonly cache: boolean
  /** Drops what staging created. */
  done(): Promise<void>
}

/**
 * The columns' values, each column's joined by `SEPARATOR` with NULL as `NULL_MARK`; undefined when
 * a value would not survive the round trip (it contains `SEPARATOR` or is `NULL_MARK`).
 */
function packColumns(
  width: number,
  count: number,
  cell: (row: number, column: number) => string | null,
): string[] | undefined {
  const packed: string[] = []
  const parts = new Array<string>(count)
  for (let c = 0; c < width; c++) {
    for (let r = 0; r < count; r++) {
      const v = cell(r, c)
      if (v === null) parts[r] = NULL_MARK
      else if (v === NULL_MARK || v.includes(SEPARATOR)) return undefined
      else parts[r] = v
    }
    packed.push(parts.join(SEPARATOR))
  }
  return packed
}

function all(width: number): number[] {
  return Array.from({ length: width }, (_, c) => c)
}

/**
 * Stages `count` rows of `columns` (each value from `cell`) on `conn`, in the cheapest exact form.
 * `tempName` names a temp table that no other live staging uses (needed only for the appender).
 */
export async function stageRows(
  conn: DuckDBConnection,
  columns: readonly string[],
  count: number,
  cell: (row: number, column: number) => string | null,
  tempName: () => string,
): Promise<Staged> {
  const width = columns.length
  const names = columns.map(quoteIdent)
  if (count * width <= MAX_VALUES_CELLS) {
    const values: Array<string | null> = new Array(count * width)
    for (let r = 0; r < count; r++) for (let c = 0; c < width; c++) values[r * width + c] = cell(r, c)
    return {
      kind: 'values',
      from(cols = all(width)) {
        const params: DuckDBValue[] = []
        for (let r = 0; r < count; r++) for (const c of cols) params.push(values[r * width + c] ?? null)
        const tuple = `(${cols.map(() => 'CAST(? AS VARCHAR)').join(', ')})`
        return {
          sql: `(VALUES ${new Array<string>(count).fill(tuple).join(', ')}) AS s(${cols.map((c) => names[c]).join(', ')})`,
          params,
        }
      },
      cache: true,
      done: async () => {},
    }
  }
  const packed = packColumns(width, count, cell)
  if (packed !== undefined) {
    return {
      kind: 'packed',
      from(cols = all(width)) {
        // unnest in an inner select, nullif outside it: DuckDB evaluates a function wrapped
        // around unnest row by row, far slower on large sets
        const split = cols.map((c) => `unnest(string_split(CAST(? AS VARCHAR), chr(31))) AS ${names[c]}`)
        const nulls = cols.map((c) => `nullif(${names[c]}, chr(30)) AS ${names[c]}`)
        return {
          sql: `(SELECT ${nulls.join(', ')} FROM (SELECT ${split.join(', ')})) AS s`,
          params: cols.map((c) => packed[c] ?? null),
        }
      },
      cache: true,
      done: async () => {},
    }
  }
  const name = tempName()
  await conn.run(`CREATE TEMP TABLE ${name} (${names.map((n) => `${n} VARCHAR`).join(', ')})`)
  const appender = await conn.createAppender(name)
  for (let r = 0; r < count; r++) {
    for (let c = 0; c < width; c++) {
      const v = cell(r, c)
      if (v === null) appender.appendNull()
      else appender.appendVarchar(v)
    }
    appender.endRow()
  }
  appender.closeSync()
  return tableStaged(conn, name, names)
}

function tableStaged(conn: DuckDBConnection, name: string, names: readonly string[]): Staged {
  return {
    kind: 'table',
    from(cols = all(names.length)) {
      return { sql: `(SELECT ${cols.map((c) => names[c]).join(', ')} FROM ${name}) AS s`, params: [] }
    },
    // a fresh name every time: not worth a prepared statement
    cache: false,
    done: () => conn.run(`DROP TABLE ${name}`).then(() => undefined),
  }
}

/**
 * The staged rows copied into a fresh temp table (a table stays as it is). For statements that
 * read a table faster than the packed form: an `INSERT … ON CONFLICT DO UPDATE` over many stored
 * keys is slower reading the packed relation than a table, by more than the copy costs.
 */
export async function intoTable(
  conn: DuckDBConnection,
  staged: Staged,
  columns: readonly string[],
  tempName: () => string,
): Promise<Staged> {
  if (staged.kind === 'table') return staged
  const name = tempName()
  const from = staged.from()
  await conn.run(`CREATE TEMP TABLE ${name} AS SELECT * FROM ${from.sql}`, from.params)
  await staged.done()
  return tableStaged(conn, name, columns.map(quoteIdent))
}
