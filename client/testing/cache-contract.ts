import { demoSchema } from '../../demo/schema.ts'
import { canonicalKey } from '../../shared/digest.ts'
import type { Row } from '../../shared/schema.ts'
import type { LocalCache } from '../cache/cache.ts'

/**
 * What the engine relies on from a `LocalCache`, as checks any implementation can run: the Map-based
 * test cache in Node (`memory-cache.test.ts`) and, from a test page, the DuckDB-WASM cache in
 * Chromium. Plain functions that throw on failure (no test framework inside), over the demo
 * schema's `orders` table. SQL stays within what the memory cache understands.
 */
export type CacheCheck = { name: string; run: (make: () => Promise<LocalCache>) => Promise<void> }

const orders = demoSchema.table('orders')
const tables = [...demoSchema.tables.values()]
const K1 = { order_id: '00000000-0000-4000-8000-0000000000a1' }
const K2 = { order_id: '00000000-0000-4000-8000-0000000000a2' }
const row = (key: Row, status: string): Row => ({
  ...key,
  customer_id: 7,
  total_amount: '12.50',
  status,
  created_at: null,
})
const stamp = (ms: number): string => `${String(ms).padStart(15, '0')}:00000:contract`

function check(ok: boolean, what: string, got?: unknown): void {
  if (!ok) throw new Error(`${what}${got === undefined ? '' : ` (got ${JSON.stringify(got)})`}`)
}

async function fresh(make: () => Promise<LocalCache>): Promise<LocalCache> {
  const c = await make()
  await c.init(tables)
  await c.init(tables) // idempotent
  return c
}

async function statusOf(c: LocalCache, key: Row): Promise<unknown> {
  const rows = await c.query('SELECT status FROM orders WHERE order_id = ?', [key.order_id])
  return rows[0]?.status
}

