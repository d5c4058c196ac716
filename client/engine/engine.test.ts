import 'fake-indexeddb/auto'
import { SignJWT } from 'jose'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { EddyError } from '../../shared/errors.ts'
import { defineSchema } from '../../shared/schema.ts'
import { startEdge, type TestEdge } from '../../test/support/edge.ts'
import { backoffDelay } from '../sync/sync-engine.ts'
import { MemoryCache } from '../testing/memory-cache.ts'
import { createEngine, type Engine, type EngineOptions } from './engine.ts'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function edgeFor(options: Parameters<typeof startEdge>[1] = {}): Promise<TestEdge> {
  const edge = await startEdge(demoSchema, options)
  cleanups.push(() => edge.close())
  return edge
}

/**
 * The memory cache behind a queue that lets every call wait a few milliseconds, in call order, as
 * the DuckDB-WASM cache's queue does: writes the engine hands over after the acknowledgement are
 * still on their way when the caller hears back. `failWrites` makes `applyLocal` refuse.
 */
class QueuedCache extends MemoryCache {
  failWrites = false
  private tail: Promise<unknown> = Promise.resolve()
  private later<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(() => new Promise((r) => setTimeout(r, 3))).then(fn)
    this.tail = run.catch(() => undefined)
    return run
  }
  override getRows(...a: Parameters<MemoryCache['getRows']>) {
    return this.later(() => super.getRows(...a))
  }
  override applyLocal(...a: Parameters<MemoryCache['applyLocal']>) {
    return this.later(() =>
      this.failWrites ? Promise.reject(new EddyError('quota', 'test: cache full')) : super.applyLocal(...a),
    )
  }
  override applyRemote(...a: Parameters<MemoryCache['applyRemote']>) {
    return this.later(() => super.applyRemote(...a))
  }
  override markSynced(...a: Parameters<MemoryCache['markSynced']>) {
    return this.later(() => super.markSynced(...a))
  }
  override query(...a: Parameters<MemoryCache['query']>) {
    return this.later(() => super.query(...a))
  }
}

async function engineOn<C extends MemoryCache = MemoryCache>(
  edge: TestEdge,
  extra: Partial<EngineOptions> = {},
  make: () => C = () => new MemoryCache() as C,
): Promise<{ engine: Engine; cache: C }> {
  const cache = make()
  const engine = await createEngine({
    url: edge.url,
    schema: demoSchema,
    cache,
    fetch: edge.fetch,
    dbName: `engine-test-${crypto.randomUUID()}`,
    autoSync: false,
    ...extra,
  })
  cleanups.push(() => engine.close())
  return { engine, cache }
}

const uuid = (): string => crypto.randomUUID()
const order = (id: string, extra: Record<string, unknown> = {}) => ({
  order_id: id,
  customer_id: 7,
  total_amount: '12.50',
  status: 'pending',
  ...extra,
})

/** Counts the records of every object store of an IndexedDB database. */
async function idbRecordCount(name: string): Promise<number> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const req = indexedDB.open(name)
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
  try {
    let total = 0
    for (const store of Array.from(db.objectStoreNames)) {
      total += await new Promise<number>((resolve, reject) => {
        const req = db.transaction(store).objectStore(store).count()
        req.onsuccess = () => resolve(req.result)
        req.onerror = () => reject(req.error)
      })
    }
    return total
  } finally {
    db.close()
  }
}

