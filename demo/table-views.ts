/**
 * One view per sync pattern of the guide, over the demo schema's tables. Column and ORDER BY names
 * are constants from here (never user input), so they may be written into the view's SQL.
 */
export interface TableView {
  readonly table: 'customers' | 'orders' | 'products' | 'metrics'
  readonly title: string
  /** The pattern and conflict strategy, as a badge. */
  readonly pattern: string
  /** What a visitor should try, in one or two sentences. */
  readonly blurb: string
  /** The list's columns (the form shows them all); a first, narrow column marks unsynced rows. */
  readonly listColumns: readonly string[]
  readonly orderBy: string
  /** How a new row gets its key: a random UUID, the next integer, or typed by the visitor. */
  readonly newKey: 'uuid' | 'next-int' | 'typed'
}

export const TABLE_VIEWS: readonly TableView[] = [
  {
    table: 'orders',
    title: 'Orders',
    pattern: 'write-back · last-write-wins',
    blurb:
      'Edits land in the local DuckDB cache and the durable outbox at once; the sync engine pushes them ' +
      'in batches. Go offline, edit, watch the pending count, go online.',
    listColumns: ['order_id', 'customer_id', 'total_amount', 'status'],
    orderBy: 'created_at DESC, order_id',
    newKey: 'uuid',
  },
  {
    table: 'customers',
    title: 'Customers',
    pattern: 'write-through · manual conflicts',
    blurb:
      'A save goes to the warehouse before it resolves and shows the stored row. An older write that ' +
      'disagrees with the stored row waits in the conflicts panel for a person to decide.',
    listColumns: ['customer_id', 'name', 'email'],
    orderBy: 'customer_id',
    newKey: 'next-int',
  },
  {
    table: 'products',
    title: 'Products',
    pattern: 'hybrid (every 5 min) · per-column merge',
    blurb:
      'Writes queue locally and go out on a 5-minute schedule (or "Sync now"). The warehouse merges per ' +
      'column: price keeps the max, stock the min, notes are appended.',
    listColumns: ['product_id', 'name', 'unit_price', 'units_in_stock', 'notes'],
    orderBy: 'product_id',
    newKey: 'next-int',
  },
  {
    table: 'metrics',
    title: 'Metrics',
    pattern: 'write-back · invalidate-on-write',
    blurb:
      'A write marks the cached table stale; the next read pulls it fresh from the warehouse first, so ' +
      'derived values never linger.',
    listColumns: ['metric_id', 'value', 'updated_at'],
    orderBy: 'metric_id',
    newKey: 'typed',
  },
]
