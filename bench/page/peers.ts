import { PGlite } from '@electric-sql/pglite'
import { Dexie, type Table as DexieTable } from 'dexie'
import { createRxDatabase, type RxCollection, type RxDatabase } from 'rxdb'
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie'
import { GROUP_BY_SQL, type OrderRow, orderRows } from '../data.ts'
import { cents, type GroupAnswer, timeEach, timeOnce } from './timing.ts'

/**
 * The baselines and the stores users would pick instead, each used the way its docs show:
 * raw Dexie (IndexedDB, `durability: 'strict'` like Eddy's outbox), PGlite on `idb://`, RxDB on
 * its Dexie storage. They live in the bench page only, never in the client bundle.
 */

// ---- raw Dexie -------------------------------------------------------------------------------

class OrdersDb extends Dexie {
  orders!: DexieTable<OrderRow, string>
  constructor(name: string, durability: 'strict' | 'relaxed') {
    super(name, { chromeTransactionDurability: durability })
    this.version(1).stores({ orders: 'order_id' })
  }
}

const dexies = new Map<string, OrdersDb>()
function dexie(name: string, durability: 'strict' | 'relaxed' = 'strict'): OrdersDb {
  const key = `${name}:${durability}`
  let db = dexies.get(key)
  if (db === undefined) {
    db = new OrdersDb(name, durability)
    dexies.set(key, db)
  }
  return db
}

/** `n` single-row puts, each its own strict transaction: the floor of a durable write ack. */
export function dexieWriteAck(prefix: number, n: number): Promise<number[]> {
  const rows = orderRows(prefix, n)
  const db = dexie('bench-dexie-writes')
  return timeEach(n, (i) => db.orders.put(rows[i] as OrderRow))
}

export async function dexieBulk(prefix: number, n: number): Promise<number> {
  const rows = orderRows(prefix, n)
  const db = dexie('bench-dexie-writes')
  return (await timeOnce(() => db.orders.bulkPut(rows))).ms
}

/** Loads the analytics rows (not timed; relaxed durability, in chunks); `clear` empties the table first. */
export async function dexieLoad(prefix: number, n: number, clear = true): Promise<void> {
  const db = dexie('bench-dexie-analytics', 'relaxed')
  if (clear) await db.orders.clear()
  for (let from = 0; from < n; from += 50_000) {
    await db.orders.bulkPut(orderRows(prefix, Math.min(50_000, n - from), from))
  }
}

function aggregate(rows: Iterable<{ status: string; total_amount: string }>): GroupAnswer {
  const out: GroupAnswer = {}
  for (const r of rows) {
    const slot = out[r.status] ?? [0, 0]
    slot[0] += 1
    slot[1] += cents(r.total_amount)
    out[r.status] = slot
  }
  return out
}

/** GROUP BY status in JS: read every row, then count and sum. */
export async function dexieAgg(reps: number): Promise<{ ms: number[]; answer: GroupAnswer }> {
  const db = dexie('bench-dexie-analytics', 'relaxed')
  const run = async () => aggregate(await db.orders.toArray())
  const answer = await run()
  return { ms: await timeEach(reps, run), answer }
}

// ---- PGlite ------------------------------------------------------------------------------------

let pg: PGlite | undefined
async function pglite(): Promise<PGlite> {
  if (pg === undefined) {
    pg = await PGlite.create('idb://bench-pglite')
    await pg.exec(`CREATE TABLE IF NOT EXISTS orders (order_id text PRIMARY KEY, customer_id integer NOT NULL,
      total_amount text NOT NULL, status text, created_at timestamptz)`)
    await pg.exec(`CREATE TABLE IF NOT EXISTS orders_w (LIKE orders INCLUDING ALL)`)
  }
  return pg
}

const INSERT = 'INSERT INTO orders_w VALUES ($1, $2, $3, $4, $5)'
const params = (r: OrderRow) => [r.order_id, r.customer_id, r.total_amount, r.status, r.created_at]

/** `n` single-row inserts; on `idb://` each query returns after PGlite synced its files to IndexedDB. */
export async function pgliteWriteAck(prefix: number, n: number): Promise<number[]> {
  const db = await pglite()
  const rows = orderRows(prefix, n)
  return timeEach(n, (i) => db.query(INSERT, params(rows[i] as OrderRow)))
}