describe('engine: write-back', () => {
  it('acknowledges a write locally, then the background loop pushes it into the warehouse', async () => {
    const edge = await edgeFor()
    const { engine, cache } = await engineOn(edge, { autoSync: true })
    const id = uuid()
    const row = await engine.put('orders', order(id))
    expect(row).toMatchObject({ order_id: id, customer_id: 7, total_amount: '12.50', created_at: null })
    const local = await cache.query('SELECT * FROM orders WHERE order_id = ?', [id])
    expect(local).toHaveLength(1)
    await vi.waitFor(
      async () => expect(await edge.row('orders', { order_id: id })).toMatchObject({ status: 'pending' }),
      {
        timeout: 5000,
      },
    )
    await vi.waitFor(() => expect(engine.status().pending).toBe(0))
    const after = await cache.query('SELECT * FROM orders WHERE _needs_sync')
    expect(after).toHaveLength(0)
    // A row read back from a query deletes as is (its other columns are ignored).
    const [back] = await engine.query('SELECT * FROM orders WHERE order_id = ?', [id])
    await engine.delete('orders', back ?? {})
    expect(await cache.query('SELECT * FROM orders')).toEqual([])
    await vi.waitFor(async () => expect(await edge.row('orders', { order_id: id })).toBeNull(), {
      timeout: 5000,
    })
  })

  it('refuses an invalid write with a typed error and writes nothing', async () => {
    const edge = await edgeFor()
    const { engine, cache } = await engineOn(edge)
    const id = uuid()
    const err = await engine.put('orders', order(id, { status: 'lost' })).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EddyError)
    expect(err).toMatchObject({ code: 'invalid_value', field: 'status' })
    const missing = await engine.put('orders', { order_id: uuid(), customer_id: 3 }).catch((e: unknown) => e)
    expect(missing).toMatchObject({ code: 'invalid_value', field: 'total_amount' })
    await expect(engine.put('nope', { a: 1 })).rejects.toMatchObject({ code: 'unknown_table' })
    await expect(engine.delete('orders', { status: 'paid' })).rejects.toMatchObject({
      code: 'invalid_value',
      field: 'order_id',
    })
    await expect(engine.put('orders', { ...order(uuid()), colour: 'red' })).rejects.toMatchObject({
      code: 'unknown_column',
      field: 'colour',
    })
    expect(await cache.query('SELECT count(*) AS n FROM orders')).toEqual([{ n: 0 }])
    expect(engine.status().pending).toBe(0)
    const report = await engine.sync()
    expect(report.pushed).toBe(0)
  })

  it('reads its writes: a query or get started after a put or transaction resolved sees the rows', async () => {
    const edge = await edgeFor()
    const { engine } = await engineOn(edge, {}, () => new QueuedCache())
    const seen: Array<Record<string, unknown>[]> = []
    const off = engine.subscribe('SELECT order_id FROM orders WHERE _needs_sync', [], (rows) =>
      seen.push(rows),
    )
    for (let i = 0; i < 25; i++) {
      const id = uuid()
      await engine.put('orders', order(id, { status: i % 2 === 0 ? 'paid' : 'shipped' }))
      const got = await engine.query('SELECT status, _needs_sync FROM orders WHERE order_id = ?', [id])
      expect(got).toEqual([{ status: i % 2 === 0 ? 'paid' : 'shipped', _needs_sync: true }])
    }
    // a partial upsert right after a full one lays its values over the row the first one left
    const id = uuid()
    void engine.put('orders', order(id, { status: 'pending' }))
    const back = await engine.put('orders', { order_id: id, status: 'paid' })
    expect(back).toMatchObject({ customer_id: 7, total_amount: '12.50', status: 'paid' })
    const ids = Array.from({ length: 40 }, uuid)
    await engine.transaction((tx) => {
      for (const x of ids) tx.put('orders', order(x))
      tx.delete('orders', { order_id: id })
    })
    const [n] = await engine.query('SELECT count(*) AS n FROM orders WHERE _needs_sync')
    expect(n).toEqual({ n: 65 })
    expect(await engine.query('SELECT * FROM orders WHERE order_id = ?', [id])).toEqual([])
    await vi.waitFor(() => expect(seen.at(-1)).toHaveLength(65))
    off()
  })

  it('keeps a write whose cache write failed after the outbox commit, and repairs the cache from the outbox', async () => {
    const edge = await edgeFor()
    const { engine, cache } = await engineOn(edge, {}, () => new QueuedCache())
    const [a, b] = [uuid(), uuid()]
    await engine.put('orders', order(a, { status: 'paid' }))
    cache.failWrites = true
    await engine.put('orders', { order_id: a, status: 'shipped' }) // durable: acknowledged
    await engine.transaction((tx) => {
      tx.put('orders', order(b))
      tx.delete('orders', { order_id: a })
      tx.put('orders', order(a, { customer_id: 9 }))
    })
    expect(engine.status().pending).toBe(5)
    await vi.waitFor(() => expect(engine.status().lastError).toMatchObject({ code: 'quota' }))
    expect(await cache.query('SELECT order_id FROM orders WHERE order_id = ?', [b])).toEqual([])
    cache.failWrites = false // the repair retries until the cache takes the writes
    await vi.waitFor(
      async () =>
        expect(
          await engine.query(
            'SELECT order_id, customer_id, status, _needs_sync FROM orders ORDER BY order_id',
          ),
        ).toEqual(
          [
            { order_id: a, customer_id: 9, status: 'pending', _needs_sync: true },
            { order_id: b, customer_id: 7, status: 'pending', _needs_sync: true },
          ].sort((x, y) => (x.order_id < y.order_id ? -1 : 1)),
        ),
      { timeout: 5000 },
    )
    expect(await engine.sync()).toMatchObject({ pushed: 5, applied: 5 })
    expect(await edge.row('orders', { order_id: a })).toMatchObject({ customer_id: 9, status: 'pending' })
    expect(await cache.query('SELECT order_id FROM orders WHERE _needs_sync')).toEqual([])
  })

  it('keeps the cache untouched when the outbox commit fails, and maps a quota error to `quota`', async () => {
    const edge = await edgeFor()
    const { engine, cache } = await engineOn(edge, {}, () => new QueuedCache())
    const id = uuid()
    await engine.put('orders', order(id, { status: 'paid' }))
    await engine.sync()
    const proto = IDBObjectStore.prototype
    const realAdd = proto.add
    proto.add = function failing(): IDBRequest<IDBValidKey> {
      throw new DOMException('test: disk full', 'QuotaExceededError')
    }
    let err: unknown
    const seen: unknown[] = []
    try {
      const put = engine.put('orders', order(id, { status: 'shipped' })).catch((e: unknown) => e)
      // a query running beside the failing write never sees it, not even briefly
      let done = false
      void put.finally(() => {
        done = true
      })
      while (!done) seen.push(...(await cache.query('SELECT status FROM orders WHERE order_id = ?', [id])))
      err = await put
    } finally {
      proto.add = realAdd
    }
    expect(err).toMatchObject({ code: 'quota' })
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.every((r) => (r as { status: string }).status === 'paid')).toBe(true)
    const rows = await cache.query('SELECT * FROM orders WHERE order_id = ?', [id])
    expect(rows).toMatchObject([{ status: 'paid', _needs_sync: false }])
    expect((await engine.sync()).pushed).toBe(0)
  })
})

