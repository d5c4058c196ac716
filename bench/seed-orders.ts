import { demoSchema } from '../demo/schema.ts'
import type { Warehouse } from '../edge/warehouse/warehouse.ts'
import { formatHlc } from '../shared/hlc.ts'
import { orderRows } from './data.ts'

/**
 * Writes `n` rows of the `orders` series `prefix` straight into a warehouse (untimed preparation
 * of the bench and its profiling scripts), in transactions of `batch` rows, all stamped at one
 * instant by the client `seed`.
 */
export async function seedOrders(
  warehouse: Warehouse,
  prefix: number,
  n: number,
  batch = 50_000,
): Promise<void> {
  const orders = demoSchema.table('orders')
  const hlc = formatHlc({ wall: Date.UTC(2026, 0, 1), counter: 0, node: 'seed' })
  for (let from = 0; from < n; from += batch) {
    const rows = orderRows(prefix, Math.min(batch, n - from), from)
    await warehouse.write((tx) =>
      tx.writeRows(
        orders,
        rows.map((r) => ({
          key: { order_id: r.order_id },
          row: { values: r, hlc, deleted: false },
          clientId: 'seed',
        })),
      ),
    )
  }
}
