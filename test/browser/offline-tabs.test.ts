import type { Browser, Page } from 'playwright-core'
import * as v from 'valibot'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { pullResponse } from '../../shared/protocol.ts'
import type { Row } from '../../shared/schema.ts'
import {
  DROP,
  launchBrowser,
  openPage,
  startEdge,
  startServer,
  type TestEdge,
  type TestServer,
} from './harness.ts'
import type { TestPageWindow } from './page/main.ts'

/**
 * What a tab shows while the edge cannot be reached, in Chromium: hybrid writes parked for their
 * schedule (the outbox is their record, like write-back writes), a second tab of the profile that
 * starts offline (it cannot open the OPFS file), and the size limit of a transaction.
 * "Offline" is an edge the server cannot reach (`/sync` dropped) plus the app's switch.
 */
let server: TestServer
let browser: Browser
let edge: TestEdge
let n = 0

beforeAll(async () => {
  server = await startServer()
  browser = await launchBrowser()
})
afterEach(async () => {
  server.setInterceptor(null)
  await edge?.close()
})
afterAll(async () => {
  await browser?.close()
  await server?.close()
})

async function freshEdge(): Promise<TestEdge> {
  edge = await startEdge()
  server.setEdge(edge.fetch)
  return edge
}
const pageUrl = (name: string, extra = ''): string =>
  `${server.origin}/test/browser/page/index.html?name=${name}${extra}`