describe('engine: transactions and the outbox', () => {
  it('sends a transaction as one tx group, all or nothing', async () => {
    const edge = await edgeFor()
    const { engine } = await engineOn(edge)
    const [a, b] = [uuid(), uuid()]
    await engine.transaction((tx) => {
      tx.put('orders', order(a))
      tx.put('orders', order(b, { status: 'paid' }))
      tx.put('metrics', { metric_id: 'm1', value: 3.5 })
    })
    expect(engine.status().pending).toBe(3)
    // One invalid write aborts the whole transaction before anything is stored.
    await expect(
      engine.transaction((tx) => {
        tx.put('orders', order(uuid()))
        tx.put('orders', order(uuid(), { total_amount: 'x' }))
      }),
    ).rejects.toMatchObject({ code: 'invalid_value', field: 'total_amount' })
    expect(engine.status().pending).toBe(3)
    const report = await engine.sync()
    expect(report).toMatchObject({ pushed: 3, applied: 3 })
    expect(await edge.row('orders', { order_id: b })).toMatchObject({ status: 'paid' })
    expect(await edge.row('metrics', { metric_id: 'm1' })).toMatchObject({ value: 3.5 })
  })

  it('stores a 10,000-row transaction as a handful of IndexedDB records and pushes it whole when the edge allows it', async () => {
    const edge = await edgeFor({ limits: { maxMutations: 10_000, maxBodyBytes: 16 * 1024 * 1024 } })
    const dbName = `engine-test-${crypto.randomUUID()}`
    const { engine } = await engineOn(edge, { dbName, maxMutations: 10_000 })
    const progress: Array<{ done: number; total: number }> = []
    engine.on('status', (s) => {
      if (s.progress !== undefined) progress.push(s.progress)
    })
    await engine.transaction((tx) => {
      for (let i = 0; i < 10_000; i++) tx.put('orders', order(uuid(), { customer_id: 1 + (i % 50) }))
    })
    expect(engine.status().pending).toBe(10_000)
    expect(await idbRecordCount(`${dbName}-outbox`)).toBeLessThan(10)
    const report = await engine.sync()
    expect(report).toMatchObject({ pushed: 10_000, applied: 10_000 })
    // one tx group, one push: the edge applies it all-or-nothing
    expect(edge.hits.get('/sync/push')).toBe(1)
    expect(engine.status().pending).toBe(0)
    expect(engine.status().progress).toBeUndefined()
    expect(progress.at(-1)).toEqual({ done: 10_000, total: 10_000 })
  }, 60_000)

  it('refuses a transaction larger than one push (`too_large`, nothing written); one that fits goes in one push', async () => {
    const edge = await edgeFor({ limits: { maxMutations: 5 } })
    const { engine, cache } = await engineOn(edge, { maxMutations: 5 })
    const ids = Array.from({ length: 6 }, () => uuid())
    await expect(
      engine.transaction((tx) => {
        for (const id of ids) tx.put('orders', order(id))
      }),
    ).rejects.toMatchObject({ code: 'too_large' })
    expect(engine.status().pending).toBe(0)
    expect(await cache.query('SELECT order_id FROM orders')).toEqual([])
    await engine.put('orders', order(ids[5] ?? ''))
    await engine.transaction((tx) => {
      for (const id of ids.slice(0, 5)) tx.put('orders', order(id))
    })
    // the single write (1) and the group (5) do not fit together: two pushes, the group whole in one
    expect(await engine.sync()).toMatchObject({ pushed: 6, applied: 6 })
    expect(edge.hits.get('/sync/push')).toBe(2)
    // the default is the protocol's limit: 1,001 writes are refused
    const { engine: plain } = await engineOn(edge)
    await expect(
      plain.transaction((tx) => {
        for (let i = 0; i < 1001; i++) tx.put('metrics', { metric_id: `m${i}`, value: i })
      }),
    ).rejects.toMatchObject({ code: 'too_large' })
    expect(plain.status().pending).toBe(0)
  })

  it('files a tx group the edge refuses as too large as rejected, whole: none of it is applied', async () => {
    const edge = await edgeFor({ limits: { maxBodyBytes: 4096 } })
    const { engine, cache } = await engineOn(edge)
    await engine.put('metrics', { metric_id: 'small', value: 1 })
    const big = (i: number) => ({ metric_id: `big-${i}-${'x'.repeat(1500)}`, value: i })
    await engine.transaction((tx) => {
      for (let i = 0; i < 4; i++) tx.put('metrics', big(i))
    })
    await engine.put('metrics', { metric_id: 'after', value: 2 })
    const report = await engine.sync()
    expect(report).toMatchObject({ pushed: 6, applied: 2, rejected: 4 })
    expect(await edge.row('metrics', { metric_id: 'small' })).toMatchObject({ value: 1 })
    expect(await edge.row('metrics', { metric_id: 'after' })).toMatchObject({ value: 2 })
    for (let i = 0; i < 4; i++) expect(await edge.row('metrics', { metric_id: big(i).metric_id })).toBeNull()
    const rejected = await engine.rejected()
    expect(rejected).toHaveLength(4)
    for (const r of rejected) expect(r.error.code).toBe('too_large')
    // the rejected rows are restored from the warehouse (they are not there): gone locally too
    const left = await cache.query('SELECT metric_id FROM metrics')
    expect(left.map((r) => r.metric_id).sort()).toEqual(['after', 'small'])
    expect(engine.status().pending).toBe(0)
  })

  it('resends the same seqs after a lost push answer; the edge answers duplicate and applies once', async () => {
    const edge = await edgeFor()
    const { engine } = await engineOn(edge)
    await engine.put('products', { product_id: 5, name: 'bolt', notes: 'first' })
    await engine.put('orders', order(uuid()))
    edge.fault = 'drop-response'
    await expect(engine.sync()).rejects.toMatchObject({ code: 'offline' })
    expect(engine.status().pending).toBe(2)
    expect(engine.status().lastError).toMatchObject({ code: 'offline' })
    edge.fault = 'none'
    const report = await engine.sync()
    expect(report).toMatchObject({ pushed: 2, duplicate: 2, applied: 0 })
    // `notes` merges by concatenation: applied twice it would read "first | first".
    expect(await edge.row('products', { product_id: 5 })).toMatchObject({ notes: 'first' })
    const events = await edge.warehouse.events(10)
    expect(events.map((e) => e.applied).reduce((a, b) => a + b, 0)).toBe(2)
  })

  it('keeps writes the edge rejects in a list the app can read and clear, and restores the warehouse row', async () => {
    // The client's schema is looser than the edge's, so the edge is the one to refuse.
    const loose = defineSchema({
      tables: {
        ...demoSchema.spec.tables,
        orders: {
          ...demoSchema.spec.tables.orders,
          columns: { ...demoSchema.spec.tables.orders.columns, status: { type: 'text' } },
        },
      },
    })
    const edge = await edgeFor()
    const { engine, cache } = await engineOn(edge, { schema: loose })
    const [good, bad, fresh] = [uuid(), uuid(), uuid()]
    await engine.put('orders', order(good, { status: 'paid' }))
    await engine.sync()
    await engine.put('orders', order(good, { status: 'teleported' }))
    await engine.put('orders', order(fresh, { status: 'lost' }))
    await engine.put('orders', order(bad))
    const report = await engine.sync()
    expect(report).toMatchObject({ pushed: 3, rejected: 2, applied: 1 })
    const rejected = await engine.rejected()
    expect(rejected).toHaveLength(2)
    expect(rejected[0]).toMatchObject({ table: 'orders', op: 'upsert', key: { order_id: good } })
    expect(rejected[0]?.error).toMatchObject({ code: 'invalid_value', field: 'status' })
    expect(engine.status().rejected).toBe(2)
    // The warehouse's row is back for the rejected update; the rejected insert is gone.
    expect(await cache.query('SELECT status FROM orders WHERE order_id = ?', [good])).toEqual([
      { status: 'paid' },
    ])
    expect(await cache.query('SELECT status FROM orders WHERE order_id = ?', [fresh])).toEqual([])
    expect(await engine.sync()).toMatchObject({ pushed: 0 })
    await engine.clearRejected()
    expect(await engine.rejected()).toEqual([])
    expect(engine.status().rejected).toBe(0)
  })
})