export async function pgliteBulk(prefix: number, n: number): Promise<number> {
  const db = await pglite()
  const rows = orderRows(prefix, n)
  const { ms } = await timeOnce(() =>
    db.transaction(async (tx) => {
      for (const r of rows) await tx.query(INSERT, params(r))
    }),
  )
  return ms
}

/** Loads the analytics rows with COPY from a CSV blob (not timed). */
export async function pgliteLoad(prefix: number, n: number, clear = true): Promise<void> {
  const db = await pglite()
  if (clear) await db.exec('TRUNCATE orders')
  for (let from = 0; from < n; from += 100_000) {
    const rows = orderRows(prefix, Math.min(100_000, n - from), from)
    const csv = rows
      .map((r) => `${r.order_id},${r.customer_id},${r.total_amount},${r.status},${r.created_at}`)
      .join('\n')
    await db.query(`COPY orders FROM '/dev/blob' WITH (FORMAT csv)`, [], { blob: new Blob([csv]) })
  }
  await db.exec('ANALYZE orders')
}

export async function pgliteQuery(reps: number): Promise<{ ms: number[]; answer: GroupAnswer }> {
  const db = await pglite()
  const run = async () => {
    const res = await db.query<{ status: string; n: number; total: string }>(GROUP_BY_SQL)
    const out: GroupAnswer = {}
    for (const r of res.rows) out[r.status] = [Number(r.n), cents(r.total)]
    return out
  }
  const answer = await run()
  return { ms: await timeEach(reps, run), answer }
}

// ---- RxDB (Dexie storage) ------------------------------------------------------------------

const rxSchema = {
  version: 0,
  primaryKey: 'order_id',
  type: 'object',
  properties: {
    order_id: { type: 'string', maxLength: 40 },
    customer_id: { type: 'integer' },
    total_amount: { type: 'string' },
    status: { type: 'string' },
    created_at: { type: 'string' },
  },
  required: ['order_id', 'customer_id', 'total_amount'],
} as const

type RxOrders = RxCollection<OrderRow>
let rx: RxDatabase<{ writes: RxOrders; analytics: RxOrders }> | undefined
async function rxdb(): Promise<{ writes: RxOrders; analytics: RxOrders }> {
  if (rx === undefined) {
    rx = await createRxDatabase<{ writes: RxOrders; analytics: RxOrders }>({
      name: 'benchrx',
      storage: getRxStorageDexie(),
      multiInstance: false,
    })
    await rx.addCollections({ writes: { schema: rxSchema }, analytics: { schema: rxSchema } })
  }
  return rx.collections
}

export async function rxdbWriteAck(prefix: number, n: number): Promise<number[]> {
  const { writes } = await rxdb()
  const rows = orderRows(prefix, n)
  return timeEach(n, (i) => writes.insert(rows[i] as OrderRow))
}

export async function rxdbBulk(prefix: number, n: number): Promise<number> {
  const { writes } = await rxdb()
  const rows = orderRows(prefix, n)
  const { ms, value } = await timeOnce(() => writes.bulkInsert(rows))
  if (value.error.length > 0) throw new Error(`rxdb bulkInsert: ${value.error.length} errors`)
  return ms
}

export async function rxdbLoad(prefix: number, n: number): Promise<void> {
  const { analytics } = await rxdb()
  for (let from = 0; from < n; from += 20_000) {
    const res = await analytics.bulkInsert(orderRows(prefix, Math.min(20_000, n - from), from))
    if (res.error.length > 0) throw new Error(`rxdb load: ${res.error.length} errors`)
  }
  // RxDB finishes a write's follow-up work in its idle queue: part of the (untimed) load, not of
  // whatever the page times next
  await rx?.requestIdlePromise()
}

/**
 * GROUP BY status in JS over every document, as the first query after opening the database: RxDB
 * keeps documents and query results in memory after a write or a query, so a repeated `find()`
 * would time its cache, not the store.
 */
export async function rxdbAgg(reps: number): Promise<{ ms: number[]; answer: GroupAnswer }> {
  let answer: GroupAnswer = {}
  const ms: number[] = []
  for (let i = 0; i <= reps; i++) {
    await rx?.close()
    rx = undefined
    const { analytics } = await rxdb()
    const t = await timeOnce(async () => aggregate((await analytics.find().exec()).map((d) => d.toJSON())))
    answer = t.value
    if (i > 0) ms.push(t.ms) // the first round warms the code paths
  }
  return { ms, answer }
}