const uniqueName = (): string => `o${Date.now().toString(36)}${n++}`
const uuid = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`
const order = (id: string, status = 'pending') => ({
  order_id: id,
  customer_id: 7,
  total_amount: '12.50',
  status,
})
const product = (id: number, name: string) => ({
  product_id: id,
  name,
  unit_price: '2.50',
  units_in_stock: 4,
})

async function pullAll(table: string): Promise<Row[]> {
  const res = await edge.fetch(new Request(`${server.origin}/sync/pull?tables=${table}`))
  return v.parse(pullResponse, await res.json()).changes.map((c) => ({ ...c.key, ...(c.row ?? {}) }))
}

const query = (p: Page, sql: string): Promise<Row[]> =>
  p.evaluate((sql) => (window as unknown as TestPageWindow).eddy.query(sql), sql)
const put = (p: Page, table: string, row: Row): Promise<void> =>
  p.evaluate(
    ({ table, row }) => (window as unknown as TestPageWindow).eddy.put(table, row).then(() => undefined),
    { table, row },
  )
const goOffline = (p: Page): Promise<void> =>
  p.evaluate(() => (window as unknown as TestPageWindow).eddy.setOnline(false))
const status = (p: Page) => p.evaluate(() => (window as unknown as TestPageWindow).eddy.status())

/** Polls `probe` until it answers true (Playwright's waitForFunction cannot await an async check). */
async function until(probe: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const PRODUCTS = 'SELECT product_id, name, _needs_sync FROM products ORDER BY product_id'

describe('offline tabs in Chromium', () => {
  it('replays hybrid writes parked for their schedule after a reload of a memory cache', async () => {
    await freshEdge()
    server.setInterceptor(() => DROP)
    const name = uniqueName()
    const page = await openPage(browser, pageUrl(name, '&persistence=memory'), 'eddy ready')
    await goOffline(page)
    await put(page, 'products', product(1, 'kettle'))
    await put(page, 'orders', order(uuid(1)))
    expect((await status(page)).pending).toBe(2)
    await page.reload()
    await page.waitForFunction(() => document.title === 'eddy ready')
    await goOffline(page)
    expect(await query(page, PRODUCTS)).toEqual([{ product_id: 1, name: 'kettle', _needs_sync: true }])
    expect(await query(page, 'SELECT order_id, _needs_sync FROM orders')).toEqual([
      { order_id: uuid(1), _needs_sync: true },
    ])
    expect((await status(page)).pending).toBe(2)
    // back online, sync() pushes the parked write with the rest
    server.setInterceptor(null)
    await page.evaluate(async () => {
      const { eddy } = window as unknown as TestPageWindow
      eddy.setOnline(true)
      await eddy.sync()
    })
    expect(await pullAll('products')).toMatchObject([{ product_id: 1, name: 'kettle' }])
    expect(await query(page, PRODUCTS)).toEqual([{ product_id: 1, name: 'kettle', _needs_sync: false }])
    await page.close()
  })

  it("two tabs offline see each other's parked hybrid writes", async () => {
    await freshEdge()
    server.setInterceptor(() => DROP)
    const context = await browser.newContext()
    const name = uniqueName()
    const a = await openPage(context, pageUrl(name), 'eddy ready')
    const b = await openPage(context, pageUrl(name), 'eddy ready')
    await goOffline(a)
    await goOffline(b)
    const seen = (p: Page, ids: number[]) =>
      until(async () => (await query(p, PRODUCTS)).map((r) => r.product_id).join() === ids.join())
    await put(a, 'products', product(10, 'from a'))
    await seen(b, [10])
    await put(b, 'products', product(11, 'from b'))
    await seen(a, [10, 11])
    expect(await query(b, PRODUCTS)).toEqual([
      { product_id: 10, name: 'from a', _needs_sync: true },
      { product_id: 11, name: 'from b', _needs_sync: true },
    ])
    await context.close()
  })

  it('a tab that cannot open the OPFS file and starts offline shows the cached rows, not only pending writes', async () => {
    await freshEdge()
    const context = await browser.newContext()
    const name = uniqueName()
    const a = await openPage(context, pageUrl(name, '&autoSync=0'), 'eddy ready')
    // rows the owner's cache holds as synced: written and pushed, and one pulled from another client
    await put(a, 'orders', order(uuid(20), 'paid'))
    await a.evaluate(() => (window as unknown as TestPageWindow).eddy.sync())
    const hlc = `${String(Date.now()).padStart(15, '0')}:00000:other`
    const pushed = await edge.fetch(
      new Request(`${server.origin}/sync/push`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          clientId: 'other',
          mutations: [
            {
              seq: 1,
              table: 'orders',
              op: 'upsert',
              key: { order_id: uuid(21) },
              values: order(uuid(21)),
              hlc,
            },
          ],
        }),
      }),
    )
    expect(pushed.status).toBe(200)
    await a.evaluate(() => (window as unknown as TestPageWindow).eddy.sync())
    // then offline: one pending write more
    server.setInterceptor(() => DROP)
    await goOffline(a)
    await put(a, 'orders', order(uuid(22), 'shipped'))
    const b = await openPage(context, pageUrl(name, '&autoSync=0'), 'eddy ready')
    await goOffline(b)
    expect(await b.evaluate(() => (window as unknown as TestPageWindow).eddy.persistence)).toBe('memory')
    const sql = 'SELECT order_id, status, _needs_sync FROM orders ORDER BY order_id'
    const expected = [
      { order_id: uuid(20), status: 'paid', _needs_sync: false },
      { order_id: uuid(21), status: 'pending', _needs_sync: false },
      { order_id: uuid(22), status: 'shipped', _needs_sync: true },
    ]
    expect(await query(a, sql)).toEqual(expected)
    expect(await query(b, sql)).toEqual(expected)
    expect((await status(b)).pending).toBe(1)
    // and it keeps following the owner's writes while offline
    await put(a, 'orders', order(uuid(23)))
    await until(async () => (await query(b, sql)).length === 4)
    await context.close()
  })

  it('a reload whose old worker still holds the cache file opens on the file, not on an empty copy', async () => {
    await freshEdge()
    const context = await browser.newContext()
    const name = uniqueName()
    const a = await openPage(context, pageUrl(name, '&autoSync=0'), 'eddy ready')
    await put(a, 'orders', order(uuid(30), 'paid'))
    await a.evaluate(() => (window as unknown as TestPageWindow).eddy.sync())
    expect((await status(a)).pending).toBe(0)
    await a.close()
    // What a reloading tab's old worker looks like to the new one: the file's lock still held for
    // a moment, by a holder that answers no ping (a plain page of the same origin here).
    const holder = await context.newPage()
    await holder.goto(`${server.origin}/no-such-page`)
    await holder.evaluate(
      (lockName) =>
        new Promise<void>((held) => {
          void navigator.locks.request(lockName, () => {
            held()
            return new Promise((r) => setTimeout(r, 1500))
          })
        }),
      `${name}:cache-file`,
    )
    // offline: the synced row can only come from the file (the outbox no longer holds it)
    server.setInterceptor(() => DROP)
    const b = await openPage(context, pageUrl(name, '&autoSync=0'), 'eddy ready')
    await goOffline(b)
    expect(await b.evaluate(() => (window as unknown as TestPageWindow).eddy.persistence)).toBe('opfs')
    expect(await query(b, 'SELECT order_id, status, _needs_sync FROM orders')).toEqual([
      { order_id: uuid(30), status: 'paid', _needs_sync: false },
    ])
    await context.close()
  })

  it('refuses a transaction larger than one push with `too_large` and writes nothing', async () => {
    await freshEdge()
    const page = await openPage(browser, pageUrl(uniqueName(), '&autoSync=0'), 'eddy ready')
    const out = await page.evaluate(async () => {
      const { eddy } = window as unknown as TestPageWindow
      const attempt = async (n: number): Promise<string> => {
        try {
          await eddy.transaction((tx) => {
            for (let i = 0; i < n; i++) tx.put('metrics', { metric_id: `m${n}-${i}`, value: i })
          })
          return 'ok'
        } catch (e) {
          return (e as { code: string }).code
        }
      }
      const big = await attempt(1001)
      const afterBig = {
        pending: eddy.status().pending,
        rows: await eddy.query('SELECT count(*) AS n FROM metrics'),
      }
      const fits = await attempt(1000)
      return { big, afterBig, fits, pending: eddy.status().pending }
    })
    expect(out).toEqual({
      big: 'too_large',
      afterBig: { pending: 0, rows: [{ n: 0 }] },
      fits: 'ok',
      pending: 1000,
    })
    const report = await page.evaluate(() => (window as unknown as TestPageWindow).eddy.sync())
    expect(report).toMatchObject({ pushed: 1000, applied: 1000 })
    await page.close()
  })
})
