import { AsyncDuckDB, DuckDBAccessMode, VoidLogger } from '@duckdb/duckdb-wasm'
import coiPthreadUrl from '@duckdb/duckdb-wasm/dist/duckdb-browser-coi.pthread.worker.js?url'
import coiWorkerUrl from '@duckdb/duckdb-wasm/dist/duckdb-browser-coi.worker.js?url'
import coiWasmUrl from '@duckdb/duckdb-wasm/dist/duckdb-coi.wasm?url'
import { startDuckDb } from '../../client/cache/duckdb-bundle.ts'
import { type ArrowTableLike, arrowToRows } from '../../shared/arrow-rows.ts'
import { timeEach } from './timing.ts'

/**
 * Profiling helpers for the analytics round (not part of the timed bench): runs a list of SQL
 * statements on a raw DuckDB-WASM (same bundle Eddy picks, `:memory:` or an `opfs://` file) and
 * reports each one's timings and its first rows, so a Node script can compare layouts, settings
 * and `EXPLAIN ANALYZE` output side by side in one page.
 */
export interface ProfileStep {
  sql: string
  /** Timed runs after one untimed warm-up (0: run once, untimed, and keep the rows). */
  reps: number
}

export interface ProfileResult {
  sql: string
  ms: number[]
  rows: Array<Record<string, unknown>>
}

function plain(rows: ReadonlyArray<Record<string, unknown>>): Array<Record<string, unknown>> {
  return rows.map((r) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])),
  )
}

/**
 * DuckDB-WASM's threaded `coi` bundle (needs a cross-origin isolated page), for comparison only:
 * Eddy does not use it (with 1.32 it hangs writing an OPFS file, see docs/benchmarks.md).
 */
async function startCoi(path: string): Promise<AsyncDuckDB> {
  const db = new AsyncDuckDB(new VoidLogger(), new Worker(coiWorkerUrl))
  await db.instantiate(coiWasmUrl, coiPthreadUrl)
  await db.open({
    path,
    accessMode: DuckDBAccessMode.READ_WRITE,
    maximumThreads: navigator.hardwareConcurrency,
  })
  return db
}

export async function profileSql(
  path: string,
  steps: readonly ProfileStep[],
  bundle: 'eh' | 'coi' = 'eh',
): Promise<ProfileResult[]> {
  const db = bundle === 'coi' ? await startCoi(path) : await startDuckDb(path)
  try {
    const conn = await db.connect()
    try {
      const run = async (sql: string) =>
        arrowToRows((await conn.query(sql)) as unknown as ArrowTableLike) as Array<Record<string, unknown>>
      const out: ProfileResult[] = []
      for (const s of steps) {
        const rows = await run(s.sql)
        const ms = s.reps > 0 ? await timeEach(s.reps, () => run(s.sql)) : []
        out.push({ sql: s.sql, ms, rows: plain(rows.slice(0, 200)) })
      }
      return out
    } finally {
      await conn.close()
    }
  } finally {
    await db.terminate()
  }
}

/** Whether this page (and so its workers) is cross-origin isolated. */
export function profileIsolated(): boolean {
  return globalThis.crossOriginIsolated === true
}
