import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { changesToArrow } from '../../edge/pull/arrow-pull.ts'
import { canonicalKey } from '../../shared/digest.ts'
import { formatHlc } from '../../shared/hlc.ts'
import { startEdge, type TestEdge } from '../../test/support/edge.ts'
import { createEngine, type Engine, type EngineOptions } from '../engine/engine.ts'
import { MemoryCache } from '../testing/memory-cache.ts'

/**
 * First loads through the Arrow bulk pull (engine over the memory cache, the real edge in-process):
 * a fresh cache hydrates each table through Arrow, then continues with JSON pulls.
 */
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

interface Seen {
  arrow: string[]
  json: string[]
}

/** The edge's fetch, recording each pull as Arrow (by table) or JSON (by query). */
function recording(edge: TestEdge, seen: Seen): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    if (url.pathname.endsWith('/pull')) {
      const accept = new Headers(init?.headers).get('accept') ?? ''
      if (accept.includes('arrow')) seen.arrow.push(url.searchParams.get('tables') ?? '')
      else seen.json.push(url.search)
    }
    return edge.fetch(input, init)
  }
}

async function engineOn(edge: TestEdge, extra: Partial<EngineOptions> = {}) {
  const cache = new MemoryCache()
  const seen: Seen = { arrow: [], json: [] }
  const engine: Engine = await createEngine({
    url: edge.url,
    schema: demoSchema,
    cache,
    fetch: recording(edge, seen),
    dbName: `bulk-test-${crypto.randomUUID()}`,
    autoSync: false,
    ...extra,
  })
  cleanups.push(() => engine.close())
  return { engine, cache, seen }
}

const order = (n: number, extra: Record<string, unknown> = {}) => ({
  order_id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  customer_id: 1 + (n % 7),
  total_amount: `${n}.50`,
  status: 'paid',
  ...extra,
})

describe('engine: first load through the Arrow bulk pull', () => {
  it('hydrates a fresh cache through Arrow, tombstones included, then pulls increments as JSON', async () => {
    const edge = await startEdge(demoSchema)
    cleanups.push(() => edge.close())
    const writer = await engineOn(edge, { bulkLoad: false })
    await writer.engine.transaction((tx) => {
      for (let n = 1; n <= 300; n++) tx.put('orders', order(n))
      tx.put('products', { product_id: 1, name: 'bolt', unit_price: '0.25', units_in_stock: 9 })
      tx.put('metrics', { metric_id: 'm1', value: 1.5 })
    })
    await writer.engine.delete('orders', { order_id: order(7).order_id })
    await writer.engine.sync()
    expect(writer.seen.arrow).toEqual([]) // bulkLoad off: JSON only

    // a reader whose wall clock is behind: only the pulled stamps can put its next write after them
    const reader = await engineOn(edge, { now: () => Date.UTC(2020, 0, 1) })
    const progress: Array<{ done: number; total: number }> = []
    reader.engine.on('status', (s) => {
      if (s.progress !== undefined) progress.push(s.progress)
    })
    const report = await reader.engine.sync()
    // one Arrow request per table, then JSON from the resume cursor, which has nothing newer
    expect([...reader.seen.arrow].sort()).toEqual([...demoSchema.tables.keys()].sort())
    expect(reader.seen.json).toHaveLength(1)
    expect(reader.seen.json[0]).toContain('cursor=')
    // 299 live orders + 1 tombstone + a product + a metric
    expect(report.pulled).toBe(302)
    expect(progress.at(-1)).toEqual({ done: 302, total: 302 })
    expect(reader.engine.status().progress).toBeUndefined()

    const orders = await reader.engine.query('SELECT * FROM orders ORDER BY order_id')
    expect(orders).toHaveLength(299)
    expect(orders.some((r) => r.order_id === order(7).order_id)).toBe(false)
    expect(orders.find((r) => r.order_id === order(42).order_id)).toMatchObject({
      customer_id: 1,
      total_amount: '42.50',
      status: 'paid',
      _needs_sync: false,
    })
    expect(await reader.engine.query('SELECT * FROM products')).toMatchObject([
      { product_id: 1, name: 'bolt', unit_price: '0.25', units_in_stock: 9 },
    ])
    // the hydrated stamps reached the clock: a local write stamps after the newest pulled one
    const pulledMax = [...(reader.cache.tables.get('metrics')?.values() ?? [])]
      .map((e) => e.hlc)
      .sort()
      .at(-1)
    expect(pulledMax).toBeDefined()
    await reader.engine.put('metrics', { metric_id: 'm2', value: 2 })
    const metrics = demoSchema.table('metrics')
    const local = (await reader.cache.getRows(metrics, [{ metric_id: 'm2' }])).get(
      canonicalKey(metrics, { metric_id: 'm2' }),
    )
    expect(local !== undefined && pulledMax !== undefined && local.hlc > pulledMax).toBe(true)

    // later changes arrive through JSON pulls, not another bulk load
    await writer.engine.put('orders', order(42, { status: 'shipped' }))
    await writer.engine.delete('orders', { order_id: order(43).order_id })
    await writer.engine.sync()
    const arrowBefore = reader.seen.arrow.length
    await reader.engine.sync()
    expect(reader.seen.arrow.length).toBe(arrowBefore)
    const after = await reader.engine.query('SELECT * FROM orders WHERE order_id = ?', [order(42).order_id])
    expect(after).toMatchObject([{ status: 'shipped' }])
    expect(
      await reader.engine.query('SELECT * FROM orders WHERE order_id = ?', [order(43).order_id]),
    ).toEqual([])
  })

  it('loadArrow never overwrites a pending local write with an older row, and applies tombstones', async () => {
    const cache = new MemoryCache()
    const orders = demoSchema.table('orders')
    await cache.init([...demoSchema.tables.values()])
    const stamp = (n: number): string => formatHlc({ wall: Date.UTC(2026, 0, 1) + n, counter: 0, node: 'x' })
    const key = (n: number) => ({ order_id: order(n).order_id })
    await cache.applyRemote(
      [{ table: 'orders', key: key(3), row: order(3), hlc: stamp(1) }],
      demoSchema.tables,
    )
    await cache.applyLocal([
      { table: orders, key: key(1), row: order(1, { status: 'cancelled' }), hlc: stamp(50) },
    ])
    const change = (n: number, hlc: string, row: Record<string, unknown> | null) => ({
      table: 'orders',
      key: key(n),
      row,
      hlc,
      version: BigInt(n),
    })
    const ipc = changesToArrow(orders, [
      change(1, stamp(10), order(1, { status: 'paid' })),
      change(2, stamp(11), order(2)),
      change(3, stamp(12), null),
    ])
    expect(await cache.loadArrow(orders, ipc)).toBe(3)
    const rows = await cache.getRows(orders, [key(1), key(2), key(3)])
    const [one, two, three] = [key(1), key(2), key(3)].map((k) => rows.get(canonicalKey(orders, k)))
    expect(one).toMatchObject({ values: { status: 'cancelled' }, needsSync: true, hlc: stamp(50) })
    expect(two).toMatchObject({ values: order(2), needsSync: false, hlc: stamp(11) })
    expect(three?.deleted ?? true).toBe(true)
    expect(await cache.query('SELECT * FROM orders ORDER BY order_id')).toHaveLength(2)
  })
})
