import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchBrowser, openPage, startServer, type TestServer } from './harness.ts'

/**
 * The cache survives a reload: DuckDB on OPFS (checkpointed on a debounce), and the fallback for
 * browsers without OPFS, an in-memory DuckDB saved to IndexedDB as Arrow snapshots.
 */
let server: TestServer
let browser: Browser

beforeAll(async () => {
  server = await startServer()
  browser = await launchBrowser()
})
afterAll(async () => {
  await browser?.close()
  await server?.close()
})

const LAB = '/test/browser/page/cache.html'

async function writeThenReload(page: Page, name: string, persistence: 'opfs' | 'idb', flush: boolean) {
  const before = await page.evaluate(
    async ({ name, persistence, flush }) => {
      const { lab } = window
      // without an explicit flush, the debounce never fires before the reload
      const opened = await lab.openPersistent(name, persistence, flush ? undefined : 3_600_000)
      const orders = lab.demoSchema.table('orders')
      await opened.cache.applyLocal([
        {
          table: orders,
          key: { order_id: 'kept' },
          row: { order_id: 'kept', customer_id: 3, total_amount: '4.50', status: 'paid', created_at: null },
          hlc: '001795000000000:00001:me',
        },
        { table: orders, key: { order_id: 'gone' }, row: null, hlc: '001795000000000:00002:me' },
      ])
      if (flush) await opened.flush()
      return { persistence: opened.persistence }
    },
    { name, persistence, flush },
  )
  await page.reload()
  await page.waitForFunction(() => document.title === 'cache lab ready')
  const after = await page.evaluate(
    async ({ name, persistence }) => {
      const { lab } = window
      const opened = await lab.openPersistent(name, persistence)
      const live = await opened.cache.query('SELECT order_id, total_amount, _needs_sync FROM orders')
      const tomb = await opened.cache.query('SELECT order_id FROM _eddy_orders WHERE _deleted')
      await opened.cache.close()
      return { live, tomb }
    },
    { name, persistence },
  )
  return { before, after }
}

describe('cache persistence', () => {
  it('keeps the OPFS database across a reload after a checkpoint', async () => {
    const page = await openPage(browser, `${server.origin}${LAB}`, 'cache lab ready')
    const out = await writeThenReload(page, `opfs-${Date.now()}`, 'opfs', true)
    expect(out.before.persistence).toBe('opfs')
    expect(out.after.live).toEqual([{ order_id: 'kept', total_amount: '4.50', _needs_sync: true }])
    expect(out.after.tomb).toEqual([{ order_id: 'gone' }])
    await page.close()
  })

  it('keeps the IndexedDB snapshot across a reload (the fallback without OPFS)', async () => {
    const page = await openPage(browser, `${server.origin}${LAB}`, 'cache lab ready')
    const out = await writeThenReload(page, `idb-${Date.now()}`, 'idb', true)
    expect(out.before.persistence).toBe('idb')
    expect(out.after.live).toEqual([{ order_id: 'kept', total_amount: '4.50', _needs_sync: true }])
    expect(out.after.tomb).toEqual([{ order_id: 'gone' }])
    await page.close()
  })

  it('keeps committed OPFS writes across a reload even before the debounced checkpoint (the WAL)', async () => {
    const page = await openPage(browser, `${server.origin}${LAB}`, 'cache lab ready')
    const out = await writeThenReload(page, `opfs-wal-${Date.now()}`, 'opfs', false)
    expect(out.after.live).toEqual([{ order_id: 'kept', total_amount: '4.50', _needs_sync: true }])
    expect(out.after.tomb).toEqual([{ order_id: 'gone' }])
    await page.close()
  })
})
