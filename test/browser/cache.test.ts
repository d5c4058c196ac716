import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CACHE_CONTRACT } from '../../client/testing/cache-contract.ts'
import { launchBrowser, openPage, startServer, type TestServer } from './harness.ts'

/**
 * The DuckDB-WASM cache on its own, in real Chromium: tables and views from the demo schema,
 * local and remote writes with their rules, Arrow bulk load, value types, OPFS persistence.
 */
let server: TestServer
let browser: Browser
let page: Page

beforeAll(async () => {
  server = await startServer()
  browser = await launchBrowser()
  page = await openPage(browser, `${server.origin}/test/browser/page/cache.html`, 'cache lab ready')
})
afterAll(async () => {
  await browser?.close()
  await server?.close()
})

describe('DuckDB-WASM cache', () => {
  it('stores and reads back every column type in its wire form', async () => {
    const out = await page.evaluate(async () => {
      const { lab } = window
      const spec = {
        tables: {
          kinds: {
            primaryKey: ['id'],
            columns: {
              id: { type: 'bigint' },
              i: { type: 'integer' },
              d: { type: 'double' },
              m: { type: 'decimal(12,3)' },
              t: { type: 'text' },
              b: { type: 'boolean' },
              day: { type: 'date' },
              ts: { type: 'timestamp' },
              u: { type: 'uuid' },
              j: { type: 'json' },
            },
          },
        },
      } as const
      const cache = await lab.openCacheFor(spec)
      const t = lab.defineSchema(spec).table('kinds')
      const big = '9007199254740993' // 2^53 + 1
      const rows = [
        {
          id: big,
          i: -5,
          d: 0.1,
          m: '-12.345',
          t: "a'b",
          b: true,
          day: '2026-02-28',
          ts: '2026-02-28T23:59:58.123Z',
          u: '0f8fad5b-d9cb-469f-a165-70867728950e',
          j: { a: [1, 'x'] },
        },
        {
          id: 2,
          i: null,
          d: null,
          m: null,
          t: null,
          b: false,
          day: null,
          ts: '2026-01-01T00:00:00+02:00',
          u: null,
          j: null,
        },
      ]
      await cache.applyLocal(
        rows.map((r, n) => ({ table: t, key: { id: r.id }, row: r, hlc: `001795000000000:0000${n}:me` })),
      )
      const read = await cache.query('SELECT id, i, d, m, t, b, day, ts, u, j FROM kinds ORDER BY id')
      const got = await cache.getRows(t, [{ id: big }])
      const cached = got.get(`["${big}"]`)
      return {
        read: read.map((r) => ({ ...r, id: typeof r.id === 'bigint' ? `bigint:${r.id}` : r.id })),
        json: cached?.values.j,
      }
    })
    expect(out.read).toEqual([
      {
        id: 2,
        i: null,
        d: null,
        m: null,
        t: null,
        b: false,
        day: null,
        ts: '2025-12-31T22:00:00.000Z',
        u: null,
        j: null,
      },
      {
        id: 'bigint:9007199254740993',
        i: -5,
        d: 0.1,
        m: '-12.345',
        t: "a'b",
        b: true,
        day: '2026-02-28',
        ts: '2026-02-28T23:59:58.123Z',
        u: '0f8fad5b-d9cb-469f-a165-70867728950e',
        j: '{"a":[1,"x"]}',
      },
    ])
    expect(out.json).toEqual({ a: [1, 'x'] })
  })

  it('creates each table with system columns, a live-rows view and typed values', async () => {
    const out = await page.evaluate(async () => {
      const { lab } = window
      const cache = await lab.openCache()
      const products = lab.demoSchema.table('products')
      const orders = lab.demoSchema.table('orders')
      await cache.applyLocal([
        {
          table: products,
          key: { product_id: 1 },
          row: { product_id: 1, name: "O'Brien", unit_price: '12.50', units_in_stock: 3, notes: null },
          hlc: '001795000000000:00001:c1',
        },
        {
          table: orders,
          key: { order_id: 'a' },
          row: {
            order_id: 'a',
            customer_id: 7,
            total_amount: '1.00',
            status: 'paid',
            created_at: '2026-01-02T03:04:05.678Z',
          },
          hlc: '001795000000000:00002:c1',
        },
      ])
      const rows = await cache.query('SELECT * FROM products')
      const pending = await cache.query(
        'SELECT order_id, created_at, _needs_sync, _deleted FROM orders WHERE _needs_sync',
      )
      const agg = await cache.query(
        'SELECT sum(units_in_stock) AS s, count(*) AS n, sum(unit_price) AS p FROM products',
      )
      const param = await cache.query('SELECT name FROM products WHERE product_id = ?', [1])
      return { rows, pending, agg, param }
    })
    expect(out.rows).toEqual([
      {
        product_id: 1,
        name: "O'Brien",
        unit_price: '12.50',
        units_in_stock: 3,
        notes: null,
        _hlc: '001795000000000:00001:c1',
        _needs_sync: true,
        _synced_at: null,
        _deleted: false,
      },
    ])
    expect(out.pending).toEqual([
      { order_id: 'a', created_at: '2026-01-02T03:04:05.678Z', _needs_sync: true, _deleted: false },
    ])
    expect(out.agg).toEqual([{ s: 3, n: 1, p: '12.50' }])
    expect(out.param).toEqual([{ name: "O'Brien" }])
  })

  it('applies remote changes only over rows without a newer pending write, and keeps tombstones until synced', async () => {
    const out = await page.evaluate(async () => {
      const { lab } = window
      const cache = await lab.openCache()
      const orders = lab.demoSchema.table('orders')
      const row = (id: string, total: string) => ({
        order_id: id,
        customer_id: 1,
        total_amount: total,
        status: null,
        created_at: null,
      })
      // a: pending local write at t5; b: pending at t5; c: synced; d: pending delete
      await cache.applyLocal([
        { table: orders, key: { order_id: 'a' }, row: row('a', '1.00'), hlc: '001795000000005:00000:me' },
        { table: orders, key: { order_id: 'b' }, row: row('b', '1.00'), hlc: '001795000000005:00000:me' },
        { table: orders, key: { order_id: 'c' }, row: row('c', '1.00'), hlc: '001795000000001:00000:me' },
        { table: orders, key: { order_id: 'd' }, row: row('d', '1.00'), hlc: '001795000000001:00000:me' },
        { table: orders, key: { order_id: 'd' }, row: null, hlc: '001795000000002:00000:me' },
      ])
      await cache.markSynced(
        orders,
        [{ key: { order_id: 'c' }, hlc: '001795000000001:00000:me' }],
        '2026-01-01T00:00:00Z',
      )
      const tombstones = await cache.query(
        `SELECT order_id, _deleted, _needs_sync FROM ${cache.physicalName(orders)} WHERE _deleted`,
      )
      const liveBefore = await cache.query('SELECT order_id FROM orders ORDER BY order_id')
      const changed = await cache.applyRemote(
        [
          {
            table: 'orders',
            key: { order_id: 'a' },
            row: row('a', '9.00'),
            hlc: '001795000000004:00000:other',
          }, // older than pending: loses
          {
            table: 'orders',
            key: { order_id: 'b' },
            row: row('b', '8.00'),
            hlc: '001795000000003:00000:other',
          },
          {
            table: 'orders',
            key: { order_id: 'b' },
            row: row('b', '9.00'),
            hlc: '001795000000006:00000:other',
          }, // newer: wins
          { table: 'orders', key: { order_id: 'c' }, row: null, hlc: '001795000000000:00000:other' }, // no pending write: applies
          {
            table: 'orders',
            key: { order_id: 'e' },
            row: row('e', '5.00'),
            hlc: '001795000000000:00000:other',
          },
        ],
        lab.demoSchema.tables,
      )
      const after = await cache.query(
        'SELECT order_id, total_amount, _needs_sync, _synced_at IS NOT NULL AS synced FROM orders ORDER BY order_id',
      )
      const got = await cache.getRows(orders, [{ order_id: 'a' }, { order_id: 'd' }, { order_id: 'zz' }])
      await cache.markSynced(
        orders,
        [{ key: { order_id: 'd' }, hlc: '001795000000002:00000:me' }],
        '2026-01-01T00:00:00Z',
      )
      const tombstonesAfter = await cache.query(
        `SELECT count(*) AS n FROM ${cache.physicalName(orders)} WHERE _deleted`,
      )
      const unchanged = await cache.applyRemote(
        [
          {
            table: 'orders',
            key: { order_id: 'a' },
            row: row('a', '7.00'),
            hlc: '001795000000001:00000:other',
          },
        ],
        lab.demoSchema.tables,
      )
      return {
        tombstones,
        liveBefore,
        changed: [...changed],
        unchanged: [...unchanged],
        after,
        got: [...got.entries()],
        tombstonesAfter,
      }
    })
    expect(out.tombstones).toEqual([{ order_id: 'd', _deleted: true, _needs_sync: true }])
    expect(out.liveBefore.map((r) => r.order_id)).toEqual(['a', 'b', 'c'])
    expect(out.changed).toEqual(['orders'])
    expect(out.unchanged).toEqual([])
    expect(out.after).toEqual([
      { order_id: 'a', total_amount: '1.00', _needs_sync: true, synced: false },
      { order_id: 'b', total_amount: '9.00', _needs_sync: false, synced: true },
      { order_id: 'e', total_amount: '5.00', _needs_sync: false, synced: true },
    ])
    expect(out.got).toEqual([
      [
        '["a"]',
        {
          values: { order_id: 'a', customer_id: 1, total_amount: '1.00', status: null, created_at: null },
          hlc: '001795000000005:00000:me',
          deleted: false,
          needsSync: true,
        },
      ],
      [
        '["d"]',
        {
          values: { order_id: 'd', customer_id: null, total_amount: null, status: null, created_at: null },
          hlc: '001795000000002:00000:me',
          deleted: true,
          needsSync: true,
        },
      ],
    ])
    expect(out.tombstonesAfter).toEqual([{ n: 0 }])
  })

  it('reverts local writes to the previous rows, and one batch is all-or-nothing', async () => {
    const out = await page.evaluate(async () => {
      const { lab } = window
      const cache = await lab.openCache()
      const t = lab.demoSchema.table('customers')
      const w = (id: number, name: string, hlc: string) => ({
        table: t,
        key: { customer_id: id },
        row: { customer_id: id, name, email: null, updated_at: null },
        hlc,
      })
      await cache.applyLocal([w(1, 'one', '001795000000001:00000:me')])
      await cache.markSynced(
        t,
        [{ key: { customer_id: 1 }, hlc: '001795000000001:00000:me' }],
        '2026-01-01T00:00:00Z',
      )
      const before = await cache.getRows(t, [{ customer_id: 1 }, { customer_id: 2 }])
      await cache.applyLocal([
        w(1, 'ONE', '001795000000002:00000:me'),
        w(2, 'two', '001795000000002:00001:me'),
      ])
      await cache.revertLocal([
        { table: t, key: { customer_id: 1 }, row: before.get('[1]') },
        { table: t, key: { customer_id: 2 }, row: before.get('[2]') },
      ])
      const reverted = await cache.query(
        'SELECT customer_id, name, _hlc, _needs_sync FROM customers ORDER BY 1',
      )
      // a batch whose second write cannot be stored (integer column given text) leaves nothing behind
      let error = ''
      try {
        await cache.applyLocal([
          w(3, 'three', '001795000000003:00000:me'),
          { ...w(4, 'four', '001795000000003:00001:me'), row: { customer_id: 'x', name: 'four' } },
        ])
      } catch (e) {
        error = (e as { code?: string }).code ?? String(e)
      }
      const afterFail = await cache.query('SELECT count(*) AS n FROM customers')
      return { reverted, error, afterFail }
    })
    expect(out.reverted).toEqual([
      { customer_id: 1, name: 'one', _hlc: '001795000000001:00000:me', _needs_sync: false },
    ])
    expect(out.error).toBe('internal')
    expect(out.afterFail).toEqual([{ n: 1 }])
  })

  it('takes large batches through Arrow staging with the same result as a VALUES list', async () => {
    const out = await page.evaluate(async () => {
      const { lab } = window
      const results: unknown[] = []
      for (const threshold of [0, 100_000]) {
        const cache = await lab.openCache(':memory:', threshold)
        const t = lab.demoSchema.table('products')
        const writes = Array.from({ length: 2000 }, (_, i) => ({
          table: t,
          key: { product_id: (i % 1500) + 1 },
          row: {
            product_id: (i % 1500) + 1,
            name: `p${i}`,
            unit_price: `${i}.25`,
            units_in_stock: i,
            notes: i % 2 ? null : 'x',
          },
          hlc: `001795000000000:${i.toString(36).padStart(5, '0')}:me`,
        }))
        await cache.applyLocal(writes)
        results.push(
          await cache.query(
            'SELECT count(*) AS n, sum(units_in_stock) AS s, max(unit_price) AS p, count(notes) AS notes, max(name) AS name FROM products',
          ),
        )
        const tables = await cache.query(
          `SELECT count(*) AS n FROM information_schema.tables WHERE table_name LIKE '_eddy_stage%'`,
        )
        results.push(tables)
        await cache.close()
      }
      return results
    })
    // later writes of a key win: keys 1..500 hold i = 1500..1999, keys 501..1500 hold i = 500..1499
    expect(out[0]).toEqual([{ n: 1500, s: sumLatest(), p: '1999.25', notes: 750, name: 'p999' }])
    expect(out[2]).toEqual(out[0])
    expect(out[1]).toEqual([{ n: 0 }])
  })

  it('loads a first Arrow page into an empty table without its tombstones; later, local writes still win', async () => {
    const out = await page.evaluate(async () => {
      const { lab } = window
      const cache = await lab.openCache()
      const t = lab.demoSchema.table('orders')
      const { id, hlc, row, change } = lab.orders
      const read = () =>
        cache.query(
          `SELECT order_id, status, _hlc, _needs_sync, _deleted FROM _eddy_orders ORDER BY order_id`,
        )
      // the empty table takes the live rows only: a tombstone has nothing to delete
      const loaded = await cache.loadArrow(
        t,
        lab.changesIpc(t, [change(1, 10, 'paid'), change(2, 11, null), change(3, 12, 'paid')]),
      )
      const first = await read()
      // a local write, then an older pulled version of the same row (JSON, then Arrow): the write wins
      await cache.applyLocal([{ table: t, key: { order_id: id(1) }, row: row(1, 'mine'), hlc: hlc(50) }])
      await cache.applyRemote([change(1, 20, 'older')], lab.demoSchema.tables)
      await cache.loadArrow(t, lab.changesIpc(t, [change(1, 30, 'older'), change(3, 31, null)]))
      const second = await read()
      // a newer pulled version replaces it
      await cache.loadArrow(t, lab.changesIpc(t, [change(1, 60, 'newer')]))
      const third = await read()
      await cache.close()
      return { loaded, first, second, third }
    })
    expect(out.loaded).toBe(2)
    expect(out.first).toEqual([
      {
        order_id: '00000000-0000-4000-8000-000000000001',
        status: 'paid',
        _hlc: '001795000000010:00000:server',
        _needs_sync: false,
        _deleted: false,
      },
      {
        order_id: '00000000-0000-4000-8000-000000000003',
        status: 'paid',
        _hlc: '001795000000012:00000:server',
        _needs_sync: false,
        _deleted: false,
      },
    ])
    expect(out.second).toEqual([
      {
        order_id: '00000000-0000-4000-8000-000000000001',
        status: 'mine',
        _hlc: '001795000000050:00000:server',
        _needs_sync: true,
        _deleted: false,
      },
    ])
    expect(out.third).toEqual([
      {
        order_id: '00000000-0000-4000-8000-000000000001',
        status: 'newer',
        _hlc: '001795000000060:00000:server',
        _needs_sync: false,
        _deleted: false,
      },
    ])
  })

  it('loads later pages of new keys as plain inserts, and a page meeting a stored key through the upsert', async () => {
    const out = await page.evaluate(async () => {
      const { lab } = window
      const cache = await lab.openCache()
      const t = lab.demoSchema.table('orders')
      const { id, hlc, row, change } = lab.orders
      const read = async () =>
        (
          await cache.query(`SELECT order_id, status, _hlc, _needs_sync FROM _eddy_orders ORDER BY order_id`)
        ).map((r) => [
          Number(String(r.order_id).slice(-2)),
          r.status,
          Number(String(r._hlc).slice(13, 15)),
          r._needs_sync,
        ])
      // a first page, then a local write during the load
      await cache.loadArrow(t, lab.changesIpc(t, [change(1, 10, 'paid'), change(2, 11, 'paid')]))
      await cache.applyLocal([{ table: t, key: { order_id: id(5) }, row: row(5, 'mine'), hlc: hlc(50) }])
      // a later page of new keys, with a tombstone of a key never stored: the rows go in, the tombstone nowhere
      const plain = await cache.loadArrow(
        t,
        lab.changesIpc(t, [change(3, 12, 'paid'), change(4, 13, null), change(6, 14, 'paid')]),
      )
      const afterPlain = await read()
      // a page with the locally written key (older than the write) and a newer version of key 1:
      // the plain insert meets stored keys, so the page is loaded again through the upsert
      const upserted = await cache.loadArrow(
        t,
        lab.changesIpc(t, [change(5, 20, 'older'), change(1, 21, 'shipped'), change(7, 22, 'paid')]),
      )
      const afterUpsert = await read()
      // a page whose only stored key is a tombstone: the row is deleted
      await cache.loadArrow(t, lab.changesIpc(t, [change(2, 30, null), change(8, 31, 'paid')]))
      const afterTombstone = await read()
      await cache.close()
      return { plain, afterPlain, upserted, afterUpsert, afterTombstone }
    })
    expect(out.plain).toBe(2)
    expect(out.afterPlain).toEqual([
      [1, 'paid', 10, false],
      [2, 'paid', 11, false],
      [3, 'paid', 12, false],
      [5, 'mine', 50, true],
      [6, 'paid', 14, false],
    ])
    expect(out.upserted).toBe(2)
    expect(out.afterUpsert).toEqual([
      [1, 'shipped', 21, false],
      [2, 'paid', 11, false],
      [3, 'paid', 12, false],
      [5, 'mine', 50, true],
      [6, 'paid', 14, false],
      [7, 'paid', 22, false],
    ])
    expect(out.afterTombstone).toEqual([
      [1, 'shipped', 21, false],
      [3, 'paid', 12, false],
      [5, 'mine', 50, true],
      [6, 'paid', 14, false],
      [7, 'paid', 22, false],
      [8, 'paid', 31, false],
    ])
  })

  it('hydrates 100k pulled rows through Arrow and reports digest entries of live rows', async () => {
    const out = await page.evaluate(async () => {
      const { lab } = window
      const cache = await lab.openCache()
      const t = lab.demoSchema.table('orders')
      const ipc = lab.ordersIpc(100_000)
      const start = performance.now()
      const loaded = await cache.loadArrow(t, ipc)
      const ms = performance.now() - start
      const rawMs = await lab.rawInsertMs(lab.ordersIpc(100_000))
      const keyedMs = await lab.rawInsertMs(lab.ordersIpc(100_000), true)
      const stats = await cache.query(
        'SELECT count(*) AS n, count(DISTINCT customer_id) AS c, bool_and(NOT _needs_sync) AS clean, max(total_amount) AS maxt FROM orders',
      )
      await cache.applyLocal([
        {
          table: t,
          key: { order_id: '00000000-0000-4000-8000-000000000000' },
          row: null,
          hlc: '001795000000009:00000:me',
        },
      ])
      const digest = await cache.digestEntries(t)
      return {
        loaded,
        stats,
        digestCount: digest.length,
        first: digest.find((d) => d.keyText === '["00000000-0000-4000-8000-000000000001"]'),
        ms,
        rawMs,
        keyedMs,
      }
    })
    console.info(
      `100k orders: loadArrow ${out.ms.toFixed(0)} ms; raw Arrow insert ${out.rawMs.toFixed(0)} ms, ` +
        `raw insert into a primary-keyed table ${out.keyedMs.toFixed(0)} ms`,
    )
    expect(out.loaded).toBe(100_000)
    expect(out.stats).toEqual([{ n: 100_000, c: 1000, clean: true, maxt: '99.99' }])
    expect(out.digestCount).toBe(99_999)
    expect(out.first).toEqual({
      keyText: '["00000000-0000-4000-8000-000000000001"]',
      hlc: '001795000000000:00000:server',
    })
  })

  it('adds a column the schema gained to an existing table and its view, keeping the stored rows', async () => {
    const out = await page.evaluate(async () => {
      const { lab } = window
      const v1 = {
        tables: {
          notes: { primaryKey: ['id'], columns: { id: { type: 'integer' }, body: { type: 'text' } } },
        },
      } as const
      const v2 = {
        tables: {
          notes: {
            primaryKey: ['id'],
            columns: { id: { type: 'integer' }, body: { type: 'text' }, pinned: { type: 'boolean' } },
          },
        },
      } as const
      const cache = await lab.openCacheFor(v1)
      const t1 = lab.defineSchema(v1).table('notes')
      await cache.applyLocal([
        { table: t1, key: { id: 1 }, row: { id: 1, body: 'kept' }, hlc: '001795000000000:00000:me' },
      ])
      const before = await cache.query('SELECT * FROM notes')
      await cache.init([...lab.defineSchema(v2).tables.values()])
      const t2 = lab.defineSchema(v2).table('notes')
      await cache.applyLocal([
        {
          table: t2,
          key: { id: 2 },
          row: { id: 2, body: 'new', pinned: true },
          hlc: '001795000000000:00001:me',
        },
      ])
      const after = await cache.query('SELECT id, body, pinned FROM notes ORDER BY id')
      const viewColumns = Object.keys((await cache.query('SELECT * FROM notes LIMIT 1'))[0] ?? {})
      await cache.close()
      return { before: Object.keys(before[0] ?? {}), after, viewColumns }
    })
    expect(out.before).not.toContain('pinned')
    expect(out.after).toEqual([
      { id: 1, body: 'kept', pinned: null },
      { id: 2, body: 'new', pinned: true },
    ])
    expect(out.viewColumns.slice(0, 3)).toEqual(['id', 'body', 'pinned'])
  })

  it('appends pulled pages by column name to a table whose columns are in another order', async () => {
    const out = await page.evaluate(async () => {
      const { lab } = window
      const v1 = {
        tables: {
          notes: { primaryKey: ['id'], columns: { id: { type: 'integer' }, body: { type: 'text' } } },
        },
      } as const
      const v2 = {
        tables: {
          notes: {
            primaryKey: ['id'],
            columns: {
              id: { type: 'integer' },
              body: { type: 'text' },
              pinned: { type: 'boolean' },
              due: { type: 'date' },
            },
          },
        },
      } as const
      // the physical table gets `pinned` and `due` after its system columns; a page has them before `_hlc`
      const cache = await lab.openCacheFor(v1)
      await cache.init([...lab.defineSchema(v2).tables.values()])
      const t1 = lab.defineSchema(v1).table('notes')
      const t2 = lab.defineSchema(v2).table('notes')
      const change = (id: number, at: number, row: Record<string, unknown> | null) => ({
        table: 'notes',
        key: { id },
        row,
        hlc: `0017950000000${at}:00000:server`,
        version: BigInt(at),
      })
      const loaded = await cache.loadArrow(
        t2,
        lab.changesIpc(t2, [
          change(1, 10, { id: 1, body: 'one', pinned: true, due: '2026-03-04' }),
          change(2, 11, null),
          change(3, 12, { id: 3, body: 'three', pinned: false, due: null }),
        ]),
      )
      // a page from an edge that does not know the new columns yet: they stay empty
      const older = await cache.loadArrow(t1, lab.changesIpc(t1, [change(4, 13, { id: 4, body: 'four' })]))
      const rows = await cache.query(
        `SELECT id, body, pinned, CAST(due AS VARCHAR) AS due, _hlc, _needs_sync, _deleted, _synced_at IS NOT NULL AS synced
         FROM _eddy_notes ORDER BY id`,
      )
      await cache.close()
      return { loaded, older, rows }
    })
    expect(out.loaded).toBe(2)
    expect(out.older).toBe(1)
    const synced = { _needs_sync: false, _deleted: false, synced: true }
    expect(out.rows).toEqual([
      {
        id: 1,
        body: 'one',
        pinned: true,
        due: '2026-03-04',
        _hlc: '001795000000010:00000:server',
        ...synced,
      },
      { id: 3, body: 'three', pinned: false, due: null, _hlc: '001795000000012:00000:server', ...synced },
      { id: 4, body: 'four', pinned: null, due: null, _hlc: '001795000000013:00000:server', ...synced },
    ])
  })

  it('writes text columns to the OPFS file without FSST, and still answers them as text', async () => {
    const out = await page.evaluate(async () => {
      const { lab } = window
      const file = `opfs://fsst-${Date.now()}.duckdb`
      const cache = await lab.openCache(file)
      const t = lab.demoSchema.table('orders')
      await cache.loadArrow(t, lab.ordersIpc(30_000))
      await cache.checkpoint()
      const layout = await cache.query(
        `SELECT column_name, string_agg(DISTINCT compression, ',' ORDER BY compression) AS compression
         FROM pragma_storage_info('_eddy_orders') WHERE column_name IN ('order_id', 'total_amount')
         GROUP BY column_name ORDER BY column_name`,
      )
      const sums = await cache.query(
        'SELECT sum(CAST(total_amount AS DECIMAL(18,2))) AS total, min(total_amount) AS least FROM orders',
      )
      await cache.close()
      return { layout, sums }
    })
    // the uuid-like keys are what DuckDB compresses with FSST by default
    for (const c of out.layout) expect(String(c.compression)).not.toContain('FSST')
    expect(out.layout.map((c) => c.column_name)).toEqual(['order_id', 'total_amount'])
    let total = 0
    for (let i = 0; i < 30_000; i++) total += (i % 500) * 100 + (i % 100)
    expect(out.sums).toEqual([{ total: (total / 100).toFixed(2), least: '0.00' }])
  })
})

/** sum of units_in_stock when the last of i = 0..1999 wins for key (i % 1500) + 1 */
function sumLatest(): number {
  const latest = new Map<number, number>()
  for (let i = 0; i < 2000; i++) latest.set(i % 1500, i)
  let s = 0
  for (const v of latest.values()) s += v
  return s
}

describe('DuckDB-WASM cache keeps the LocalCache contract', () => {
  for (const c of CACHE_CONTRACT) {
    it(c.name, async () => {
      expect(await page.evaluate((name) => window.lab.runContract(name), c.name)).toBe('ok')
    })
  }
})
