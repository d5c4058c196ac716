import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { pullResponse } from '../../shared/protocol.ts'
import { withEdgeAndBrowser } from './edge-and-browser.ts'
import { openPage } from './harness.ts'
import type { TestPageWindow } from './page/main.ts'

/**
 * An OPFS cache file DuckDB-WASM cannot read (here: its bytes overwritten with garbage) does not
 * keep the app from starting: Eddy sets it aside, opens a fresh file, shows the pending writes from
 * the outbox at once and pulls the rest again. Real Chromium, OPFS, DuckDB-WASM and edge.
 */
const env = withEdgeAndBrowser()

const uuid = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`
const order = (id: string) => ({ order_id: id, customer_id: 7, total_amount: '12.50', status: 'paid' })

describe('an unreadable OPFS cache file', () => {
  it('is replaced by a fresh one: pending writes shown at once, synced rows pulled again, each pushed once', async () => {
    const pushed: string[] = []
    env.server.setInterceptor(async (req) => {
      if (req.url.includes('/sync/push')) {
        const body = (await req.json()) as { mutations: { key: { order_id: string } }[] }
        for (const m of body.mutations) pushed.push(m.key.order_id)
      }
      return undefined
    })
    const name = `reset${Date.now().toString(36)}`
    const url = `${env.server.origin}/test/browser/page/index.html?name=${name}&autoSync=0`
    const context = await env.browser.newContext()
    const first = await openPage(context, url, 'eddy ready')
    await first.evaluate(
      async ({ synced, pending }) => {
        const { eddy } = window as unknown as TestPageWindow
        await eddy.put('orders', synced)
        await eddy.sync()
        await eddy.put('orders', pending)
        await eddy.flush()
      },
      { synced: order(uuid(1)), pending: order(uuid(2)) },
    )
    await first.close()

    // a page of the same origin that runs no Eddy overwrites the file through OPFS
    const vandal = await context.newPage()
    await vandal.goto(`${env.server.origin}/no-eddy-here`)
    await vandal.evaluate(async (file) => {
      const root = await navigator.storage.getDirectory()
      const handle = await root.getFileHandle(file)
      // the writer may wait for the closed page's worker to let go of its access handle
      for (let i = 0; ; i++) {
        try {
          const w = await handle.createWritable()
          await w.write(new Uint8Array(64 * 1024).fill(0x5a))
          await w.close()
          return
        } catch (e) {
          if (i > 100) throw e
          await new Promise((r) => setTimeout(r, 100))
        }
      }
    }, `${name}.duckdb`)
    await vandal.close()

    const second = await openPage(context, url, 'eddy ready')
    const reopened = await second.evaluate(async () => {
      const { eddy } = window as unknown as TestPageWindow
      return {
        reset: eddy.cacheReset,
        persistence: eddy.persistence,
        rows: await eddy.query('SELECT order_id, _needs_sync FROM orders ORDER BY order_id'),
        pending: eddy.status().pending,
      }
    })
    expect(reopened.persistence).toBe('opfs')
    expect(reopened.reset?.message).toMatch(/not a valid DuckDB database file/)
    expect(reopened.rows).toEqual([{ order_id: uuid(2), _needs_sync: true }])
    expect(reopened.pending).toBe(1)

    const synced = await second.evaluate(async () => {
      const { eddy } = window as unknown as TestPageWindow
      await eddy.sync()
      return {
        rows: await eddy.query('SELECT order_id, _needs_sync FROM orders ORDER BY order_id'),
        pending: eddy.status().pending,
      }
    })
    expect(synced.rows).toEqual([
      { order_id: uuid(1), _needs_sync: false },
      { order_id: uuid(2), _needs_sync: false },
    ])
    expect(synced.pending).toBe(0)
    expect(pushed.sort()).toEqual([uuid(1), uuid(2)])
    const res = await env.edge.fetch(new Request(`${env.server.origin}/sync/pull?tables=orders`))
    expect(v.parse(pullResponse, await res.json()).changes).toHaveLength(2)

    // the fresh file is a normal cache: it opens again without a reset
    await second.reload()
    await second.waitForFunction(() => document.title === 'eddy ready')
    const third = await second.evaluate(async () => {
      const { eddy } = window as unknown as TestPageWindow
      return {
        reset: eddy.cacheReset,
        rows: await eddy.query('SELECT order_id FROM orders ORDER BY order_id'),
      }
    })
    expect(third).toEqual({ reset: null, rows: [{ order_id: uuid(1) }, { order_id: uuid(2) }] })
    await context.close()
  })
})
