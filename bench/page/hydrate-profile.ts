import { startDuckDb } from '../../client/cache/duckdb-bundle.ts'
import { createDuckDbCache } from '../../client/cache/duckdb-cache.ts'
import { demoSchema } from '../../demo/schema.ts'

/**
 * Profiling helpers for the hydrate round (not part of the timed bench): the Arrow pages of
 * `orders` fetched once from the edge, then loaded into a fresh OPFS cache file with the cache's
 * own `loadArrow`, each page and the final `CHECKPOINT` timed.
 */
async function fetchPages(pageRows: number): Promise<Uint8Array[]> {
  const pages: Uint8Array[] = []
  let cursor: string | undefined
  for (;;) {
    const q = new URLSearchParams({ tables: 'orders', limit: String(pageRows) })
    if (cursor !== undefined) q.set('cursor', cursor)
    const res = await fetch(`/sync/pull?${q}`, { headers: { accept: 'application/vnd.apache.arrow.stream' } })
    if (!res.ok) throw new Error(`Arrow pull answered ${res.status}`)
    pages.push(new Uint8Array(await res.arrayBuffer()))
    cursor = res.headers.get('eddy-cursor') ?? undefined
    if (res.headers.get('eddy-has-more') !== 'true') return pages
  }
}

let fetched: { pageRows: number; pages: Uint8Array[] } | undefined

/**
 * The cache's DuckDB work of a first load, without the network: the pages (fetched before the
 * clock starts) through `loadArrow` one after another, then `CHECKPOINT`, on a DuckDB-WASM
 * instance started for it. `passes` > 1 loads them again into an emptied table on the same
 * instance: the first pass runs on code V8 has only just compiled, the later ones on warm code.
 * Returns, per pass, the ms of each page and of the checkpoint.
 */
export async function profileCacheLoad(file: string, pageRows: number, passes = 1): Promise<number[][]> {
  if (fetched?.pageRows !== pageRows) fetched = { pageRows, pages: await fetchPages(pageRows) }
  const db = await startDuckDb(`opfs://${file}`)
  try {
    const cache = await createDuckDbCache({ db, persistent: true })
    await cache.init([...demoSchema.tables.values()])
    const orders = demoSchema.table('orders')
    const out: number[][] = []
    for (let pass = 0; pass < passes; pass++) {
      if (pass > 0) {
        await cache.query('DELETE FROM _eddy_orders')
        await cache.checkpoint()
      }
      const steps: number[] = []
      for (const p of fetched.pages) {
        const t = performance.now()
        await cache.loadArrow(orders, p.slice())
        steps.push(performance.now() - t)
      }
      const t = performance.now()
      await cache.checkpoint()
      steps.push(performance.now() - t)
      out.push(steps)
    }
    await cache.close()
    return out
  } finally {
    await db.terminate()
  }
}
