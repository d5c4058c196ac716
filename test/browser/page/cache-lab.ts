import { Float64, Int32, Table, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow'
import { startDuckDb } from '../../../client/duckdb-bundle.ts'
import { createDuckDbCache, type DuckDbCache } from '../../../client/duckdb-cache.ts'
import { openPersistentCache, type Persistence } from '../../../client/persistence.ts'
import { demoSchema } from '../../../demo/schema.ts'
import { defineSchema } from '../../../shared/schema.ts'

/**
 * The cache lab: the DuckDB-WASM cache on its own, driven by `page.evaluate` in the Chromium tests.
 * Everything a test needs is on `window.lab`.
 */
async function openCache(path = ':memory:', stagingThreshold?: number): Promise<DuckDbCache> {
  const db = await startDuckDb(path)
  const cache = await createDuckDbCache({
    db,
    persistent: path.startsWith('opfs://'),
    ...(stagingThreshold === undefined ? {} : { stagingThreshold }),
  })
  await cache.init([...demoSchema.tables.values()])
  return cache
}

/** `n` orders as Arrow IPC, typed as a warehouse would send them (with `_hlc`). */
function ordersIpc(n: number, hlcPrefix = '001795000000000'): Uint8Array {
  const ids: string[] = []
  const customers: number[] = []
  const totals: string[] = []
  const hlcs: string[] = []
  for (let i = 0; i < n; i++) {
    ids.push(`00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`)
    customers.push((i % 1000) + 1)
    totals.push(`${i % 500}.${String(i % 100).padStart(2, '0')}`)
    hlcs.push(`${hlcPrefix}:00000:server`)
  }
  const table = new Table({
    order_id: vectorFromArray(ids, new Utf8()),
    customer_id: vectorFromArray(customers, new Int32()),
    total_amount: vectorFromArray(totals, new Utf8()),
    _hlc: vectorFromArray(hlcs, new Utf8()),
    value: vectorFromArray(
      customers.map((c) => c / 3),
      new Float64(),
    ),
  })
  return tableToIPC(table, 'stream')
}

/** The worker's persistent cache (OPFS or IndexedDB snapshot), here on the page for the tests. */
function openPersistent(name: string, persistence: Persistence) {
  return openPersistentCache({ name, persistence, tables: [...demoSchema.tables.values()] })
}

const lab = { openCache, openPersistent, ordersIpc, demoSchema, defineSchema }
declare global {
  interface Window {
    lab: typeof lab
  }
}
window.lab = lab
document.title = 'cache lab ready'