describe('engine: write-through', () => {
  it('resolves with the warehouse row online; throws `offline` and changes nothing when offline', async () => {
    const edge = await edgeFor()
    const { engine, cache } = await engineOn(edge)
    const row = await engine.put('customers', { customer_id: 1, name: 'Ada', email: 'ada@example.com' })
    expect(row).toMatchObject({ customer_id: 1, name: 'Ada', email: 'ada@example.com' })
    expect(await edge.row('customers', { customer_id: 1 })).toMatchObject({ name: 'Ada' })
    expect(await cache.query('SELECT name FROM customers WHERE customer_id = ?', [1])).toEqual([
      { name: 'Ada' },
    ])

    engine.setOnline(false)
    expect(engine.status().online).toBe(false)
    await expect(engine.put('customers', { customer_id: 2, name: 'Bo' })).rejects.toMatchObject({
      code: 'offline',
    })
    engine.setOnline(true)
    edge.fault = 'down'
    await expect(engine.put('customers', { customer_id: 1, name: 'Changed' })).rejects.toMatchObject({
      code: 'offline',
    })
    edge.fault = 'none'
    expect(await cache.query('SELECT name FROM customers WHERE customer_id = ?', [1])).toEqual([
      { name: 'Ada' },
    ])
    expect(await cache.query('SELECT name FROM customers WHERE customer_id = ?', [2])).toEqual([])
    expect(engine.status().pending).toBe(0)
    expect(await edge.row('customers', { customer_id: 2 })).toBeNull()
  })

  it('turns a manual-strategy conflict into a `rejected` error and counts it in the status', async () => {
    const edge = await edgeFor()
    let t = 50_000_000
    const a = await engineOn(edge, { now: () => t })
    const b = await engineOn(edge, { now: () => t + 10_000 }) // b's clock runs ahead
    await b.engine.put('customers', { customer_id: 4, name: 'From B' })
    t += 1
    const err = await a.engine.put('customers', { customer_id: 4, name: 'From A' }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'rejected' })
    expect(String((err as Error).message)).toMatch(/conflict/)
    expect(a.engine.status().conflicts).toBe(1)
    expect(await edge.row('customers', { customer_id: 4 })).toMatchObject({ name: 'From B' })
    expect(await a.cache.query('SELECT name FROM customers WHERE customer_id = ?', [4])).toEqual([])
  })

  it("follows the environment's online/offline events", async () => {
    // Node's global scope is no EventTarget; stand one in, as a browser window or worker has.
    const target = new EventTarget()
    const install = (k: 'addEventListener' | 'removeEventListener') =>
      Object.defineProperty(globalThis, k, {
        value: target[k].bind(target),
        configurable: true,
        writable: true,
      })
    install('addEventListener')
    install('removeEventListener')
    try {
      const edge = await edgeFor()
      const { engine } = await engineOn(edge)
      expect(engine.status().online).toBe(true)
      target.dispatchEvent(new Event('offline'))
      expect(engine.status().online).toBe(false)
      await expect(engine.put('customers', { customer_id: 3, name: 'Di' })).rejects.toMatchObject({
        code: 'offline',
      })
      await expect(engine.sync()).rejects.toMatchObject({ code: 'offline' })
      target.dispatchEvent(new Event('online'))
      expect(engine.status().online).toBe(true)
      expect(await engine.put('customers', { customer_id: 3, name: 'Di' })).toMatchObject({ name: 'Di' })
      // the app's switch and the environment are both needed
      engine.setOnline(false)
      target.dispatchEvent(new Event('online'))
      expect(engine.status().online).toBe(false)
      // once closed, the engine no longer listens
      engine.setOnline(true)
      await engine.close()
      const before = engine.status()
      target.dispatchEvent(new Event('offline'))
      expect(engine.status()).toEqual(before)
    } finally {
      Reflect.deleteProperty(globalThis, 'addEventListener')
      Reflect.deleteProperty(globalThis, 'removeEventListener')
    }
  })

  it('drops a queued write the edge records as a conflict, counts it, and pulls the stored row', async () => {
    // customers queued (write-back) on this client; the edge keeps its manual strategy
    const queued = defineSchema({
      tables: {
        ...demoSchema.spec.tables,
        customers: { ...demoSchema.spec.tables.customers, sync: 'write-back' },
      },
    })
    const edge = await edgeFor()
    const t = 60_000_000
    const a = await engineOn(edge, { schema: queued, now: () => t })
    const b = await engineOn(edge, { now: () => t + 10_000 })
    await a.engine.put('customers', { customer_id: 5, name: 'From A' })
    await b.engine.put('customers', { customer_id: 5, name: 'From B' })
    const report = await a.engine.sync()
    expect(report).toMatchObject({ pushed: 1, conflict: 1, applied: 0 })
    expect(a.engine.status()).toMatchObject({ conflicts: 1, pending: 0 })
    expect(await a.cache.query('SELECT name, _needs_sync FROM customers')).toEqual([
      { name: 'From B', _needs_sync: false },
    ])
  })

  it('sends queued writes before a write-through write so their lower seqs are not lost', async () => {
    const edge = await edgeFor()
    const { engine } = await engineOn(edge)
    const id = uuid()
    await engine.put('orders', order(id))
    await engine.put('customers', { customer_id: 9, name: 'Cy' })
    expect(await edge.row('orders', { order_id: id })).toMatchObject({ customer_id: 7 })
    expect(engine.status().pending).toBe(0)
  })
})

