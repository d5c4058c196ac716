import type { RowWrite, Warehouse } from '../edge/warehouse/warehouse.ts'
import { formatHlc } from '../shared/hlc.ts'
import type { Row, Schema } from '../shared/schema.ts'

/** Sizes of the demo's sample data (DESIGN.md). */
export const SEED_SIZES = { customers: 1000, products: 10_000, orders: 100_000 } as const

/** Every seeded row carries this stamp (2026-01-01T00:00:00Z), older than any real client write. */
export const SEED_HLC = formatHlc({ wall: Date.UTC(2026, 0, 1), counter: 0, node: 'seed' })

const STATUSES = ['pending', 'paid', 'shipped', 'cancelled'] as const

/** A small deterministic PRNG (mulberry32): the same seed gives the same sample data on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function uuidFrom(rand: () => number): string {
  const hex = (n: number): string =>
    Math.floor(rand() * 16 ** n)
      .toString(16)
      .padStart(n, '0')
  const variant = '89ab'[Math.floor(rand() * 4)] ?? '8'
  return `${hex(8)}-${hex(4)}-4${hex(3)}-${variant}${hex(3)}-${hex(6)}${hex(6)}`
}

function money(cents: number): string {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`
}

function isoAt(ms: number): string {
  return new Date(ms).toISOString()
}

/** The demo's sample rows, table by table (deterministic). */
export function demoSeedRows(): Record<'customers' | 'products' | 'orders', Row[]> {
  const rand = prng(20260101)
  const day0 = Date.UTC(2025, 0, 1)
  const customers: Row[] = []
  for (let i = 1; i <= SEED_SIZES.customers; i++) {
    customers.push({
      customer_id: i,
      name: `Customer ${i}`,
      email: `customer${i}@example.com`,
      updated_at: isoAt(day0 + i * 60_000),
    })
  }
  const products: Row[] = []
  for (let i = 1; i <= SEED_SIZES.products; i++) {
    products.push({
      product_id: i,
      name: `Product ${i}`,
      unit_price: money(100 + Math.floor(rand() * 99_900)),
      units_in_stock: Math.floor(rand() * 500),
      notes: null,
    })
  }
  const orders: Row[] = []
  for (let i = 1; i <= SEED_SIZES.orders; i++) {
    orders.push({
      order_id: uuidFrom(rand),
      customer_id: 1 + Math.floor(rand() * SEED_SIZES.customers),
      total_amount: money(500 + Math.floor(rand() * 50_000)),
      status: STATUSES[Math.floor(rand() * STATUSES.length)] ?? 'pending',
      created_at: isoAt(day0 + Math.floor(rand() * 365 * 86_400_000)),
    })
  }
  return { customers, products, orders }
}

/**
 * Fills the demo tables on a first start: one set-based write per table in one transaction.
 * Does nothing when the warehouse already holds any change, so later starts keep what is there.
 * Returns the number of rows written.
 */
export async function seedDemo(warehouse: Warehouse, schema: Schema): Promise<number> {
  const tables = [...schema.tables.values()]
  const existing = await warehouse.pull({ tables, afterVersion: 0n, limit: 1 })
  if (existing.changes.length > 0) return 0
  const data = demoSeedRows()
  let n = 0
  await warehouse.write(async (tx) => {
    for (const [name, rows] of Object.entries(data)) {
      const table = schema.table(name)
      const writes: RowWrite[] = rows.map((values) => ({
        key: Object.fromEntries(table.primaryKey.map((k) => [k, values[k]])),
        row:
          table.conflict === 'merge'
            ? {
                values,
                hlc: SEED_HLC,
                deleted: false,
                columnHlcs: Object.fromEntries(table.columns.map((c) => [c.name, SEED_HLC])),
              }
            : { values, hlc: SEED_HLC, deleted: false },
        clientId: 'seed',
      }))
      await tx.writeRows(table, writes)
      n += writes.length
    }
  })
  return n
}
