import { Float64, Int32, Table, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow'
import { startDuckDb } from '../../../client/cache/duckdb-bundle.ts'
import { createDuckDbCache, type DuckDbCache } from '../../../client/cache/duckdb-cache.ts'
import { openPersistentCache, type Persistence } from '../../../client/cache/persistence.ts'
import { openOutbox } from '../../../client/outbox/outbox.ts'
import { createSpaceGuard } from '../../../client/outbox/storage-space.ts'
import { CACHE_CONTRACT } from '../../../client/testing/cache-contract.ts'
import { demoSchema } from '../../../demo/schema.ts'
import { changesToArrow } from '../../../edge/pull/arrow-pull.ts'
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

/**
 * Small `orders` fixtures for the bulk-load tests, numbered `n`: the key, a server stamp at time
 * `at`, a full row with `status`, and a pulled change (a tombstone when `status` is null).
 */
const orders = {
  id: (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  hlc: (at: number) => `0017950000000${String(at).padStart(2, '0')}:00000:server`,
  row: (n: number, status: string) => ({
    order_id: orders.id(n),
    customer_id: n,
    total_amount: `${n}.00`,
    status,
    created_at: '2026-01-01T00:00:00.000Z',
  }),
  change: (n: number, at: number, status: string | null) => ({
    table: 'orders',
    key: { order_id: orders.id(n) },
    row: status === null ? null : orders.row(n, status),
    hlc: orders.hlc(at),
    version: BigInt(at),
  }),
}

/** The worker's persistent cache (OPFS or IndexedDB snapshot), here on the page for the tests. */
function openPersistent(name: string, persistence: Persistence, flushDelayMs?: number) {
  return openPersistentCache({
    name,
    persistence,
    tables: [...demoSchema.tables.values()],
    ...(flushDelayMs === undefined ? {} : { flushDelayMs, maxFlushDelayMs: flushDelayMs }),
  })
}

/** A schema table in a cache of its own (for column types the demo schema does not use). */
async function openCacheFor(spec: Parameters<typeof defineSchema>[0]): Promise<DuckDbCache> {
  const schema = defineSchema(spec)
  const cache = await createDuckDbCache({ db: await startDuckDb(':memory:') })
  await cache.init([...schema.tables.values()])
  return cache
}

/** The baseline for hydration: the same IPC straight into a fresh table, no cache logic. */
async function rawInsertMs(ipc: Uint8Array, withKey = false): Promise<number> {
  const db = await startDuckDb(':memory:')
  const conn = await db.connect()
  const start = performance.now()
  await conn.insertArrowFromIPCStream(ipc, { name: 'raw', create: true })
  if (withKey) {
    await conn.query(
      'CREATE TABLE keyed (order_id VARCHAR PRIMARY KEY, customer_id INTEGER, total_amount VARCHAR, _hlc VARCHAR, value DOUBLE)',
    )
    await conn.query('INSERT INTO keyed SELECT order_id, customer_id, total_amount, _hlc, value FROM raw')
  }
  const ms = performance.now() - start
  await conn.close()
  await db.terminate()
  return ms
}

/** Runs one check of the LocalCache contract (the one MemoryCache passes in Node) on DuckDB-WASM. */
async function runContract(name: string): Promise<string> {
  const check = CACHE_CONTRACT.find((c) => c.name === name)
  if (check === undefined) return `no check named ${name}`
  const opened: DuckDbCache[] = []
  try {
    await check.run(async () => {
      const cache = await createDuckDbCache({ db: await startDuckDb(':memory:') })
      opened.push(cache)
      return cache
    })
    return 'ok'
  } catch (e) {
    return String(e)
  } finally {
    for (const c of opened) await c.close()
  }
}

const lab = {
  runContract,
  /** Pulled changes as the edge's Arrow page (typed columns, `_hlc`, `_deleted`). */
  changesIpc: changesToArrow,
  openCache,
  openCacheFor,
  openPersistent,
  ordersIpc,
  orders,
  rawInsertMs,
  demoSchema,
  defineSchema,
  openOutbox,
  createSpaceGuard,
}
declare global {
  interface Window {
    lab: typeof lab
  }
}
window.lab = lab
document.title = 'cache lab ready'
