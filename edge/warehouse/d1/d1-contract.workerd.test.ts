import type { D1Database } from '@cloudflare/workers-types'
import { afterAll, beforeAll } from 'vitest'
import { type D1Harness, startD1 } from '../../../test/workerd/miniflare.ts'
import { describeWarehouse } from '../../testing/warehouse-contract.ts'
import type { Warehouse } from '../warehouse.ts'
import { openD1Warehouse } from './d1-warehouse.ts'

/**
 * The shared warehouse contract against the D1 adapter on a real D1 inside workerd. Each `open` gets
 * its own database (the suite keeps several open at once); `reopen` keeps the database.
 */
const DATABASES = 8
let h: D1Harness
let next = 0
const databases = new WeakMap<Warehouse, D1Database>()

beforeAll(async () => {
  h = await startD1(DATABASES)
})
afterAll(async () => {
  await h.dispose()
})

describeWarehouse('d1', {
  async open(schema) {
    next += 1
    const db = await h.database(next)
    const w = openD1Warehouse({ db, schema })
    databases.set(w, db)
    return w
  },
  async reopen(previous, schema, sql = []) {
    const db = databases.get(previous)
    if (db === undefined) throw new Error('not opened by this target')
    await previous.close()
    for (const s of sql) await db.prepare(s).run()
    const w = openD1Warehouse({ db, schema })
    databases.set(w, db)
    return w
  },
})
