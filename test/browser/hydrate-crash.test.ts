import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import {
  DROP,
  launchProfile,
  openPage,
  startEdge,
  startServer,
  type TestEdge,
  type TestServer,
} from './harness.ts'
import type { TestPageWindow } from './page/main.ts'

/**
 * A first load is many Arrow pages, each its own cache transaction, made durable once after the
 * last page, before the cursor is saved. A tab killed in the middle of it, or right after it, must
 * reopen with a cache and a cursor that agree: no row skipped or doubled, and a pending local write
 * still standing over the older pulled row.
 */
let server: TestServer
let edge: TestEdge
const ORDERS = 55_000 // three Arrow pages of the engine's 25,000 rows
const SEED_HLC = '001767225600000:00000:seed'
const uuid = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`

beforeAll(async () => {
  server = await startServer()
  edge = await startEdge()
  server.setEdge(edge.fetch)
  const orders = demoSchema.table('orders')
  const products = demoSchema.table('products')
  await edge.warehouse.write(async (tx) => {
    await tx.writeRows(
      orders,
      Array.from({ length: ORDERS }, (_, i) => ({
        key: { order_id: uuid(i) },
        row: {
          values: { order_id: uuid(i), customer_id: 1 + (i % 50), total_amount: '10.00', status: 'paid' },
          hlc: SEED_HLC,
          deleted: false,
        },
        clientId: 'seed',
      })),
    )
    await tx.writeRows(products, [
      {
        key: { product_id: 1 },
        row: {
          values: { product_id: 1, name: 'seeded', unit_price: '2.00', units_in_stock: 5 },
          hlc: SEED_HLC,
          deleted: false,
        },
        clientId: 'seed',
      },
    ])
  })
})
afterAll(async () => {
  await server?.close()
  await edge?.close()
})

async function crash(page: Page, profile: Awaited<ReturnType<typeof launchProfile>>): Promise<void> {
  const cdp = await profile.context.newCDPSession(page)
  const crashed = new Promise<void>((r) => page.once('crash', () => r()))
  void cdp.send('Page.crash').catch(() => undefined) // never answers: the renderer is gone first
  await crashed
}

/** An invalidate-on-write query pushes `metrics` and then pulls, leaving the hybrid `products` write parked. */
async function pullLeavingProductsParked(page: Page, metric: string): Promise<void> {
  await page.evaluate(async (id) => {
    const { eddy } = window as unknown as TestPageWindow
    await eddy.put('metrics', { metric_id: id, value: 1 })
    await eddy.query('SELECT count(*) AS n FROM metrics')
  }, metric)
}

async function state(page: Page) {
  return page.evaluate(async () => {
    const { eddy } = window as unknown as TestPageWindow
    const [orders] = await eddy.query(
      'SELECT count(*) AS n, count(DISTINCT order_id) AS keys, bool_or(_needs_sync) AS pending FROM orders',
    )
    const product = await eddy.query('SELECT name, _needs_sync FROM products WHERE product_id = 1')
    return { orders: Number(orders?.n), keys: Number(orders?.keys), pending: orders?.pending, product }
  })
}

describe('a tab killed during or after a multi-page first load', () => {
  it('reopens with cache and cursor agreeing, and the pending local write still wins', async () => {
    const profile = await launchProfile()
    const name = `hc${Date.now().toString(36)}`
    const url = `${server.origin}/test/browser/page/index.html?name=${name}&autoSync=0&persistence=opfs`
    const arrowPulls: string[] = []
    let release: (() => void) | undefined
    try {
      const page = await openPage(profile.context, url, 'eddy ready')
      // a parked local edit of a seeded product, newer than the seeded row
      await page.evaluate(() =>
        (window as unknown as TestPageWindow).eddy.put('products', {
          product_id: 1,
          name: 'local edit',
          unit_price: '3.00',
          units_in_stock: 4,
        }),
      )
      // the second orders page never answers: the load stops after its first page
      server.setInterceptor((req) => {
        const u = new URL(req.url)
        if (!(req.headers.get('accept') ?? '').includes('arrow')) return undefined
        arrowPulls.push(`${u.searchParams.get('tables')}${u.searchParams.has('cursor') ? '+' : ''}`)
        if (u.searchParams.get('tables') === 'orders' && u.searchParams.has('cursor'))
          return new Promise((r) => {
            release = () => r(DROP)
          })
        return undefined
      })
      void pullLeavingProductsParked(page, 'm1').catch(() => undefined) // never answers: killed first
      // the first page is in the cache (queries queue behind its load)
      await expect
        .poll(
          () =>
            page.evaluate(async () => {
              const [r] = await (window as unknown as TestPageWindow).eddy.query(
                'SELECT count(*) AS n FROM orders',
              )
              return Number(r?.n)
            }),
          { timeout: 60_000 },
        )
        .toBe(25_000)
      await crash(page, profile)
      release?.()
      server.setInterceptor((req) => {
        const u = new URL(req.url)
        if ((req.headers.get('accept') ?? '').includes('arrow'))
          arrowPulls.push(`${u.searchParams.get('tables')}${u.searchParams.has('cursor') ? '+' : ''}`)
        return undefined
      })

      // reopened: no cursor was saved, so the first load runs again, over whatever page 1 left
      let context = await profile.reopen()
      let again = await openPage(context, url, 'eddy ready')
      expect((await state(again)).product).toEqual([{ name: 'local edit', _needs_sync: true }])
      arrowPulls.length = 0
      await pullLeavingProductsParked(again, 'm2')
      expect(arrowPulls.filter((p) => p === 'orders+')).toHaveLength(2)
      expect(await state(again)).toEqual({
        orders: ORDERS,
        keys: ORDERS,
        pending: false,
        product: [{ name: 'local edit', _needs_sync: true }],
      })

      // killed right after the load: the cursor was saved after the load was durable
      await crash(again, profile)
      context = await profile.reopen()
      again = await openPage(context, url, 'eddy ready')
      expect(await state(again)).toEqual({
        orders: ORDERS,
        keys: ORDERS,
        pending: false,
        product: [{ name: 'local edit', _needs_sync: true }],
      })
      arrowPulls.length = 0
      await pullLeavingProductsParked(again, 'm3')
      expect(arrowPulls).toEqual([]) // JSON from the saved cursor, no second first load
      expect((await state(again)).orders).toBe(ORDERS)
    } finally {
      release?.()
      server.setInterceptor(null)
      await profile.dispose()
    }
  }, 240_000)
})
