import { describe, expect, it } from 'vitest'
import { withEdgeAndBrowser } from './edge-and-browser.ts'
import { openPage } from './harness.ts'
import type { TestPageWindow } from './page/main.ts'

/**
 * An app whose schema grows between two visits (a table added in a new release) gets the new
 * table's existing rows: they sit at or below the pull cursor the old version saved, so Eddy
 * forgets that cursor when the cache's shape changes and the next sync loads afresh. Real
 * Chromium, OPFS, DuckDB-WASM and edge.
 */
const env = withEdgeAndBrowser()

const order = (n: number, status: string) => ({
  order_id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  customer_id: 6 + n,
  total_amount: `${5 * n}.00`,
  status,
})

describe('a schema that grows between visits', () => {
  it('pulls the rows of a table added since the cursor was saved, keeping pending writes', async () => {
    const page = (name: string) => `${env.server.origin}/test/browser/page/index.html?name=${name}&autoSync=0`
    // another user's rows, in the warehouse before the app's first visit
    const writer = await openPage(env.browser, page(`w${Date.now().toString(36)}`), 'eddy ready')
    await writer.evaluate(
      async (theirs) => {
        const { eddy } = window as unknown as TestPageWindow
        await eddy.put('products', { product_id: 41, name: 'kettle', unit_price: '20.00', units_in_stock: 3 })
        await eddy.put('orders', theirs)
        await eddy.sync()
      },
      order(1, 'paid'),
    )
    await writer.close()

    const app = await openPage(env.browser, page('unused'), 'eddy ready')
    const out = await app.evaluate(
      async ({ name, mine }) => {
        const w = window as unknown as TestPageWindow
        const open = (spec: Parameters<typeof w.defineSchema>[0]) =>
          w.createEddy({
            url: '/sync',
            schema: w.defineSchema(spec),
            name,
            persistence: 'opfs',
            autoSync: false,
          })
        const { orders, products } = w.demoSchema.spec.tables
        // release 1 knows orders only: its sync saves a cursor past the product
        const v1 = await open({ tables: { orders } })
        await v1.sync()
        const v1Orders = await v1.query('SELECT count(*)::INTEGER AS n FROM orders')
        await v1.put('orders', mine)
        await v1.close()
        // release 2 adds products
        const v2 = await open({ tables: { orders, products } })
        const pendingAtOpen = v2.status().pending
        await v2.sync()
        const result = {
          v1Orders,
          pendingAtOpen,
          products: await v2.query('SELECT product_id, name FROM products'),
          orders: await v2.query('SELECT order_id, _needs_sync FROM orders ORDER BY order_id'),
        }
        await v2.close()
        return result
      },
      { name: `grow${Date.now().toString(36)}`, mine: order(2, 'pending') },
    )
    expect(out.v1Orders).toEqual([{ n: 1 }])
    expect(out.pendingAtOpen).toBe(1)
    expect(out.products).toEqual([{ product_id: 41, name: 'kettle' }])
    expect(out.orders).toEqual([
      { order_id: order(1, 'paid').order_id, _needs_sync: false },
      { order_id: order(2, 'pending').order_id, _needs_sync: false },
    ])
    await app.close()
  })
})
