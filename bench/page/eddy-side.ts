import type { AsyncDuckDB, AsyncDuckDBConnection } from '@duckdb/duckdb-wasm'
import { Int32, Table, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow'
import { startDuckDb } from '../../client/cache/duckdb-bundle.ts'
import { createDuckDbCache } from '../../client/cache/duckdb-cache.ts'
import { createEddy, type Eddy, type Persistence } from '../../client/index.ts'
import { demoSchema } from '../../demo/schema.ts'
import { type ArrowTableLike, arrowToRows, textColumnsToIpc } from '../../shared/arrow-rows.ts'
import { formatHlc } from '../../shared/hlc.ts'
import type { Row } from '../../shared/schema.ts'
import { GROUP_BY_SQL, type OrderRow, orderRows } from '../data.ts'
import { cents, type GroupAnswer, timeEach, timeOnce } from './timing.ts'

/**
 * Eddy through its public API (`createEddy`: the worker, DuckDB-WASM on OPFS, the Dexie outbox),
 * and the raw DuckDB-WASM floor it is compared with (same bundle, same wasm, no Eddy around it).
 */
let eddy: Eddy | undefined

function live(): Eddy {
  if (eddy === undefined) throw new Error('eddy is not open')
  return eddy
}

/**
 * Opens Eddy on the same-origin edge. autoSync off: the write and query figures are the local path
 * alone. `maxMutations` matches the bench edge's limit, so the 10,000-row transaction is allowed.
 */
export async function eddyOpen(name: string, persistence: Persistence = 'opfs'): Promise<string> {
  eddy = await createEddy({
    url: '/sync',
    schema: demoSchema,
    name,
    persistence,
    autoSync: false,
    maxMutations: 10_000,
  })
  return eddy.persistence
}

/**
 * `n` write-back puts, one after another; each resolves once the outbox entry is durable. The cache
 * takes the rows behind the acknowledgements: before returning, untimed, the round waits until the
 * cache holds them and is checkpointed, so that work does not run during the next store's turn.
 */
export async function eddyWriteAck(prefix: number, n: number): Promise<number[]> {
  const rows = orderRows(prefix, n)
  const e = live()
  const ms = await timeEach(n, (i) => e.put('orders', rows[i] as Row))
  await e.flush()
  return ms
}

/** One transaction of `n` puts (one tx group, one outbox record); settles the cache untimed after. */
export async function eddyBulk(prefix: number, n: number): Promise<number> {
  const rows = orderRows(prefix, n)
  const e = live()
  const { ms } = await timeOnce(() =>
    e.transaction((tx) => {
      for (const r of rows) tx.put('orders', r)
    }),
  )
  await e.flush()
  return ms
}

/** `sync()` on an empty cache: push nothing, pull every row the edge holds. */
export async function eddyHydrate(): Promise<{ ms: number; pulled: number; rows: number }> {
  const e = live()
  const { ms, value } = await timeOnce(() => e.sync())
  const [count] = await e.query('SELECT count(*) AS n FROM orders')
  return { ms, pulled: value.pulled, rows: Number(count?.n ?? 0) }
}

/**
 * What the edge and HTTP alone cost a hydrate: every Arrow page of `orders` fetched the way the
 * engine asks for them (25,000 rows a page, one after another), read to the last byte, no cache.
 */
export async function hydrateFetch(): Promise<{ ms: number; bytes: number; pages: number }> {
  let bytes = 0
  let pages = 0
  const { ms } = await timeOnce(async () => {
    let cursor: string | undefined
    for (;;) {
      const q = new URLSearchParams({ tables: 'orders', limit: '25000' })
      if (cursor !== undefined) q.set('cursor', cursor)
      const res = await fetch(`/sync/pull?${q}`, {
        headers: { accept: 'application/vnd.apache.arrow.stream' },
      })
      if (!res.ok) throw new Error(`Arrow pull answered ${res.status}`)
      bytes += (await res.arrayBuffer()).byteLength
      pages += 1
      cursor = res.headers.get('eddy-cursor') ?? undefined
      if (res.headers.get('eddy-has-more') !== 'true') return
    }
  })
  return { ms, bytes, pages }
}

function answerOf(rows: readonly Row[]): GroupAnswer {
  const out: GroupAnswer = {}
  for (const r of rows) out[String(r.status)] = [Number(r.n), cents(r.total)]
  return out
}

export async function eddyQuery(reps: number): Promise<{ ms: number[]; answer: GroupAnswer }> {
  const e = live()
  const answer = answerOf(await e.query(GROUP_BY_SQL)) // warm-up
  return { ms: await timeEach(reps, () => e.query(GROUP_BY_SQL)), answer }
}

/**
 * Two Eddy caches open at once (two profiles' files), the GROUP BY asked of each in turn, `reps`
 * times: a side-by-side comparison of two cache layouts that shares the machine's noise.
 */
export async function eddyPairQuery(
  a: string,
  b: string,
  reps: number,
): Promise<{ a: number[]; b: number[] }> {
  const open = (name: string) =>
    createEddy({ url: '/sync', schema: demoSchema, name, persistence: 'opfs', autoSync: false })
  const ea = await open(a)
  const eb = await open(b)
  try {
    await ea.query(GROUP_BY_SQL)
    await eb.query(GROUP_BY_SQL)
    const out = { a: [] as number[], b: [] as number[] }
    for (let i = 0; i < reps; i++) {
      out.a.push(...(await timeEach(1, () => ea.query(GROUP_BY_SQL))))
      out.b.push(...(await timeEach(1, () => eb.query(GROUP_BY_SQL))))
    }
    return out
  } finally {
    await ea.close()
    await eb.close()
  }
}

/** `reps` timed runs of `sql` through `eddy.query`, after one untimed warm-up. */
export async function eddyTimeSql(sql: string, reps: number): Promise<number[]> {
  const e = live()
  await e.query(sql)
  return timeEach(reps, () => e.query(sql))
}

/** `n` round trips of `eddy.query('SELECT 1')`: the query path without DuckDB's work. */
export function eddyRoundTrip(n: number): Promise<number[]> {
  const e = live()
  return timeEach(n, () => e.query('SELECT 1 AS x'))
}

/**
 * Fills a profile's OPFS cache file with `n` synced orders through the cache's own bulk load
 * (`loadArrow`, Arrow IPC), before Eddy opens it: how the 1M analytics round gets its rows
 * without a million-row pull through the edge. Returns the seconds it took. `settings` replaces
 * the cache's DuckDB settings for the load (profiling: `[]` writes the file as DuckDB's defaults would).
 */
export async function eddyPreload(
  name: string,
  prefix: number,
  n: number,
  settings?: readonly string[],
): Promise<number> {
  const t0 = performance.now()
  const db = await startDuckDb(`opfs://${name}.duckdb`)
  try {
    const cache = await createDuckDbCache({
      db,
      persistent: true,
      ...(settings === undefined ? {} : { settings }),
    })
    await cache.init([...demoSchema.tables.values()])
    const orders = demoSchema.table('orders')
    const hlc = formatHlc({ wall: Date.UTC(2026, 0, 1), counter: 0, node: 'seed' })
    // 20,000 rows per load: after one 200,000-row load DuckDB-WASM left a WAL on OPFS that it
    // could not replay on the next open ("Table _eddy_customers already exists")
    for (let from = 0; from < n; from += 20_000) {
      const rows = orderRows(prefix, Math.min(20_000, n - from), from)
      const ipc = textColumnsToIpc([
        ...orders.columns.map((c) => ({ name: c.name, values: rows.map((r) => String(r[c.name])) })),
        { name: '_hlc', values: rows.map(() => hlc) },
      ])
      await cache.loadArrow(orders, ipc)
    }
    await cache.checkpoint()
    await cache.close()
  } finally {
    await db.terminate()
  }
  return (performance.now() - t0) / 1000
}

/** Rows currently in the cache's orders view. */
export async function eddyCount(): Promise<number> {
  const [r] = await live().query('SELECT count(*) AS n FROM orders')
  return Number(r?.n ?? 0)
}

export async function eddyClose(): Promise<void> {
  const e = live()
  eddy = undefined
  await e.flush()
  await e.close()
}

/** Cold start: from navigation start until Eddy answers its first query on the cached rows. */
export async function eddyCold(name: string): Promise<{ ms: number; rows: number }> {
  const e = await createEddy({ url: '/sync', schema: demoSchema, name, persistence: 'opfs', autoSync: false })
  const rows = await e.query(GROUP_BY_SQL)
  const ms = performance.now()
  await e.close()
  return { ms, rows: rows.reduce((s, r) => s + Number(r.n), 0) }
}

// ---- raw DuckDB-WASM ---------------------------------------------------------------------

function arrowOf(rows: readonly OrderRow[]) {
  return new Table({
    order_id: vectorFromArray(
      rows.map((r) => r.order_id),
      new Utf8(),
    ),
    customer_id: vectorFromArray(
      rows.map((r) => r.customer_id),
      new Int32(),
    ),
    total_amount: vectorFromArray(
      rows.map((r) => r.total_amount),
      new Utf8(),
    ),
    status: vectorFromArray(
      rows.map((r) => r.status),
      new Utf8(),
    ),
    created_at: vectorFromArray(
      rows.map((r) => r.created_at),
      new Utf8(),
    ),
  })
}

async function withRaw<T>(path: string, fn: (db: AsyncDuckDB, conn: AsyncDuckDBConnection) => Promise<T>) {
  const db = await startDuckDb(path)
  try {
    const conn = await db.connect()
    try {
      return await fn(db, conn)
    } finally {
      await conn.close()
    }
  } finally {
    await db.terminate()
  }
}

/**
 * `insertArrowTable`, spelled out: DuckDB-WASM's own `insertArrowTable` is `tableToIPC` plus
 * `insertArrowFromIPCStream`, and going through IPC ourselves keeps it independent of the Arrow
 * version DuckDB-WASM bundles.
 */
async function insertArrow(conn: AsyncDuckDBConnection, table: Table, name: string): Promise<void> {
  await conn.insertArrowFromIPCStream(tableToIPC(table, 'stream'), { name, create: true })
}

/**
 * The hydrate floor: `insertArrowTable` of the same rows into an in-memory DuckDB-WASM, `reps`
 * times (each into a fresh table); the Arrow table is built before the clock starts. Also the
 * raw GROUP BY on those rows, for orientation.
 */
export function rawArrowInsert(
  prefix: number,
  n: number,
  reps: number,
  queryReps = 5,
): Promise<{ insertMs: number[]; queryMs: number[]; answer: GroupAnswer }> {
  const table = arrowOf(orderRows(prefix, n))
  return withRaw(':memory:', async (_db, conn) => {
    const insertMs: number[] = []
    for (let i = 0; i < reps; i++) {
      await conn.query('DROP TABLE IF EXISTS orders')
      const { ms } = await timeOnce(() => insertArrow(conn, table, 'orders'))
      insertMs.push(ms)
    }
    const run = async () =>
      answerOf(arrowToRows((await conn.query(GROUP_BY_SQL)) as unknown as ArrowTableLike))
    const answer = await run()
    const queryMs = await timeEach(queryReps, run)
    return { insertMs, queryMs, answer }
  })
}

/**
 * DuckDB-WASM's own cost of what a hydrate must leave behind, without Eddy: the same rows (Arrow
 * built before the clock) staged with `insertArrowFromIPCStream`, inserted into a table keyed on
 * `order_id` in an OPFS file, committed and checkpointed. What the cache adds on top of the raw
 * `insertArrowTable` before any network.
 */
export function rawKeyedLoad(file: string, prefix: number, n: number): Promise<{ ms: number }> {
  const ipc = tableToIPC(arrowOf(orderRows(prefix, n)), 'stream')
  return withRaw(`opfs://${file}`, async (_db, conn) => {
    await conn.query('DROP TABLE IF EXISTS orders')
    await conn.query(
      'CREATE TABLE orders (order_id VARCHAR PRIMARY KEY, customer_id INTEGER, total_amount VARCHAR, status VARCHAR, created_at TIMESTAMP)',
    )
    await conn.query('CHECKPOINT')
    return timeOnce(async () => {
      await conn.query('BEGIN TRANSACTION')
      await conn.insertArrowFromIPCStream(ipc, { name: 'staged', create: true })
      await conn.query(
        'INSERT INTO orders SELECT order_id, customer_id, total_amount, status, CAST(created_at AS TIMESTAMP) FROM staged',
      )
      await conn.query('DROP TABLE staged')
      await conn.query('COMMIT')
      await conn.query('CHECKPOINT')
    })
  })
}

let rawMemory: { db: AsyncDuckDB; conn: AsyncDuckDBConnection } | undefined

/**
 * Profiling: a raw in-memory DuckDB-WASM holding `n` orders (as `rawArrowInsert` fills it) that
 * stays open, so its GROUP BY can take turns with Eddy's in one page (`rawMemoryQuery`).
 */
export async function rawMemoryOpen(prefix: number, n: number): Promise<void> {
  await rawMemoryClose()
  const db = await startDuckDb(':memory:')
  const conn = await db.connect()
  await insertArrow(conn, arrowOf(orderRows(prefix, n)), 'orders')
  rawMemory = { db, conn }
}

export async function rawMemoryQuery(reps: number): Promise<number[]> {
  const raw = rawMemory
  if (raw === undefined) throw new Error('no raw in-memory DuckDB open')
  const run = () => raw.conn.query(GROUP_BY_SQL).then((t) => arrowToRows(t as unknown as ArrowTableLike))
  await run()
  return timeEach(reps, run)
}

export async function rawMemoryClose(): Promise<void> {
  const raw = rawMemory
  rawMemory = undefined
  if (raw === undefined) return
  await raw.conn.close()
  await raw.db.terminate()
}

/** Writes the rows into an OPFS DuckDB file for the raw cold-start baseline. */
export function rawColdPrepare(file: string, prefix: number, n: number): Promise<void> {
  const table = arrowOf(orderRows(prefix, n))
  return withRaw(`opfs://${file}`, async (_db, conn) => {
    await conn.query('DROP TABLE IF EXISTS orders')
    await insertArrow(conn, table, 'orders')
    await conn.query('CHECKPOINT')
  })
}

/** Raw cold start: from navigation start through instantiate + open (OPFS) + the first query. */
export function rawCold(file: string): Promise<{ ms: number; rows: number }> {
  return withRaw(`opfs://${file}`, async (_db, conn) => {
    const got = arrowToRows((await conn.query(GROUP_BY_SQL)) as unknown as ArrowTableLike)
    return { ms: performance.now(), rows: got.reduce((s, r) => s + Number(r.n), 0) }
  })
}

/**
 * The floor under every cache write: one DuckDB-WASM round trip (`SELECT 1`) and one small
 * transaction (BEGIN, a one-row upsert into a keyed table, COMMIT) on an in-memory database.
 */
export function rawRoundTrips(n: number): Promise<{ selectMs: number[]; upsertTxMs: number[] }> {
  return withRaw(':memory:', async (_db, conn) => {
    await conn.query('CREATE TABLE t (k VARCHAR PRIMARY KEY, v VARCHAR)')
    const selectMs = await timeEach(n, () => conn.query('SELECT 1'))
    const upsertTxMs = await timeEach(n, async (i) => {
      await conn.query('BEGIN TRANSACTION')
      await conn.query(`INSERT INTO t VALUES ('k${i % 7}', 'v${i}') ON CONFLICT DO UPDATE SET v = excluded.v`)
      await conn.query('COMMIT')
    })
    return { selectMs, upsertTxMs }
  })
}