describe('engine: sync between clients', () => {
  it('converges on last-write-wins between two clients whatever order they push in', async () => {
    const edge = await edgeFor()
    let t = 1_000_000
    const clock = () => t
    const a = await engineOn(edge, { now: clock })
    const b = await engineOn(edge, { now: clock })
    expect(a.engine.clientId).not.toBe(b.engine.clientId)
    const id = uuid()
    await a.engine.put('orders', order(id, { status: 'paid' }))
    t += 1000
    await b.engine.put('orders', order(id, { status: 'shipped' }))
    const remote: string[] = []
    a.engine.on('change', (e) => remote.push(`${e.table}:${e.source}`))
    // The later write is pushed first; the earlier one then arrives and loses.
    expect(await b.engine.sync()).toMatchObject({ applied: 1 })
    expect(await a.engine.sync()).toMatchObject({ stale: 1 })
    await b.engine.sync()
    for (const c of [a.cache, b.cache]) {
      expect(await c.query('SELECT status FROM orders WHERE order_id = ?', [id])).toEqual([
        { status: 'shipped' },
      ])
    }
    expect(await edge.row('orders', { order_id: id })).toMatchObject({ status: 'shipped' })
    expect(remote).toContain('orders:remote')
  })

  it('pushes hybrid tables on their schedule only (fake clock), write-back ones at once', async () => {
    const edge = await edgeFor()
    let t = 5_000_000
    const { engine } = await engineOn(edge, { now: () => t, autoSync: true })
    await engine.put('products', { product_id: 1, name: 'nut', units_in_stock: 4 })
    const id = uuid()
    await engine.put('orders', order(id))
    await vi.waitFor(async () => expect(await edge.row('orders', { order_id: id })).not.toBeNull(), {
      timeout: 5000,
    })
    await vi.waitFor(() => expect(engine.status().pending).toBe(1))
    expect(await edge.row('products', { product_id: 1 })).toBeNull()
    t += 5 * 60_000 // the products schedule is 5m
    await vi.waitFor(async () => expect(await edge.row('products', { product_id: 1 })).not.toBeNull(), {
      timeout: 5000,
    })
    await vi.waitFor(() => expect(engine.status().pending).toBe(0))
  })

  it("pulls on its refresh schedule (fake clock): another client's write shows up without a local sync", async () => {
    const edge = await edgeFor()
    let t = 7_000_000
    const a = await engineOn(edge, { now: () => t, autoSync: true })
    const b = await engineOn(edge)
    await vi.waitFor(() => expect(a.engine.status().lastSyncAt).not.toBeNull()) // the first pass pulled
    const id = uuid()
    await b.engine.put('orders', order(id))
    await b.engine.sync()
    const pulls = edge.hits.get('/sync/pull') ?? 0
    t += 30_000 // no table sets `refresh`: the default pull interval
    await vi.waitFor(async () => expect(await a.cache.query('SELECT order_id FROM orders')).toHaveLength(1), {
      timeout: 5000,
    })
    expect(edge.hits.get('/sync/pull') ?? 0).toBeGreaterThan(pulls)
  })

  it('reloads an invalidate-on-write table lazily, on the next query that reads it', async () => {
    const edge = await edgeFor()
    let t = 9_000_000
    const a = await engineOn(edge, { now: () => t })
    const b = await engineOn(edge, { now: () => t })
    await a.engine.put('metrics', { metric_id: 'cpu', value: 1 })
    t += 1000
    await b.engine.put('metrics', { metric_id: 'cpu', value: 2 })
    await b.engine.sync()
    // Reading another table does not reload metrics.
    const pullsBefore = edge.hits.get('/sync/pull') ?? 0
    await a.engine.query('SELECT * FROM orders')
    expect(edge.hits.get('/sync/pull') ?? 0).toBe(pullsBefore)
    expect(await a.cache.query('SELECT value FROM metrics')).toEqual([{ value: 1 }])
    // The first read of metrics pushes the local write and pulls: the newer value wins.
    expect(await a.engine.query('SELECT value FROM metrics')).toEqual([{ value: 2 }])
    const pullsAfter = edge.hits.get('/sync/pull') ?? 0
    expect(pullsAfter).toBeGreaterThan(pullsBefore)
    // Not stale any more: the next read is local.
    await a.engine.query('SELECT value FROM metrics')
    expect(edge.hits.get('/sync/pull')).toBe(pullsAfter)
  })

  it('pulls at once after a write to a refresh-on-write table', async () => {
    const refreshing = defineSchema({
      tables: {
        ...demoSchema.spec.tables,
        metrics: { ...demoSchema.spec.tables.metrics, refreshOnWrite: true },
      },
    })
    const edge = await edgeFor()
    let t = 11_000_000
    const a = await engineOn(edge, { schema: refreshing, now: () => t })
    const b = await engineOn(edge, { now: () => t })
    t += 1000
    await b.engine.put('metrics', { metric_id: 'mem', value: 7 })
    await b.engine.sync()
    await a.engine.put('metrics', { metric_id: 'disk', value: 1 })
    // no query, no sync: the write itself pushed and pulled
    await vi.waitFor(
      async () =>
        expect(await a.cache.query('SELECT metric_id, value FROM metrics ORDER BY metric_id')).toEqual([
          { metric_id: 'disk', value: 1 },
          { metric_id: 'mem', value: 7 },
        ]),
      { timeout: 5000 },
    )
    await vi.waitFor(async () => expect(await edge.row('metrics', { metric_id: 'disk' })).not.toBeNull())
  })

  it('lets only one of two engines on one profile push, and both share the outbox', async () => {
    const edge = await edgeFor()
    const dbName = `engine-test-${crypto.randomUUID()}`
    const pushes = [0, 0]
    const counting =
      (i: number): typeof fetch =>
      (input, init) => {
        if (String(input).endsWith('/push')) pushes[i] = (pushes[i] ?? 0) + 1
        return edge.fetch(input, init)
      }
    const one = await engineOn(edge, { dbName, autoSync: true, fetch: counting(0) })
    const two = await engineOn(edge, { dbName, autoSync: true, fetch: counting(1) })
    expect(two.engine.clientId).toBe(one.engine.clientId)
    await vi.waitFor(() => expect(one.engine.status().leader || two.engine.status().leader).toBe(true))
    const ids = [uuid(), uuid(), uuid(), uuid()]
    await one.engine.put('orders', order(ids[0] ?? ''))
    await two.engine.put('orders', order(ids[1] ?? ''))
    await two.engine.put('orders', order(ids[2] ?? ''))
    await one.engine.put('orders', order(ids[3] ?? ''))
    for (const id of ids)
      await vi.waitFor(async () => expect(await edge.row('orders', { order_id: id })).not.toBeNull(), {
        timeout: 5000,
      })
    expect([one.engine.status().leader, two.engine.status().leader].filter(Boolean)).toHaveLength(1)
    const leaderIndex = one.engine.status().leader ? 0 : 1
    expect(pushes[leaderIndex]).toBeGreaterThan(0)
    expect(pushes[1 - leaderIndex]).toBe(0)
    const events = await edge.warehouse.events(100)
    expect(events.reduce((s, e) => s + e.applied, 0)).toBe(4)
    expect(events.reduce((s, e) => s + e.duplicate, 0)).toBe(0)
    await vi.waitFor(() => expect(two.engine.status().pending).toBe(0))
    // Each engine's own cache ends with all four rows, none left marked as needing sync.
    for (const c of [one.cache, two.cache]) {
      await vi.waitFor(
        async () => {
          expect(await c.query('SELECT count(*) AS n FROM orders')).toEqual([{ n: 4 }])
          expect(await c.query('SELECT * FROM orders WHERE _needs_sync')).toEqual([])
        },
        { timeout: 5000 },
      )
    }
  })

  it('counts diverged rows through the digest, drilling only into differing buckets', async () => {
    const edge = await edgeFor()
    const a = await engineOn(edge)
    const b = await engineOn(edge)
    const ids = Array.from({ length: 20 }, () => uuid())
    await a.engine.transaction((tx) => {
      for (const id of ids) tx.put('orders', order(id))
    })
    await a.engine.sync()
    expect(await a.engine.divergence('orders')).toEqual({ diverged: 0 })
    // b pulls first, so its stamp follows a's (in the same millisecond it could otherwise lose, stale).
    await b.engine.sync()
    await b.engine.put('orders', order(ids[3] ?? '', { status: 'cancelled' }))
    await b.engine.sync()
    const digestsBefore = edge.hits.get('/sync/digest') ?? 0
    expect(await a.engine.divergence('orders')).toEqual({ diverged: 1 })
    // one bucket request plus one drill-down into the single differing bucket
    expect((edge.hits.get('/sync/digest') ?? 0) - digestsBefore).toBe(2)
    await a.engine.sync()
    expect(await a.engine.divergence('orders')).toEqual({ diverged: 0 })
  })
})

