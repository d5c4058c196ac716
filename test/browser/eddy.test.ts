import type { Browser, Page } from 'playwright-core'
import * as v from 'valibot'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { pullResponse } from '../../shared/protocol.ts'
import type { TestPageWindow } from '../../test/browser/page/main.ts'
import {
  DROP,
  launchBrowser,
  openPage,
  startEdge,
  startServer,
  type TestEdge,
  type TestServer,
} from './harness.ts'

/**
 * `createEddy()` end to end in Chromium: the test page's `window.eddy` (real Worker, DuckDB-WASM on
 * OPFS, Dexie outbox) against the real edge with an in-memory DuckDB warehouse on the same origin.
 * "Offline" is the app's switch plus an edge that cannot be reached (the server drops `/sync`).
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

/** A page of the test app with its own profile name (IndexedDB + OPFS prefix). */
function pageUrl(name: string, extra = ''): string {
  return `${server.origin}/test/browser/page/index.html?name=${name}${extra}`
}
const uniqueName = (): string => `t${Date.now().toString(36)}${n++}`

async function pullAll(
  table: string,
): Promise<Array<{ key: Record<string, unknown>; row: Record<string, unknown> | null }>> {
  const res = await edge.fetch(new Request(`${server.origin}/sync/pull?tables=${table}`))
  return v.parse(pullResponse, await res.json()).changes
}

const order = (id: string, extra: Record<string, unknown> = {}) => ({
  order_id: id,
  customer_id: 7,
  total_amount: '12.50',
  status: 'pending',
  created_at: '2026-01-02T03:04:05.000Z',
  ...extra,
})
const uuid = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`

async function waitStatus(page: Page, pred: string): Promise<void> {
  await page.waitForFunction(
    (p) => new Function('s', `return ${p}`)((window as unknown as TestPageWindow).eddy.status()),
    pred,
    { timeout: 30_000 },
  )
}

describe('createEddy in Chromium', () => {
  it('writes back: durable locally at once, pending, then in the warehouse after sync', async () => {
    await freshEdge()
    const page = await openPage(browser, pageUrl(uniqueName(), '&autoSync=0'), 'eddy ready')
    const out = await page.evaluate(
      async (row) => {
        const { eddy } = window as unknown as TestPageWindow
        await eddy.put('orders', row)
        const before = await eddy.query('SELECT order_id, total_amount, _needs_sync FROM orders')
        const pendingBefore = eddy.status().pending
        const report = await eddy.sync()
        const after = await eddy.query('SELECT order_id, _needs_sync FROM orders')
        return { before, pendingBefore, report, after, persistence: eddy.persistence }
      },
      order(uuid(1)),
    )
    expect(out.persistence).toBe('opfs')
    expect(out.before).toEqual([{ order_id: uuid(1), total_amount: '12.50', _needs_sync: true }])
    expect(out.pendingBefore).toBe(1)
    expect(out.report).toMatchObject({ pushed: 1, applied: 1, rejected: 0 })
    expect(out.after).toEqual([{ order_id: uuid(1), _needs_sync: false }])
    expect((await pullAll('orders')).map((c) => c.row?.total_amount)).toEqual(['12.50'])
    await page.close()
  })

  it('keeps an offline write across a reload, still pending, and pushes it once back online', async () => {
    await freshEdge()
    const name = uniqueName()
    server.setInterceptor(() => DROP)
    const page = await openPage(browser, pageUrl(name), 'eddy ready')
    await page.evaluate(
      async (row) => {
        const { eddy } = window as unknown as TestPageWindow
        eddy.setOnline(false)
        await eddy.put('orders', row)
      },
      order(uuid(2), { status: 'paid' }),
    )
    await page.reload()
    await page.waitForFunction(() => document.title === 'eddy ready')
    const afterReload = await page.evaluate(async () => {
      const { eddy } = window as unknown as TestPageWindow
      eddy.setOnline(false)
      return {
        rows: await eddy.query('SELECT order_id, status, _needs_sync FROM orders'),
        pending: eddy.status().pending,
      }
    })
    expect(afterReload.rows).toEqual([{ order_id: uuid(2), status: 'paid', _needs_sync: true }])
    expect(afterReload.pending).toBe(1)
    expect(await pullAll('orders')).toEqual([])
    server.setInterceptor(null)
    await page.evaluate(() => (window as unknown as TestPageWindow).eddy.setOnline(true))
    await waitStatus(page, 's.pending === 0 && s.online')
    expect((await pullAll('orders')).map((c) => [c.key.order_id, c.row?.status])).toEqual([[uuid(2), 'paid']])
    await page.close()
  })

  it('refuses a write-through write while offline with an `offline` EddyError and changes nothing', async () => {
    await freshEdge()
    const page = await openPage(browser, pageUrl(uniqueName(), '&autoSync=0'), 'eddy ready')
    const out = await page.evaluate(async () => {
      const { eddy } = window as unknown as TestPageWindow
      eddy.setOnline(false)
      let error: { name: string; code: string } | undefined
      try {
        await eddy.put('customers', { customer_id: 1, name: 'Ada', email: 'ada@example.com' })
      } catch (e) {
        const err = e as { name: string; code: string }
        error = { name: err.name, code: err.code }
      }
      const rows = await eddy.query('SELECT count(*) AS n FROM customers')
      eddy.setOnline(true)
      const stored = await eddy.put('customers', {
        customer_id: 2,
        name: 'Grace',
        email: 'grace@example.com',
      })
      let invalid: { code: string; field: string | undefined } | undefined
      try {
        await eddy.put('orders', { order_id: 'not-a-uuid', customer_id: 1, total_amount: '1.00' })
      } catch (e) {
        invalid = { code: (e as { code: string }).code, field: (e as { field?: string }).field }
      }
      return { error, rows, stored, invalid, pending: eddy.status().pending }
    })
    expect(out.error).toEqual({ name: 'EddyError', code: 'offline' })
    expect(out.rows).toEqual([{ n: 0 }])
    expect(out.stored).toMatchObject({ customer_id: 2, name: 'Grace' })
    expect(out.invalid).toEqual({ code: 'invalid_value', field: 'order_id' })
    expect(out.pending).toBe(0)
    expect((await pullAll('customers')).map((c) => c.key.customer_id)).toEqual([2])
    await page.close()
  })
})