export const CACHE_CONTRACT: readonly CacheCheck[] = [
  {
    name: 'a local write is readable, pending, and reported by getRows',
    async run(make) {
      const c = await fresh(make)
      check((await c.getRows(orders, [K1])).size === 0, 'no row before the write')
      await c.applyLocal([{ table: orders, key: K1, row: row(K1, 'paid'), hlc: stamp(1) }])
      const got = (await c.getRows(orders, [K1])).get(canonicalKey(orders, K1))
      check(got?.hlc === stamp(1) && got.needsSync && !got.deleted, 'getRows after a local write', got)
      check(got?.values.status === 'paid', 'getRows values', got?.values)
      const pending = await c.query('SELECT order_id FROM orders WHERE _needs_sync')
      check(pending.length === 1 && pending[0]?.order_id === K1.order_id, '_needs_sync rows', pending)
      await c.close()
    },
  },
  {
    name: 'calls take effect in call order: a read called before earlier writes resolve sees them',
    async run(make) {
      const c = await fresh(make)
      // The engine acknowledges a write once it is in the outbox and only calls applyLocal, without
      // waiting: a read the app starts afterwards must still see the row.
      const writes: Array<Promise<void>> = []
      for (let i = 1; i <= 20; i++) {
        const key = { order_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` }
        writes.push(c.applyLocal([{ table: orders, key, row: row(key, 'paid'), hlc: stamp(i) }]))
      }
      writes.push(c.applyLocal([{ table: orders, key: K1, row: row(K1, 'paid'), hlc: stamp(30) }]))
      const first = c.query('SELECT order_id FROM orders WHERE _needs_sync')
      writes.push(c.applyLocal([{ table: orders, key: K1, row: row(K1, 'shipped'), hlc: stamp(31) }]))
      const got = c.getRows(orders, [K1])
      writes.push(c.applyLocal([{ table: orders, key: K1, row: null, hlc: stamp(32) }]))
      const gone = c.query('SELECT status FROM orders WHERE order_id = ?', [K1.order_id])
      check((await first).length === 21, 'a query sees every write called before it', (await first).length)
      const cached = (await got).get(canonicalKey(orders, K1))
      check(cached?.values.status === 'shipped' && cached.hlc === stamp(31), 'getRows in call order', cached)
      check((await gone).length === 0, 'a delete called before the query hides the row', await gone)
      await Promise.all(writes)
      await c.close()
    },
  },
  {
    name: 'a local delete leaves a pending tombstone that queries and digests hide',
    async run(make) {
      const c = await fresh(make)
      await c.applyLocal([
        { table: orders, key: K1, row: row(K1, 'paid'), hlc: stamp(1) },
        { table: orders, key: K2, row: row(K2, 'paid'), hlc: stamp(2) },
      ])
      await c.applyLocal([{ table: orders, key: K1, row: null, hlc: stamp(3) }])
      const got = (await c.getRows(orders, [K1])).get(canonicalKey(orders, K1))
      check(got?.deleted === true && got.needsSync && got.hlc === stamp(3), 'tombstone in getRows', got)
      check((await statusOf(c, K1)) === undefined, 'a deleted row is not queried')
      const digest = await c.digestEntries(orders)
      check(
        digest.length === 1 && digest[0]?.keyText === canonicalKey(orders, K2) && digest[0].hlc === stamp(2),
        'digest lists live rows only',
        digest,
      )
      await c.close()
    },
  },
  {
    name: 'revertLocal restores the previous row, or removes a row that did not exist',
    async run(make) {
      const c = await fresh(make)
      await c.applyLocal([{ table: orders, key: K1, row: row(K1, 'paid'), hlc: stamp(1) }])
      await c.markSynced(orders, [{ key: K1, hlc: stamp(1) }], '2026-01-01T00:00:00.000Z')
      const before = await c.getRows(orders, [K1, K2])
      await c.applyLocal([
        { table: orders, key: K1, row: row(K1, 'shipped'), hlc: stamp(2) },
        { table: orders, key: K2, row: row(K2, 'paid'), hlc: stamp(2) },
      ])
      await c.revertLocal([
        { table: orders, key: K1, row: before.get(canonicalKey(orders, K1)) },
        { table: orders, key: K2, row: before.get(canonicalKey(orders, K2)) },
      ])
      const after = await c.getRows(orders, [K1, K2])
      const k1 = after.get(canonicalKey(orders, K1))
      check(k1?.values.status === 'paid' && k1.hlc === stamp(1) && !k1.needsSync, 'K1 restored', k1)
      check(!after.has(canonicalKey(orders, K2)), 'K2 removed', [...after.keys()])
      await c.close()
    },
  },
  {
    name: 'applyRemote keeps a pending local write unless the change is as new or newer, and names changed tables',
    async run(make) {
      const c = await fresh(make)
      await c.applyLocal([{ table: orders, key: K1, row: row(K1, 'paid'), hlc: stamp(5) }])
      const older = await c.applyRemote(
        [{ table: 'orders', key: K1, row: row(K1, 'cancelled'), hlc: stamp(4) }],
        demoSchema.tables,
      )
      check(
        !older.has('orders') && (await statusOf(c, K1)) === 'paid',
        'an older change loses to a pending write',
      )
      const same = await c.applyRemote(
        [{ table: 'orders', key: K1, row: row(K1, 'paid'), hlc: stamp(5) }],
        demoSchema.tables,
      )
      const settled = (await c.getRows(orders, [K1])).get(canonicalKey(orders, K1))
      check(
        same.has('orders') && settled?.needsSync === false,
        "a change with the pending write's own stamp (pushed by another tab) settles it",
        settled,
      )
      await c.applyLocal([{ table: orders, key: K1, row: row(K1, 'paid'), hlc: stamp(5) }])
      const newer = await c.applyRemote(
        [{ table: 'orders', key: K1, row: row(K1, 'shipped'), hlc: stamp(6) }],
        demoSchema.tables,
      )
      check(newer.has('orders') && (await statusOf(c, K1)) === 'shipped', 'a newer change wins')
      const got = (await c.getRows(orders, [K1])).get(canonicalKey(orders, K1))
      check(got?.needsSync === false && got.hlc === stamp(6), 'the pulled row is not pending', got)
      // no pending write: any pulled change replaces the row, even one with an older stamp
      await c.applyRemote(
        [{ table: 'orders', key: K1, row: row(K1, 'pending'), hlc: stamp(1) }],
        demoSchema.tables,
      )
      check((await statusOf(c, K1)) === 'pending', 'a change replaces a synced row')
      await c.applyRemote([{ table: 'orders', key: K1, row: null, hlc: stamp(7) }], demoSchema.tables)
      check((await statusOf(c, K1)) === undefined, 'a pulled delete removes the row')
      await c.close()
    },
  },
  {
    name: 'markSynced clears rows still at the given stamp only, and drops synced tombstones',
    async run(make) {
      const c = await fresh(make)
      await c.applyLocal([
        { table: orders, key: K1, row: row(K1, 'paid'), hlc: stamp(1) },
        { table: orders, key: K2, row: row(K2, 'paid'), hlc: stamp(1) },
      ])
      await c.applyLocal([{ table: orders, key: K2, row: row(K2, 'shipped'), hlc: stamp(2) }])
      await c.markSynced(
        orders,
        [
          { key: K1, hlc: stamp(1) },
          { key: K2, hlc: stamp(1) },
        ],
        '2026-01-01T00:00:00.000Z',
      )
      const rows = await c.getRows(orders, [K1, K2])
      check(rows.get(canonicalKey(orders, K1))?.needsSync === false, 'K1 synced')
      check(rows.get(canonicalKey(orders, K2))?.needsSync === true, 'K2 has a newer pending write')
      await c.applyLocal([{ table: orders, key: K1, row: null, hlc: stamp(3) }])
      await c.markSynced(orders, [{ key: K1, hlc: stamp(3) }], '2026-01-01T00:00:01.000Z')
      check(!(await c.getRows(orders, [K1])).has(canonicalKey(orders, K1)), 'synced tombstone dropped')
      await c.close()
    },
  },
]