describe('engine: events', () => {
  it('emits change events and re-runs live queries of the tables they read', async () => {
    const edge = await edgeFor()
    const { engine } = await engineOn(edge)
    const changes: string[] = []
    engine.on('change', (e) => changes.push(`${e.table}:${e.source}`))
    const seen: number[] = []
    const stop = engine.subscribe('SELECT count(*) AS n FROM orders', [], (rows) =>
      seen.push(Number(rows[0]?.n)),
    )
    await vi.waitFor(() => expect(seen).toEqual([0]))
    await engine.put('orders', order(uuid()))
    await vi.waitFor(() => expect(seen.at(-1)).toBe(1))
    await engine.put('metrics', { metric_id: 'x', value: 1 })
    expect(changes).toEqual(['orders:local', 'metrics:local'])
    const statuses: number[] = []
    engine.on('status', (s) => statuses.push(s.pending))
    await engine.sync()
    expect(statuses.at(-1)).toBe(0)
    stop()
    await engine.put('orders', order(uuid()))
    expect(seen.at(-1)).toBe(1)
  })
})

describe('engine: durability and failures', () => {
  it('keeps pending writes and the clock across a reload, even when the wall clock went back', async () => {
    const edge = await edgeFor()
    const dbName = `engine-test-${crypto.randomUUID()}`
    const id = uuid()
    const first = await engineOn(edge, { dbName, now: () => 10_000_000 })
    await first.engine.put('orders', order(id, { status: 'paid' }))
    const stamp1 = (await first.cache.query('SELECT _hlc FROM orders'))[0]?._hlc
    await first.engine.close()
    const second = await engineOn(edge, { dbName, now: () => 5_000_000 })
    expect(second.engine.clientId).toBe(first.engine.clientId)
    expect(second.engine.status().pending).toBe(1)
    await second.engine.put('orders', order(id, { status: 'shipped' }))
    const stamp2 = (await second.cache.query('SELECT _hlc FROM orders'))[0]?._hlc
    expect(String(stamp2) > String(stamp1)).toBe(true)
    expect(await second.engine.sync()).toMatchObject({ pushed: 2, applied: 2 })
    expect(await edge.row('orders', { order_id: id })).toMatchObject({ status: 'shipped' })
  })

  it('takes a fresh clientId when its outbox was lost, so new seqs are not mistaken for old ones', async () => {
    const edge = await edgeFor()
    const dbName = `engine-test-${crypto.randomUUID()}`
    const first = await engineOn(edge, { dbName })
    for (let i = 0; i < 3; i++) await first.engine.put('orders', order(uuid()))
    await first.engine.sync()
    await first.engine.close()
    await new Promise<void>((resolve, reject) => {
      const req = indexedDB.deleteDatabase(`${dbName}-outbox`)
      req.onsuccess = () => resolve()
      req.onerror = () => reject(req.error)
    })
    const second = await engineOn(edge, { dbName })
    expect(second.engine.clientId).not.toBe(first.engine.clientId)
    const id = uuid()
    await second.engine.put('orders', order(id))
    expect(await second.engine.sync()).toMatchObject({ applied: 1, duplicate: 0 })
    expect(await edge.row('orders', { order_id: id })).not.toBeNull()
    // and the new id sticks
    await second.engine.close()
    const third = await engineOn(edge, { dbName })
    expect(third.engine.clientId).toBe(second.engine.clientId)
  })

  it('closes promptly while a push hangs, keeping the write for the next start', async () => {
    const edge = await edgeFor()
    const dbName = `engine-test-${crypto.randomUUID()}`
    const first = await engineOn(edge, { dbName, autoSync: true })
    edge.fault = 'hang'
    await first.engine.put('orders', order(uuid()))
    await vi.waitFor(() => expect(edge.hits.get('/sync/push')).toBe(1))
    await first.engine.close()
    await expect(first.engine.put('orders', order(uuid()))).rejects.toMatchObject({ code: 'closed' })
    edge.fault = 'none'
    const second = await engineOn(edge, { dbName })
    expect(second.engine.status().pending).toBe(1)
    expect(await second.engine.sync()).toMatchObject({ pushed: 1, applied: 1 })
  })

  it('surfaces a 4xx answer in status().lastError and recovers once the cause is fixed', async () => {
    const secret = 'test-secret-of-at-least-32-bytes-long!!'
    const edge = await edgeFor({ auth: { secret } })
    let token: string | undefined
    const { engine } = await engineOn(edge, { autoSync: true, token: async () => token })
    const id = uuid()
    await engine.put('orders', order(id))
    await vi.waitFor(() => expect(engine.status().lastError).toMatchObject({ code: 'unauthorized' }), {
      timeout: 5000,
    })
    expect(engine.status().pending).toBe(1)
    token = await new SignJWT({ sub: 'user-1' })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(secret))
    engine.setOnline(false)
    engine.setOnline(true) // coming back online retries at once
    await vi.waitFor(() => expect(engine.status().pending).toBe(0), { timeout: 5000 })
    // the pass ends with a pull; its success clears the error
    await vi.waitFor(() => expect(engine.status().lastError).toBeNull(), { timeout: 5000 })
    expect(await edge.row('orders', { order_id: id })).not.toBeNull()
  })

  it('halves its batches when the edge answers 413 too_large', async () => {
    const edge = await edgeFor({ limits: { maxMutations: 2 } })
    const { engine } = await engineOn(edge)
    const ids = Array.from({ length: 5 }, () => uuid())
    for (const id of ids) await engine.put('orders', order(id))
    expect(await engine.sync()).toMatchObject({ pushed: 5, applied: 5 })
    for (const id of ids) expect(await edge.row('orders', { order_id: id })).not.toBeNull()
  })

  it('backs off exponentially with jitter, capped', () => {
    expect(backoffDelay(1, () => 0)).toBe(500)
    expect(backoffDelay(1, () => 0.999_999)).toBe(1000)
    expect(backoffDelay(4, () => 0)).toBe(4000)
    expect(backoffDelay(30, () => 0)).toBe(30_000)
  })
})
