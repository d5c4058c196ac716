import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { isEddyError } from '../../shared/errors.ts'
import { openDuckDbWarehouse } from '../warehouse/duckdb/duckdb-warehouse.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'
import { appOptions, mapSocketFailures } from './worker.ts'

/**
 * The Workers runtime wraps a PostgreSQL warehouse so workerd's socket failures answer 503. The
 * wrapper must keep every member: a dropped optional one (`pullColumns`, `writesElsewhere`) silently
 * sends the Arrow pull and the push down their slower paths.
 */
describe('mapSocketFailures', () => {
  let warehouse: Warehouse
  beforeAll(async () => {
    warehouse = await openDuckDbWarehouse({ schema: demoSchema })
    await warehouse.migrate()
  })
  afterAll(async () => {
    await warehouse.close()
  })

  it('keeps every member of the warehouse, optional ones included', () => {
    const inner: Warehouse = { ...warehouse, writesElsewhere: true }
    const mapped = mapSocketFailures(inner)
    expect(Object.keys(mapped).sort()).toEqual(Object.keys(inner).sort())
    expect(mapped.writesElsewhere).toBe(true)
    expect(typeof mapped.pullColumns).toBe('function')
    expect(mapped.schema).toBe(warehouse.schema)
  })

  it('answers through the wrapped warehouse', async () => {
    const mapped = mapSocketFailures(warehouse)
    const table = demoSchema.table('orders')
    const page = await mapped.pullColumns?.({ table, afterVersion: 0n, limit: 10 })
    expect(page?.hasMore).toBe(false)
    await expect(mapped.health()).resolves.toBeUndefined()
  })

  it("turns workerd's socket failures into warehouse_unavailable, and leaves other errors alone", async () => {
    const failing: Warehouse = {
      ...warehouse,
      health: () => Promise.reject(new Error('Network connection lost.')),
      events: () => Promise.reject(new TypeError('a bug')),
    }
    const mapped = mapSocketFailures(failing)
    const lost = await mapped.health().catch((e: unknown) => e)
    expect(isEddyError(lost, 'warehouse_unavailable')).toBe(true)
    await expect(mapped.events(1)).rejects.toThrow('a bug')
  })
})

describe('appOptions', () => {
  it('turns group commit off: Workers do not let one request finish the push of another', () => {
    expect(appOptions({ schema: demoSchema }, {}).push?.groupCommit).toBe(false)
    const push = { groupCommit: true, streamChunk: 5 }
    expect(appOptions({ schema: demoSchema, push }, {}).push).toEqual({ groupCommit: false, streamChunk: 5 })
  })
})
