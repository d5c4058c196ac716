import type { BrowserContext, Page } from 'playwright-core'
import * as v from 'valibot'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { pullResponse } from '../../shared/protocol.ts'
import type { Row } from '../../shared/schema.ts'
import { launchProfile, openPage, startEdge, startServer, type TestEdge, type TestServer } from './harness.ts'
import type { TestPageWindow } from './page/main.ts'

/**
 * A full storage quota in real Chromium, on a profile on disk. The origin's quota is lowered with
 * the DevTools protocol (`Storage.overrideQuotaForOrigin`) *before* the page opens its storage:
 * Chromium's IndexedDB caches the free space it last saw for 30 s (BucketContext's
 * kBucketSpaceCacheTimeLimit), so an override made after the outbox is open does not bind it at
 * once. A write larger than what is left must fail with `EddyError` `quota` and leave nothing
 * behind (not in the cache, not in the outbox), earlier writes intact, later writes working.
 */
let server: TestServer
let edge: TestEdge
let n = 0
const QUOTA = 8_000_000

beforeAll(async () => {
  server = await startServer()
})
afterEach(async () => {
  await edge?.close()
})
afterAll(async () => {
  await server?.close()
})

const uuid = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`
const order = (id: string) => ({ order_id: id, customer_id: 7, total_amount: '12.50', status: 'paid' })

/** A fresh on-disk profile whose quota for the test origin is `QUOTA` bytes from the start. */
async function smallProfile(): Promise<{ context: BrowserContext; dispose(): Promise<void> }> {
  const profile = await launchProfile()
  const blank = await profile.context.newPage()
  const cdp = await profile.context.newCDPSession(blank)
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.origin, quotaSize: QUOTA })
  return { context: profile.context, dispose: () => profile.dispose() }
}

/** Rows of the cache and the outbox's own records (read with raw IndexedDB, not through Eddy). */
async function localState(page: Page, name: string) {
  return page.evaluate(async (name) => {
    const { eddy } = window as unknown as TestPageWindow
    const records = await new Promise<number>((resolve, reject) => {
      const req = indexedDB.open(`${name}-outbox`)
      req.onerror = () => reject(req.error)
      req.onsuccess = () => {
        const db = req.result
        const tx = db.transaction(['queue', 'parked'])
        let total = 0
        let left = 2
        for (const s of ['queue', 'parked']) {
          const c = tx.objectStore(s).getAll()
          c.onsuccess = () => {
            for (const g of c.result as Array<{ muts: unknown[] }>) total += g.muts.length
            if (--left === 0) {
              db.close()
              resolve(total)
            }
          }
        }
      }
    })
    return {
      orders: (await eddy.query('SELECT order_id FROM orders ORDER BY 1')).map((r) => r.order_id),
      metrics: (await eddy.query('SELECT metric_id FROM metrics ORDER BY 1')).map((r) =>
        String(r.metric_id).slice(0, 8),
      ),
      outboxMutations: records,
    }
  }, name)
}

/** The page's mirrored status reaches `n` pending writes (status events cross the worker boundary). */
async function pendingIs(page: Page, n: number): Promise<void> {
  await page.waitForFunction((n) => (window as unknown as TestPageWindow).eddy.status().pending === n, n, {
    timeout: 10_000,
  })
}

describe('a full storage quota in Chromium', () => {
  // `auto` is DuckDB on OPFS (the data compresses well: the outbox alone would take it, the cache
  // file would not); `memory` leaves the outbox as the only store (incompressible data).
  it.each([
    ['auto', 'compressible'],
    ['memory', 'random'],
  ])(
    'a write past the quota (%s cache, %s data) fails with `quota` and leaves nothing half-written',
    async (persistence, data) => {
      edge = await startEdge()
      server.setEdge(edge.fetch)
      const profile = await smallProfile()
      const name = `q${Date.now().toString(36)}${n++}`
      const url = `${server.origin}/test/browser/page/index.html?name=${name}&autoSync=0&persistence=${persistence}`
      try {
        const page = await openPage(profile.context, url, 'eddy ready')
        // offline: `metrics` is invalidate-on-write, and a read of it would push first
        await page.evaluate(
          async (row) => {
            const { eddy } = window as unknown as TestPageWindow
            eddy.setOnline(false)
            await eddy.put('orders', row)
            await eddy.transaction((tx) => {
              tx.put('metrics', { metric_id: 'early-1', value: 1 })
              tx.put('metrics', { metric_id: 'early-2', value: 2 })
            })
          },
          order(uuid(1)),
        )
        const before = await localState(page, name)
        expect(before).toEqual({
          orders: [uuid(1)],
          metrics: ['early-1', 'early-2'],
          outboxMutations: 3,
        })
        await pendingIs(page, 3)
        // about 10 MB in one transaction, over an 8 MB quota
        const failed = await page.evaluate(async (random) => {
          const { eddy } = window as unknown as TestPageWindow
          const text = (k: number): string => {
            if (!random) return 'x'.repeat(k)
            const bytes = new Uint8Array(k)
            for (let o = 0; o < k; o += 65_536) crypto.getRandomValues(bytes.subarray(o, o + 65_536))
            return Array.from(bytes, (b) => (b % 36).toString(36)).join('')
          }
          try {
            await eddy.transaction((tx) => {
              for (let i = 0; i < 100; i++)
                tx.put('metrics', { metric_id: `big-${i}-${text(100_000)}`, value: i })
            })
            return { code: 'none' }
          } catch (e) {
            const err = e as { name?: string; code?: string }
            return { name: err.name, code: err.code }
          }
        }, data === 'random')
        expect(failed).toEqual({ name: 'EddyError', code: 'quota' })
        expect(await localState(page, name)).toEqual(before)
        await pendingIs(page, 3)
        // the profile still works: a small write is taken, and everything survives a reload
        await page.evaluate(
          (row) => (window as unknown as TestPageWindow).eddy.put('orders', row),
          order(uuid(2)),
        )
        await page.reload()
        await page.waitForFunction(
          () => document.title === 'eddy ready' || document.title.startsWith('error'),
        )
        expect(await page.title()).toBe('eddy ready')
        await page.evaluate(() => (window as unknown as TestPageWindow).eddy.setOnline(false))
        const after = {
          orders: [uuid(1), uuid(2)],
          metrics: ['early-1', 'early-2'],
          outboxMutations: 4,
        }
        expect(await localState(page, name)).toEqual(after)
        await pendingIs(page, 4)
        // and the warehouse gets exactly the writes that were acknowledged
        await page.evaluate(() => {
          const { eddy } = window as unknown as TestPageWindow
          eddy.setOnline(true)
          return eddy.sync()
        })
        const pulled = async (table: string): Promise<Row[]> => {
          const res = await edge.fetch(new Request(`${server.origin}/sync/pull?tables=${table}`))
          return v.parse(pullResponse, await res.json()).changes.map((c) => c.key)
        }
        expect(await pulled('orders')).toEqual([{ order_id: uuid(1) }, { order_id: uuid(2) }])
        expect(await pulled('metrics')).toEqual([{ metric_id: 'early-1' }, { metric_id: 'early-2' }])
      } finally {
        await profile.dispose()
      }
    },
  )

  it("Chromium's own refusal (the outbox without the space check): Dexie reports QuotaExceededError and stores nothing", async () => {
    const profile = await smallProfile()
    try {
      const page = await openPage(
        profile.context,
        `${server.origin}/test/browser/page/cache.html`,
        'cache lab ready',
      )
      const out = await page.evaluate(async () => {
        const { lab } = window
        const outbox = lab.openOutbox(`dexie-quota-${Date.now()}`, lab.createSpaceGuard(undefined))
        const mut = (id: string, text: string) => ({
          table: 'metrics',
          op: 'upsert' as const,
          key: { metric_id: id },
          values: { value: 1, note: text },
          hlc: '001795000000000:00001:me',
        })
        await outbox.add([mut('small', '')], { park: false })
        const bytes = new Uint8Array(10_000_000)
        for (let o = 0; o < bytes.length; o += 65_536) crypto.getRandomValues(bytes.subarray(o, o + 65_536))
        const big = Array.from(bytes, (b) => (b % 36).toString(36)).join('')
        let error: { name?: string | undefined; inner?: string | undefined } = {}
        try {
          await outbox.add([mut('big', big)], { park: false })
        } catch (e) {
          const err = e as { name?: string; inner?: { name?: string } }
          error = { name: err.name, inner: err.inner?.name }
        }
        const pending = await outbox.pending()
        const kept = (await outbox.pendingMutations()).map((m) => m.key.metric_id)
        await outbox.add([mut('later', '')], { park: false })
        const result = { error, pending, kept, later: await outbox.pending() }
        outbox.close()
        return result
      })
      expect(out).toEqual({
        error: { name: 'AbortError', inner: 'QuotaExceededError' },
        pending: 1,
        kept: ['small'],
        later: 2,
      })
    } finally {
      await profile.dispose()
    }
  })
})
