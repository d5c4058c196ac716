import { AsyncDuckDB, DuckDBAccessMode, VoidLogger } from '@duckdb/duckdb-wasm'
import ehWorkerUrl from '@duckdb/duckdb-wasm/dist/duckdb-browser-eh.worker.js?url'
import ehWasmUrl from '@duckdb/duckdb-wasm/dist/duckdb-eh.wasm?url'

/**
 * Starts DuckDB-WASM from the `eh` bundle (no COOP/COEP needed). The wasm and DuckDB's own worker
 * are Vite `?url` assets served with the app: nothing comes from a CDN, so it starts offline.
 *
 * `path` is `:memory:` or an `opfs://` file. OPFS allows one open handle per file: a second opener
 * fails, which the caller must handle (see `client/cache/persistence.ts`). The first start after
 * `prestartDuckDb` takes the instance already under way.
 *
 * `reopen` is asked about an error of the open itself (DuckDB has started; its worker and handles
 * are ended by then): when it resolves true (it has set the file aside), a new instance opens `path`
 * once more, and a second failure is thrown. A failure to start DuckDB never reaches it.
 */
export async function startDuckDb(
  path: string,
  reopen?: (error: unknown) => Promise<boolean>,
): Promise<AsyncDuckDB> {
  const started = prestarted ?? instantiateDuckDb()
  prestarted = undefined
  const db = await started
  try {
    await db.open({ path, accessMode: DuckDBAccessMode.READ_WRITE })
    return db
  } catch (e) {
    await db.terminate().catch(() => undefined)
    if (reopen === undefined || !(await reopen(e))) throw e
  }
  return startDuckDb(path)
}

let prestarted: Promise<AsyncDuckDB> | undefined

/**
 * Begins DuckDB's slow half (its worker, fetching and compiling the wasm) before the caller knows
 * which file to open: the next `startDuckDb` in this context continues from it. A failed start
 * surfaces there.
 */
export function prestartDuckDb(): void {
  if (prestarted !== undefined) return
  prestarted = instantiateDuckDb()
  prestarted.catch(() => undefined)
}

/** DuckDB's worker and its compiled wasm, no database open yet (the slow part of a start). */
async function instantiateDuckDb(): Promise<AsyncDuckDB> {
  const worker = new Worker(ehWorkerUrl)
  const db = new AsyncDuckDB(new VoidLogger(), worker)
  try {
    await db.instantiate(ehWasmUrl)
    return db
  } catch (e) {
    await db.terminate().catch(() => undefined)
    throw e
  }
}

/** Whether this context can give DuckDB an OPFS file (a dedicated worker with sync access handles). */
export function opfsAvailable(): boolean {
  const g = globalThis as {
    FileSystemSyncAccessHandle?: unknown
    navigator?: { storage?: { getDirectory?: unknown } }
  }
  return (
    typeof g.FileSystemSyncAccessHandle === 'function' &&
    typeof g.navigator?.storage?.getDirectory === 'function'
  )
}
