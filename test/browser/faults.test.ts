import type { Page } from 'playwright-core'
import * as v from 'valibot'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { pullResponse } from '../../shared/protocol.ts'
import { launchProfile, openPage, startEdge, startServer, type TestEdge, type TestServer } from './harness.ts'
import type { TestPageWindow } from './page/main.ts'

/**
 * Storage faults in real Chromium (test/chaos owns this file): a tab killed while a write's outbox
 * commit is blocked. The unacknowledged write is never in the cache (it reaches the cache only
 * after its commit), the cache and the outbox must agree afterwards, and nothing half-written may
 * reach the warehouse. (A full quota is tested in Node, where
 * `client/engine/engine.test.ts` makes the outbox commit throw QuotaExceededError: Chromium's
 * `Storage.overrideQuotaForOrigin` binds only storage opened after it, and not in a profile on disk.)
 */
let server: TestServer
let edge: TestEdge
let n = 0

beforeAll(async () => {
  server = await startServer()
})
afterEach(async () => {
  server.setInterceptor(null)
  await edge?.close()
})
afterAll(async () => {
  await server?.close()
})

async function freshEdge(): Promise<TestEdge> {
  edge = await startEdge()
  server.setEdge(edge.fetch)
  return edge
}
const pageUrl = (name: string): string =>
  `${server.origin}/test/browser/page/index.html?name=${name}&autoSync=0`
const uniqueName = (): string => `f${Date.now().toString(36)}${n++}`
const uuid = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`
const order = (id: string, status: string) => ({
  order_id: id,
  customer_id: 7,
  total_amount: '12.50',
  status,
})

async function pulledOrders(): Promise<Array<{ id: unknown; status: unknown }>> {
  const res = await edge.fetch(new Request(`${server.origin}/sync/pull?tables=orders`))
  return v
    .parse(pullResponse, await res.json())
    .changes.map((c) => ({ id: c.key.order_id, status: c.row?.status ?? null }))
}

/** Rows the cache says still need a push, and what the outbox holds: they must describe the same writes. */
async function localState(page: Page): Promise<{ needsSync: unknown[]; pending: number; rows: unknown[] }> {
  return page.evaluate(async () => {
    const { eddy } = window as unknown as TestPageWindow
    const rows = await eddy.query('SELECT order_id, status, _needs_sync FROM orders ORDER BY order_id')
    return {
      rows: rows.map((r) => [r.order_id, r.status]),
      needsSync: rows.filter((r) => r._needs_sync === true).map((r) => r.order_id),
      pending: eddy.status().pending,
    }
  })
}

describe('storage faults in Chromium', () => {
  it('a tab killed while a write waits for its outbox commit restarts with cache and outbox agreeing', async () => {
    await freshEdge()
    const profile = await launchProfile()
    const name = uniqueName()
    try {
      const page = await openPage(profile.context, pageUrl(name), 'eddy ready')
      await page.evaluate(
        (row) => (window as unknown as TestPageWindow).eddy.put('orders', row),
        order(uuid(10), 'paid'),
      )
      // Hold the outbox's object store from the page (same origin): the worker's commit has to wait.
      await page.evaluate(
        (db) =>
          new Promise<void>((resolve, reject) => {
            const req = indexedDB.open(db)
            req.onerror = () => reject(req.error)
            req.onupgradeneeded = () => reject(new Error('the outbox database does not exist'))
            req.onsuccess = () => {
              const store = req.result.transaction(['queue'], 'readwrite').objectStore('queue')
              const spin = (): void => {
                store.get(0).onsuccess = spin
              }
              spin()
              resolve()
            }
          }),
        `${name}-outbox`,
      )
      await page.evaluate(
        (row) => {
          void (window as unknown as TestPageWindow).eddy.put('orders', row)
        },
        order(uuid(11), 'pending'),
      )
      // Not acknowledged (its outbox commit is blocked), so not in the cache either; make the cache durable.
      for (let i = 0; i < 3; i++) {
        const seen = await page.evaluate(
          (id) =>
            (window as unknown as TestPageWindow).eddy.query(
              'SELECT order_id FROM orders WHERE order_id = ?',
              [id],
            ),
          uuid(11),
        )
        expect(seen).toEqual([])
      }
      await page.evaluate(() => (window as unknown as TestPageWindow).eddy.flush())
      // Kill the renderer: no unload, no cleanup, the blocked commit never happens.
      const cdp = await profile.context.newCDPSession(page)
      const crashed = new Promise<void>((r) => page.once('crash', () => r()))
      // The protocol call itself never answers: the renderer is gone before it can.
      void cdp.send('Page.crash').catch(() => undefined)
      await crashed
      const context = await profile.reopen()
      const after = await openPage(context, pageUrl(name), 'eddy ready')
      const state = await localState(after)
      // The unacknowledged write is gone from both, or present in both; the acknowledged one is in both.
      expect(state.pending).toBe(state.needsSync.length)
      expect(state.needsSync).toContain(uuid(10))
      const kept = state.needsSync.includes(uuid(11))
      expect(state.rows).toEqual(
        kept
          ? [
              [uuid(10), 'paid'],
              [uuid(11), 'pending'],
            ]
          : [[uuid(10), 'paid']],
      )
      await after.evaluate(() => (window as unknown as TestPageWindow).eddy.sync())
      const expected = kept
        ? [
            { id: uuid(10), status: 'paid' },
            { id: uuid(11), status: 'pending' },
          ]
        : [{ id: uuid(10), status: 'paid' }]
      expect(await pulledOrders()).toEqual(expected)
      expect(await localState(after)).toEqual({ rows: state.rows, needsSync: [], pending: 0 })
    } finally {
      await profile.dispose()
    }
  })
})
