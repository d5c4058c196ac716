import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import * as v from 'valibot'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  echoPageErrors,
  launchChromium,
  waitForFirstSync,
  waitForTestId,
} from '../../demo/harness/chromium.ts'
import { buildDemo, type DemoServer, SMALL_SEED, serveDemo } from '../../demo/harness/serve-demo.ts'
import { SEED_SIZES } from '../../demo/seed.ts'
import { must } from '../../shared/errors.ts'
import { conflictsResponse, pullResponse } from '../../shared/protocol.ts'
import type { Row } from '../../shared/schema.ts'

/**
 * The demo end to end, as a visitor meets it: the demo built with its own Vite config, served by the
 * real Node edge over the real DuckDB warehouse with the seeded sample data, in headless Chromium.
 * An order edited while the demo's "Go offline" switch is on waits in the outbox (pending 1); going
 * online pushes it (pending 0) and the warehouse serves it on `GET /sync/pull`.
 */
const ARTIFACTS = resolve(import.meta.dirname, '../artifacts')
/**
 * `small` by default: a slice of the same sample data, so the first sync takes seconds; hydrating
 * the full 100,000 orders takes over a minute on this 2-core machine. `EDDY_DEMO_SEED=full` runs the
 * suite on exactly what `npm start` seeds.
 */
const SEED = process.env.EDDY_DEMO_SEED === 'full' ? 'full' : 'small'
const ORDERS = SEED === 'full' ? SEED_SIZES.orders : SMALL_SEED.orders
/** A bound for the first sync, not a measurement: generous, since the machine may be busy. */
const FIRST_SYNC_MS = SEED === 'full' ? 300_000 : 90_000

let tmp: string
let server: DemoServer
let browser: Browser
let page: Page

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'eddy-demo-test-'))
  const dist = join(tmp, 'dist')
  await buildDemo(dist)
  server = await serveDemo(dist, SEED)
  browser = await launchChromium()
  // one profile (context) for every page, so a second tab shares the client id, outbox and cache
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } })
  page = await context.newPage()
  echoPageErrors(page, 'demo')
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

/** Every change of `table` the edge serves, following cursors to the end. */
async function pullAll(table: string): Promise<Map<string, Row | null>> {
  const rows = new Map<string, Row | null>()
  let cursor: string | undefined
  for (;;) {
    const q = new URLSearchParams({ tables: table, limit: '10000' })
    if (cursor !== undefined) q.set('cursor', cursor)
    const res = await fetch(`${server.url}/sync/pull?${q}`)
    expect(res.status).toBe(200)
    const page = v.parse(pullResponse, await res.json())
    for (const c of page.changes) rows.set(JSON.stringify(c.key), c.row)
    cursor = page.cursor
    if (!page.hasMore) return rows
  }
}

async function clickTestId(testid: string): Promise<void> {
  await page.click(`[data-testid="${testid}"]`)
}

