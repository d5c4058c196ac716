import postgres from 'postgres'
import { afterAll, inject } from 'vitest'
import { openPostgresWarehouse } from '../../edge/postgres-warehouse.ts'
import type { Warehouse } from '../../edge/warehouse.ts'
import { describeWarehouse } from '../../edge/warehouse-contract.ts'

const url = inject('pgUrl')
const schemas = new WeakMap<Warehouse, string>()
// Each store is its own PostgreSQL schema, so a run against EDDY_PG_URL never touches other data.
const run = `c${Date.now().toString(36)}`
let n = 0

// Leave a server given by EDDY_PG_URL as we found it.
afterAll(async () => {
  const sql = postgres(url, { onnotice: () => {} })
  try {
    for (let i = 1; i <= n; i++) await sql.unsafe(`DROP SCHEMA IF EXISTS "eddy_${run}_${i}" CASCADE`)
  } finally {
    await sql.end()
  }
})

describeWarehouse('postgres', {
  async open(schema) {
    n += 1
    const searchPath = `eddy_${run}_${n}`
    const w = await openPostgresWarehouse({ schema, url, searchPath })
    schemas.set(w, searchPath)
    return w
  },
  async reopen(previous, schema) {
    const searchPath = schemas.get(previous)
    if (searchPath === undefined) throw new Error('not opened by this target')
    await previous.close()
    const w = await openPostgresWarehouse({ schema, url, searchPath })
    schemas.set(w, searchPath)
    return w
  },
})
