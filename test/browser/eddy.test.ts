import type { Browser, Page } from 'playwright-core'
import * as v from 'valibot'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { eventsResponse, pullResponse } from '../../shared/protocol.ts'
import { defineSchema, type Schema } from '../../shared/schema.ts'
import {
  DROP,
  launchBrowser,
  launchProfile,
  openPage,
  startEdge,
  startServer,
  type TestEdge,
  type TestServer,
} from './harness.ts'
import type { TestPageWindow } from './page/main.ts'

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

async function freshEdge(schema: Schema = demoSchema): Promise<TestEdge> {
  edge = await startEdge(schema)
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

async function events(): Promise<v.InferOutput<typeof eventsResponse>['events']> {
  const res = await edge.fetch(new Request(`${server.origin}/sync/events?limit=100`))
  return v.parse(eventsResponse, await res.json()).events
}

/** A write by another client, straight to the edge. */
async function pushAs(
  clientId: string,
  table: string,
  key: Record<string, unknown>,
  values: Record<string, unknown>,
) {
  const hlc = `${String(Date.now()).padStart(15, '0')}:00000:${clientId}`
  const res = await edge.fetch(
    new Request(`${server.origin}/sync/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientId, mutations: [{ seq: 1, table, op: 'upsert', key, values, hlc }] }),
    }),
  )
  expect(res.status).toBe(200)
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

/**
 * Polls `probe` (usually a `page.evaluate` of an async check) until it answers true. Playwright's
 * waitForFunction would take an async check's pending Promise itself as a truthy answer.
 */
async function until(probe: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

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

  it('reads its writes: a query, a live query or a transaction right after the acknowledgement sees them', async () => {
    await freshEdge()
    const page = await openPage(browser, pageUrl(uniqueName(), '&autoSync=0'), 'eddy ready')
    const out = await page.evaluate(
      async ({ rows, extra }) => {
        const { eddy } = window as unknown as TestPageWindow
        let live: unknown[] = []
        const off = eddy.subscribe('SELECT count(*) AS n FROM orders WHERE _needs_sync', [], (r) => {
          live = r
        })
        const misses: unknown[] = []
        for (const row of rows) {
          await eddy.put('orders', row)
          const got = await eddy.query('SELECT status, _needs_sync FROM orders WHERE order_id = ?', [
            row.order_id,
          ])
          if (got.length !== 1 || got[0]?.status !== row.status || got[0]?._needs_sync !== true)
            misses.push([row.order_id, got])
        }
        // a partial upsert, laid over the row the earlier put left
        await eddy.put('orders', { order_id: rows[0]?.order_id, status: 'cancelled' })
        const partial = await eddy.query('SELECT status, customer_id FROM orders WHERE order_id = ?', [
          rows[0]?.order_id,
        ])
        await eddy.transaction((tx) => {
          for (const r of extra) tx.put('orders', r)
          tx.delete('orders', { order_id: rows[1]?.order_id })
        })
        const [count] = await eddy.query('SELECT count(*) AS n FROM orders WHERE _needs_sync')
        const deleted = await eddy.query('SELECT * FROM orders WHERE order_id = ?', [rows[1]?.order_id])
        const start = Date.now()
        while (
          Number((live[0] as { n?: unknown } | undefined)?.n) !== count?.n &&
          Date.now() - start < 10_000
        )
          await new Promise((r) => setTimeout(r, 20))
        off()
        return { misses, partial, count: Number(count?.n), deleted, live, pending: eddy.status().pending }
      },
      {
        rows: Array.from({ length: 30 }, (_, i) =>
          order(uuid(0x700 + i), { status: i % 2 ? 'paid' : 'shipped' }),
        ),
        extra: Array.from({ length: 500 }, (_, i) => order(uuid(0x800 + i))),
      },
    )
    expect(out.misses).toEqual([])
    expect(out.partial).toEqual([{ status: 'cancelled', customer_id: 7 }])
    expect(out.count).toBe(529)
    expect(out.deleted).toEqual([])
    expect(out.live).toEqual([{ n: 529 }])
    expect(out.pending).toBe(532)
    await page.close()
  })

  it('keeps a write the cache refused after its outbox commit, reports it, and repairs the cache from the outbox', async () => {
    await freshEdge()
    const page = await openPage(browser, pageUrl(uniqueName(), '&autoSync=0'), 'eddy ready')
    await page.evaluate(
      async (row) => {
        const { eddy } = window as unknown as TestPageWindow
        await eddy.put('orders', row)
        // the cache's table goes missing: its next write fails after the outbox commit
        await eddy.query('ALTER TABLE _eddy_orders RENAME TO _eddy_orders_away')
      },
      order(uuid(0x901), { status: 'paid' }),
    )
    const acked = await page.evaluate(
      async (row) => {
        const { eddy } = window as unknown as TestPageWindow
        await eddy.put('orders', row)
        return eddy.status().pending
      },
      order(uuid(0x902), { status: 'shipped' }),
    )
    expect(acked).toBe(2)
    await waitStatus(page, 's.lastError !== null')
    const away = await page.evaluate(async () => {
      const { eddy } = window as unknown as TestPageWindow
      const rows = await eddy.query('SELECT order_id FROM _eddy_orders_away ORDER BY order_id')
      await eddy.query('ALTER TABLE _eddy_orders_away RENAME TO _eddy_orders')
      return { rows, error: eddy.status().lastError }
    })
    expect(away.rows).toEqual([{ order_id: uuid(0x901) }])
    expect(away.error?.message).toMatch(/_eddy_orders/)
    // the repair is retried until the cache takes the writes the outbox holds
    await until(async () =>
      page.evaluate(async () => {
        const { eddy } = window as unknown as TestPageWindow
        return (await eddy.query('SELECT count(*) AS n FROM orders WHERE _needs_sync'))[0]?.n === 2
      }),
    )
    const rows = await page.evaluate(async () => {
      const { eddy } = window as unknown as TestPageWindow
      const before = await eddy.query('SELECT order_id, status, _needs_sync FROM orders ORDER BY order_id')
      await eddy.sync()
      return before
    })
    expect(rows).toEqual([
      { order_id: uuid(0x901), status: 'paid', _needs_sync: true },
      { order_id: uuid(0x902), status: 'shipped', _needs_sync: true },
    ])
    expect((await pullAll('orders')).map((c) => [c.key.order_id, c.row?.status])).toEqual([
      [uuid(0x901), 'paid'],
      [uuid(0x902), 'shipped'],
    ])
    await page.close()
  })

  // `memory`: a tab without the OPFS file; the outbox is re-applied over its empty cache
  it.each(['auto', 'memory'])(
    'keeps an offline write across a reload (%s cache), still pending, and pushes it once back online',
    async (persistence) => {
      await freshEdge()
      const name = uniqueName()
      server.setInterceptor(() => DROP)
      const page = await openPage(browser, pageUrl(name, `&persistence=${persistence}`), 'eddy ready')
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
          persistence: eddy.persistence,
        }
      })
      expect(afterReload.rows).toEqual([{ order_id: uuid(2), status: 'paid', _needs_sync: true }])
      expect(afterReload.pending).toBe(1)
      expect(afterReload.persistence).toBe(persistence === 'auto' ? 'opfs' : 'memory')
      expect(await pullAll('orders')).toEqual([])
      server.setInterceptor(null)
      await page.evaluate(() => (window as unknown as TestPageWindow).eddy.setOnline(true))
      await waitStatus(page, 's.pending === 0 && s.online')
      expect((await pullAll('orders')).map((c) => [c.key.order_id, c.row?.status])).toEqual([
        [uuid(2), 'paid'],
      ])
      await page.close()
    },
  )

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

  it('reloads an invalidate-on-write table lazily: the first query after a local write pulls first', async () => {
    await freshEdge()
    const page = await openPage(browser, pageUrl(uniqueName(), '&autoSync=0'), 'eddy ready')
    await pushAs('other', 'metrics', { metric_id: 'm-remote' }, { value: 1.5 })
    const before = await page.evaluate(() =>
      (window as unknown as TestPageWindow).eddy.query('SELECT metric_id FROM metrics ORDER BY 1'),
    )
    const after = await page.evaluate(async () => {
      const { eddy } = window as unknown as TestPageWindow
      await eddy.put('metrics', { metric_id: 'm-local', value: 2.25 })
      return eddy.query('SELECT metric_id, value FROM metrics ORDER BY 1')
    })
    // not stale yet, and no background loop: the remote row is not there
    expect(before).toEqual([])
    expect(after).toEqual([
      { metric_id: 'm-local', value: 2.25 },
      { metric_id: 'm-remote', value: 1.5 },
    ])
    await page.close()
  })

  it('lists writes the edge rejects, never resends them, and clears the list on request', async () => {
    // the edge's schema is stricter than the page's: it refuses 'cancelled'
    const strict = defineSchema({
      tables: {
        ...demoSchema.spec.tables,
        orders: {
          ...demoSchema.spec.tables.orders,
          columns: {
            ...demoSchema.spec.tables.orders.columns,
            status: { type: 'text', validators: [{ type: 'enum', allowedValues: ['pending', 'paid'] }] },
          },
        },
      },
    })
    await freshEdge(strict)
    const page = await openPage(browser, pageUrl(uniqueName(), '&autoSync=0'), 'eddy ready')
    const out = await page.evaluate(
      async ({ good, bad }) => {
        const { eddy } = window as unknown as TestPageWindow
        await eddy.put('orders', good)
        await eddy.put('orders', bad)
        const report = await eddy.sync()
        const rejected = await eddy.rejected()
        const count = eddy.status().rejected
        const second = await eddy.sync()
        await eddy.clearRejected()
        return {
          report,
          rejected,
          count,
          second,
          cleared: await eddy.rejected(),
          pending: eddy.status().pending,
        }
      },
      { good: order(uuid(10)), bad: order(uuid(11), { status: 'cancelled' }) },
    )
    expect(out.report).toMatchObject({ pushed: 2, applied: 1, rejected: 1 })
    expect(out.rejected).toHaveLength(1)
    expect(out.rejected[0]).toMatchObject({
      table: 'orders',
      op: 'upsert',
      key: { order_id: uuid(11) },
      error: { code: 'invalid_value', field: 'status' },
    })
    expect(out.count).toBe(1)
    expect(out.second).toMatchObject({ pushed: 0 })
    expect(out.cleared).toEqual([])
    expect(out.pending).toBe(0)
    expect((await pullAll('orders')).map((c) => c.key.order_id)).toEqual([uuid(10)])
    await page.close()
  })

  it("two tabs of one profile: one leader, both see each other's writes, no duplicate pushes", async () => {
    await freshEdge()
    const context = await browser.newContext()
    const name = uniqueName()
    const a = await openPage(context, pageUrl(name), 'eddy ready')
    const b = await openPage(context, pageUrl(name), 'eddy ready')
    const info = async (p: Page) =>
      p.evaluate(() => {
        const { eddy } = window as unknown as TestPageWindow
        return { clientId: eddy.clientId, leader: eddy.status().leader, persistence: eddy.persistence }
      })
    const [ia, ib] = [await info(a), await info(b)]
    expect(ia.clientId).toBe(ib.clientId)
    expect([ia.leader, ib.leader].filter(Boolean)).toHaveLength(1)
    expect([ia.persistence, ib.persistence].sort()).toEqual(['memory', 'opfs'])
    const seen = (p: Page, id: string) =>
      until(() =>
        p.evaluate(async (id) => {
          const rows = await (window as unknown as TestPageWindow).eddy.query(
            'SELECT 1 FROM orders WHERE order_id = ?',
            [id],
          )
          return rows.length === 1
        }, id),
      )
    await a.evaluate((row) => (window as unknown as TestPageWindow).eddy.put('orders', row), order(uuid(20)))
    await seen(b, uuid(20))
    await b.evaluate((row) => (window as unknown as TestPageWindow).eddy.put('orders', row), order(uuid(21)))
    await seen(a, uuid(21))
    await waitStatus(a, 's.pending === 0')
    const evs = await events()
    expect(evs.reduce((sum, e) => sum + e.applied, 0)).toBe(2)
    expect(evs.reduce((sum, e) => sum + e.duplicate, 0)).toBe(0)
    expect((await pullAll('orders')).map((c) => c.key.order_id).sort()).toEqual([uuid(20), uuid(21)])
    await context.close()
  })

  it('resends after the page closed mid-push; the edge answers duplicate and applies it once', async () => {
    await freshEdge()
    const context = await browser.newContext()
    const name = uniqueName()
    let applied: () => void = () => {}
    const firstPushApplied = new Promise<void>((r) => {
      applied = r
    })
    let closed: () => void = () => {}
    const pageClosed = new Promise<void>((r) => {
      closed = r
    })
    let pushes = 0
    server.setInterceptor(async (req) => {
      if (!req.url.includes('/sync/push') || pushes++ > 0) return undefined
      // the edge commits the batch, but the answer never reaches the page
      await edge.fetch(req)
      applied()
      await pageClosed
      return DROP
    })
    const a = await openPage(context, pageUrl(name), 'eddy ready')
    await a.evaluate((row) => (window as unknown as TestPageWindow).eddy.put('orders', row), order(uuid(30)))
    await firstPushApplied
    await a.close()
    closed()
    server.setInterceptor(null)
    const b = await openPage(context, pageUrl(name), 'eddy ready')
    await waitStatus(b, 's.pending === 0')
    // the closed page's worker may still retry once before Chromium ends it: at least one resend,
    // every resend answered `duplicate`, the write applied exactly once
    const evs = await events()
    expect(evs.reduce((sum, e) => sum + e.applied, 0)).toBe(1)
    expect(evs.reduce((sum, e) => sum + e.duplicate, 0)).toBeGreaterThanOrEqual(1)
    expect(evs.reduce((sum, e) => sum + e.duplicate + e.applied, 0)).toBe(evs.length)
    expect(await pullAll('orders')).toHaveLength(1)
    await context.close()
  })

  it('two profiles writing one row converge on the last write everywhere (LWW)', async () => {
    await freshEdge()
    const [ca, cb] = [await browser.newContext(), await browser.newContext()]
    const a = await openPage(ca, pageUrl(uniqueName(), '&autoSync=0'), 'eddy ready')
    const b = await openPage(cb, pageUrl(uniqueName(), '&autoSync=0'), 'eddy ready')
    const put = (p: Page, total: string) =>
      p.evaluate(
        (row) => (window as unknown as TestPageWindow).eddy.put('orders', row),
        order(uuid(40), { total_amount: total }),
      )
    await put(a, '1.00')
    await new Promise((r) => setTimeout(r, 5))
    await put(b, '2.00')
    // the later write reaches the edge first; the earlier one then arrives and is stale
    const sync = (p: Page) => p.evaluate(() => (window as unknown as TestPageWindow).eddy.sync())
    expect(await sync(b)).toMatchObject({ applied: 1 })
    expect(await sync(a)).toMatchObject({ stale: 1 })
    await sync(b)
    const read = (p: Page) =>
      p.evaluate(() =>
        (window as unknown as TestPageWindow).eddy.query('SELECT total_amount, _needs_sync FROM orders'),
      )
    expect(await read(a)).toEqual([{ total_amount: '2.00', _needs_sync: false }])
    expect(await read(b)).toEqual([{ total_amount: '2.00', _needs_sync: false }])
    expect((await pullAll('orders')).map((c) => c.row?.total_amount)).toEqual(['2.00'])
    await ca.close()
    await cb.close()
  })

  it('keeps the cache and the outbox across a browser restart while offline', async () => {
    await freshEdge()
    server.setInterceptor(() => DROP)
    const profile = await launchProfile()
    try {
      const first = await openPage(profile.context, pageUrl('restart'), 'eddy ready')
      await first.evaluate(
        async (row) => {
          const { eddy } = window as unknown as TestPageWindow
          eddy.setOnline(false)
          await eddy.put('orders', row)
        },
        order(uuid(50), { status: 'shipped' }),
      )
      const context = await profile.reopen()
      const page = await openPage(context, pageUrl('restart'), 'eddy ready')
      const after = await page.evaluate(async () => {
        const { eddy } = window as unknown as TestPageWindow
        return {
          rows: await eddy.query('SELECT order_id, status, _needs_sync FROM orders'),
          pending: eddy.status().pending,
        }
      })
      expect(after).toEqual({
        rows: [{ order_id: uuid(50), status: 'shipped', _needs_sync: true }],
        pending: 1,
      })
      server.setInterceptor(null)
      await page.evaluate(() => (window as unknown as TestPageWindow).eddy.sync())
      await waitStatus(page, 's.pending === 0')
      expect((await pullAll('orders')).map((c) => c.key.order_id)).toEqual([uuid(50)])
    } finally {
      await profile.dispose()
    }
  })

  it('closes: later calls fail with `closed`, and a new instance reopens the same OPFS cache', async () => {
    await freshEdge()
    const name = uniqueName()
    const page = await openPage(browser, pageUrl(name, '&autoSync=0'), 'eddy ready')
    const out = await page.evaluate(
      async ({ name, row }) => {
        const w = window as unknown as TestPageWindow
        await w.eddy.put('orders', row)
        await w.eddy.close()
        let code = ''
        try {
          await w.eddy.put('orders', row)
        } catch (e) {
          code = (e as { code: string }).code
        }
        const again = await w.createEddy({ url: '/sync', schema: w.demoSchema, name, autoSync: false })
        const rows = await again.query('SELECT order_id, _needs_sync FROM orders')
        const result = { code, persistence: again.persistence, rows, pending: again.status().pending }
        await again.close()
        return result
      },
      { name, row: order(uuid(60)) },
    )
    expect(out).toEqual({
      code: 'closed',
      persistence: 'opfs',
      rows: [{ order_id: uuid(60), _needs_sync: true }],
      pending: 1,
    })
    await page.close()
  })

  it("two tabs offline see each other's writes through the shared outbox; online, both settle once", async () => {
    await freshEdge()
    server.setInterceptor(() => DROP)
    const context = await browser.newContext()
    const name = uniqueName()
    const a = await openPage(context, pageUrl(name), 'eddy ready')
    const b = await openPage(context, pageUrl(name), 'eddy ready')
    const setOnline = (p: Page, on: boolean) =>
      p.evaluate((on) => (window as unknown as TestPageWindow).eddy.setOnline(on), on)
    await setOnline(a, false)
    await setOnline(b, false)
    const put = (p: Page, id: string) =>
      p.evaluate(
        (row) => (window as unknown as TestPageWindow).eddy.put('orders', row).then(() => undefined),
        order(id),
      )
    const rowsOf = (p: Page) =>
      p.evaluate(() =>
        (window as unknown as TestPageWindow).eddy.query(
          'SELECT order_id, _needs_sync FROM orders ORDER BY 1',
        ),
      )
    const seen = (p: Page, n: number, pending: boolean) =>
      until(() =>
        p.evaluate(
          async ({ n, pending }) => {
            const rows = await (window as unknown as TestPageWindow).eddy.query(
              'SELECT _needs_sync FROM orders',
            )
            return rows.length === n && rows.every((r) => r._needs_sync === pending)
          },
          { n, pending },
        ),
      )
    await put(a, uuid(70))
    await seen(b, 1, true)
    await put(b, uuid(71))
    await seen(a, 2, true)
    expect(await rowsOf(b)).toEqual([
      { order_id: uuid(70), _needs_sync: true },
      { order_id: uuid(71), _needs_sync: true },
    ])
    server.setInterceptor(null)
    await setOnline(a, true)
    await setOnline(b, true)
    await seen(a, 2, false)
    await seen(b, 2, false)
    const evs = await events()
    expect(evs.reduce((sum, e) => sum + e.applied, 0)).toBe(2)
    expect(evs.reduce((sum, e) => sum + e.duplicate, 0)).toBe(0)
    await context.close()
  })

  it('a cursor saved by a memory-cache leader is not trusted by the next owner of the OPFS file', async () => {
    await freshEdge()
    const context = await browser.newContext()
    const name = uniqueName()
    const a = await openPage(context, pageUrl(name), 'eddy ready')
    const b = await openPage(context, pageUrl(name), 'eddy ready')
    expect(await b.evaluate(() => (window as unknown as TestPageWindow).eddy.persistence)).toBe('memory')
    await a.close()
    await waitStatus(b, 's.leader')
    // while the memory tab leads, it pulls a change (and persists its cursor past it)
    await pushAs('other', 'orders', { order_id: uuid(80) }, { customer_id: 3, total_amount: '8.00' })
    await b.evaluate(() => (window as unknown as TestPageWindow).eddy.sync())
    await b.close()
    const c = await openPage(context, pageUrl(name), 'eddy ready')
    expect(await c.evaluate(() => (window as unknown as TestPageWindow).eddy.persistence)).toBe('opfs')
    await until(() =>
      c.evaluate(
        async (id) =>
          (
            await (window as unknown as TestPageWindow).eddy.query(
              'SELECT 1 FROM orders WHERE order_id = ?',
              [id],
            )
          ).length === 1,
        uuid(80),
      ),
    )
    await context.close()
  })
})