describe('the demo app in Chromium', () => {
  it(
    'opens on the seeded data and exposes its client as window.eddy',
    async () => {
      await page.goto(server.url)
      // the first sync hydrates the cache; the orders view then pages over the seeded orders
      await waitForFirstSync(page, FIRST_SYNC_MS)
      expect(await page.evaluate(() => typeof window.eddy?.put)).toBe('function')
      await page.waitForSelector('[data-testid="rows-orders"] tr[data-key]', { timeout: 60_000 })
      expect(server.seeded).toBeGreaterThan(0)
      await page.waitForFunction(
        (n) => document.querySelector('[data-testid="page-info-orders"]')?.textContent?.endsWith(`of ${n}`),
        ORDERS.toLocaleString('en-US'),
      )
      await waitForTestId(page, 'pending', '0')
    },
    FIRST_SYNC_MS + 60_000,
  )

  it('shows a validation error beside the field and keeps the write out of the outbox', async () => {
    await page.click('[data-testid="rows-orders"] tr[data-key]')
    await page.fill('[data-testid="field-orders-total_amount"]', '12.5x')
    await clickTestId('save-orders')
    await page.waitForFunction(
      () => (document.querySelector('[data-testid="error-orders-total_amount"]')?.textContent ?? '') !== '',
    )
    expect(await page.textContent('[data-testid="error-orders-total_amount"]')).toMatch(/total_amount/)
    expect(await page.textContent('[data-testid="pending"]')).toBe('0')
  })

  it('edits an order offline (pending 1), then syncs it online (pending 0, row in /sync/pull)', async () => {
    const key = await page.getAttribute('[data-testid="rows-orders"] tr[data-key]', 'data-key')
    expect(key).toBeTruthy()
    await clickTestId('toggle-online')
    await waitForTestId(page, 'online', 'offline')

    await page.click(`[data-testid="rows-orders"] tr[data-key="${key}"]`)
    // outside the seeded range (5.00–504.99), so only this edit can have put it there
    const amount = '4321.25'
    await page.fill('[data-testid="field-orders-total_amount"]', amount)
    await page.selectOption('[data-testid="field-orders-status"]', 'shipped')
    await clickTestId('save-orders')
    await waitForTestId(page, 'pending', '1')
    const mark = `[data-testid="rows-orders"] tr[data-key="${key}"] .pill.pending`
    await page.waitForSelector(mark)
    // the local cache has the edit at once, marked as not yet synced
    const local = await page.evaluate(
      (k) => window.eddy?.query('SELECT total_amount, _needs_sync FROM orders WHERE order_id = ?', [k]),
      key,
    )
    expect(local).toEqual([{ total_amount: amount, _needs_sync: true }])
    // and the warehouse does not, while the switch is off
    const before = (await pullAll('orders')).get(JSON.stringify({ order_id: key }))
    expect(before?.total_amount).not.toBe(amount)
    await mkdir(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: join(ARTIFACTS, 'demo-offline-pending.png'), fullPage: true })

    await clickTestId('toggle-online')
    await waitForTestId(page, 'online', 'online')
    await clickTestId('sync-now')
    await waitForTestId(page, 'pending', '0')
    await page.waitForSelector(mark, { state: 'detached' })
    // the audit trail lists this browser's push
    await page.waitForSelector('[data-testid="events"] [data-testid="event-mine"]')

    const after = (await pullAll('orders')).get(JSON.stringify({ order_id: key }))
    expect(after).toMatchObject({ order_id: key, total_amount: amount, status: 'shipped' })
    // the cache and the warehouse agree again, by the digests the divergence panel compares
    await clickTestId('check-divergence')
    await page.waitForFunction(() =>
      /^\d/.test(document.querySelector('[data-testid="diverged-metrics"]')?.textContent ?? ''),
    )
    expect(await page.textContent('[data-testid="diverged-orders"]')).toMatch(/^0 in /)
    await page.screenshot({ path: join(ARTIFACTS, 'demo.png'), fullPage: true })
  })

  it('saves a customer through to the warehouse, then resolves a manual conflict from the panel', async () => {
    await clickTestId('tab-customers')
    const row = '[data-testid="rows-customers"] tr[data-key="1"]'
    await page.waitForSelector(row)
    await page.click(row)
    await page.fill('[data-testid="field-customers-email"]', 'not-an-email')
    await clickTestId('save-customers')
    await page.waitForFunction(
      () => (document.querySelector('[data-testid="error-customers-email"]')?.textContent ?? '') !== '',
    )
    await page.fill('[data-testid="field-customers-email"]', 'ada@example.com')
    await clickTestId('save-customers')
    // write-through: once the form says so, the warehouse already serves the row
    await waitForTestId(page, 'form-status-customers', 'Stored in the warehouse.')
    const key = JSON.stringify({ customer_id: 1 })
    const stored = (await pullAll('customers')).get(key)
    expect(stored).toMatchObject({ customer_id: 1, email: 'ada@example.com' })

    await page.fill('[data-testid="stale-edit-id"]', '1')
    await clickTestId('simulate-conflict')
    const card = await page.waitForSelector('article[data-testid^="conflict-"]')
    const id = must(await card.getAttribute('data-testid'), 'card id').replace('conflict-', '')
    const incoming = `${String(stored?.name)} (edited offline)`
    expect(await card.textContent()).toContain(incoming)
    // the stale write left the row as it was
    expect((await pullAll('customers')).get(key)).toMatchObject({ name: stored?.name })

    await clickTestId(`keep-incoming-${id}`)
    await page.waitForSelector('article[data-testid^="conflict-"]', { state: 'detached' })
    const open = v.parse(conflictsResponse, await (await fetch(`${server.url}/sync/conflicts`)).json())
    expect(open.conflicts.map((c) => String(c.id))).not.toContain(id)
    expect((await pullAll('customers')).get(key)).toMatchObject({ name: incoming, email: 'ada@example.com' })
    // the resolution is a new write: the panel's sync pulls it into the cache
    await page.waitForFunction(
      async (name) => {
        const rows = await window.eddy?.query('SELECT name FROM customers WHERE customer_id = 1')
        return rows?.[0]?.name === name
      },
      incoming,
      { timeout: 30_000 },
    )
  })

  it('merges a product edit per column: the max price and min stock hold, the note is appended', async () => {
    const key = JSON.stringify({ product_id: 1 })
    const before = must((await pullAll('products')).get(key), 'product 1')
    const price = Number(before.unit_price)
    const stock = Number(before.units_in_stock)
    await clickTestId('tab-products')
    const row = '[data-testid="rows-products"] tr[data-key="1"]'
    await page.waitForSelector(row)
    await page.click(row)
    // a lower price and a higher stock: per-column merge keeps the warehouse's max price and min stock
    await page.fill('[data-testid="field-products-unit_price"]', (price - 0.5).toFixed(2))
    await page.fill('[data-testid="field-products-units_in_stock"]', String(stock + 5))
    await page.fill('[data-testid="field-products-notes"]', 'recount on Monday')
    await clickTestId('save-products')
    // hybrid: queued locally for the 5-minute schedule; "Sync now" sends it at once
    await waitForTestId(page, 'pending', '1')
    await clickTestId('sync-now')
    await waitForTestId(page, 'pending', '0')
    const after = must((await pullAll('products')).get(key), 'product 1 after')
    const notes =
      before.notes === null || before.notes === ''
        ? 'recount on Monday'
        : `${String(before.notes)} | recount on Monday`
    expect(Number(after.unit_price)).toBe(price)
    expect(Number(after.units_in_stock)).toBe(stock)
    expect(after.notes).toBe(notes)
    // and the cache converges on the merged row
    await page.waitForFunction(
      async ([p, n]) => {
        const rows = await window.eddy?.query('SELECT unit_price, notes FROM products WHERE product_id = 1')
        return Number(rows?.[0]?.unit_price) === p && rows?.[0]?.notes === n
      },
      [price, notes] as const,
      { timeout: 30_000 },
    )
  })

  it('lists a write the edge refused in the rejected panel until it is cleared', async () => {
    await clickTestId('tab-orders')
    const key = await page.getAttribute('[data-testid="rows-orders"] tr[data-key]:nth-child(2)', 'data-key')
    // the edge's clock falls 10 minutes behind: this tab's stamps are now too far in its future
    server.setClockOffset(-10 * 60_000)
    try {
      await clickTestId('toggle-online')
      await waitForTestId(page, 'online', 'offline')
      await page.click(`[data-testid="rows-orders"] tr[data-key="${key}"]`)
      await page.selectOption('[data-testid="field-orders-status"]', 'cancelled')
      await clickTestId('save-orders')
      await waitForTestId(page, 'pending', '1')
      await clickTestId('toggle-online')
      await waitForTestId(page, 'online', 'online')
      await clickTestId('sync-now')
      await waitForTestId(page, 'pending', '0')
    } finally {
      server.setClockOffset(0)
    }
    const item = await page.waitForSelector('[data-testid="rejected-list"] li')
    expect(await item.textContent()).toContain('clock_skew')
    expect(await item.textContent()).toContain(String(key))
    expect(await page.evaluate(() => window.eddy?.status().rejected)).toBe(1)
    await clickTestId('clear-rejected')
    await page.waitForSelector('[data-testid="rejected-list"]', { state: 'detached' })
    expect(await page.evaluate(() => window.eddy?.status().rejected)).toBe(0)
  })

  it('opens in a second tab of the same profile, which follows the syncing tab', async () => {
    const second = await page.context().newPage()
    echoPageErrors(second, 'tab 2')
    try {
      await second.goto(server.url)
      await second.waitForFunction(() => document.body.dataset.ready !== undefined, null, { timeout: 60_000 })
      expect(await second.evaluate(() => document.body.dataset.ready)).toBe('true')
      await waitForTestId(page, 'leader', 'this tab syncs')
      await waitForTestId(second, 'leader', 'another tab syncs')
      // an edit in the first tab reaches the second tab's view
      await clickTestId('tab-orders')
      const key = must(await page.getAttribute('[data-testid="rows-orders"] tr[data-key]', 'data-key'), 'key')
      await page.click(`[data-testid="rows-orders"] tr[data-key="${key}"]`)
      await page.fill('[data-testid="field-orders-total_amount"]', '777.77')
      await clickTestId('save-orders')
      await second.waitForFunction(
        (k) =>
          document
            .querySelector(`[data-testid="rows-orders"] tr[data-key="${k}"]`)
            ?.textContent?.includes('777.77'),
        key,
        { timeout: 30_000 },
      )
    } finally {
      await second.close()
    }
  })

  it('opens again with the edge down: the shell from the service worker, the rows from the persisted cache', async () => {
    const key = await page.getAttribute('[data-testid="rows-orders"] tr[data-key]', 'data-key')
    const amount = await page.evaluate(
      (k) => window.eddy?.query('SELECT total_amount FROM orders WHERE order_id = ?', [k]),
      key,
    )
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="sw-state"]')?.textContent?.endsWith('ready'),
    )
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null)
    await server.stop()
    // the edge is gone: nothing on the port answers, so every file below comes from the precache
    await expect(fetch(server.url)).rejects.toThrow()
    await page.reload()
    await page.waitForFunction(() => document.body.dataset.ready !== undefined, null, { timeout: 60_000 })
    expect(await page.evaluate(() => document.body.dataset.ready)).toBe('true')
    await page.waitForSelector(`[data-testid="rows-orders"] tr[data-key="${key}"]`, { timeout: 30_000 })
    expect(
      await page.evaluate(
        (k) => window.eddy?.query('SELECT total_amount FROM orders WHERE order_id = ?', [k]),
        key,
      ),
    ).toEqual(amount)
    // the service worker never answers for the API: with the edge gone, API calls fail
    expect(
      await page.evaluate(() =>
        fetch('/sync/health').then(
          () => 'answered',
          () => 'failed',
        ),
      ),
    ).toBe('failed')
    await page.screenshot({ path: join(ARTIFACTS, 'demo-edge-down.png'), fullPage: true })
  })
})
