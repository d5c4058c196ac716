import type { Row } from '../shared/schema.ts'

/**
 * Deterministic demo `orders` rows for every store in the bench (edge, Eddy, Dexie, PGlite, RxDB),
 * so each side loads and aggregates exactly the same data. Runs in Node and in the browser.
 *
 * Keys are `<prefix 8 hex>-0000-4000-8000-<index 12 hex>`: valid uuids, unique per (prefix, index),
 * so each repetition of a write bench can use rows no store has seen.
 */
export const STATUSES = ['pending', 'paid', 'shipped', 'cancelled'] as const

export interface OrderRow extends Row {
  order_id: string
  customer_id: number
  total_amount: string
  status: (typeof STATUSES)[number]
  created_at: string
}

const DAY0 = Date.UTC(2025, 0, 1)

export function orderId(prefix: number, index: number): string {
  return `${(prefix >>> 0).toString(16).padStart(8, '0')}-0000-4000-8000-${index.toString(16).padStart(12, '0')}`
}

/** Row `index` of series `prefix`: a cheap integer hash spreads the values. */
export function orderRow(prefix: number, index: number): OrderRow {
  let h = Math.imul(index ^ 0x9e3779b9, 0x85ebca6b) ^ prefix
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  h ^= h >>> 16
  const u = h >>> 0
  const cents = 500 + (u % 50_000)
  return {
    order_id: orderId(prefix, index),
    customer_id: 1 + (u % 1000),
    total_amount: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`,
    status: STATUSES[(u >>> 20) % 4] ?? 'pending',
    created_at: new Date(DAY0 + (u % 31_536_000) * 1000).toISOString(),
  }
}

export function orderRows(prefix: number, count: number, from = 0): OrderRow[] {
  const out: OrderRow[] = new Array(count)
  for (let i = 0; i < count; i++) out[i] = orderRow(prefix, from + i)
  return out
}

/** The analytics query every SQL store runs (total_amount is text in the demo schema). */
export const GROUP_BY_SQL =
  'SELECT status, count(*) AS n, sum(CAST(total_amount AS DECIMAL(18,2))) AS total FROM orders GROUP BY status ORDER BY status'
