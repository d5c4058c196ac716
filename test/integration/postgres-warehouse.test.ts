import postgres from 'postgres'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { openPostgresWarehouse } from '../../edge/postgres-warehouse.ts'
import type { Warehouse } from '../../edge/warehouse.ts'
import { describeWarehouse } from '../../edge/warehouse-contract.ts'
import { must } from '../../shared/errors.ts'
import { formatHlc } from '../../shared/hlc.ts'
import { scratchSchemas } from '../setup/scratch-schemas.ts'

const url = inject('pgUrl')
const schemas = new WeakMap<Warehouse, string>()
const scratch = scratchSchemas(url, 'c')
afterAll(() => scratch.dropAll())

describeWarehouse('postgres', {
  async open(schema) {
    const searchPath = scratch.next()
    const w = await openPostgresWarehouse({ schema, url, searchPath })
    schemas.set(w, searchPath)
    return w
  },
  async reopen(previous, schema, statements = []) {
    const searchPath = schemas.get(previous)
    if (searchPath === undefined) throw new Error('not opened by this target')
    await previous.close()
    if (statements.length > 0) {
      const sql = postgres(url, { onnotice: () => {} })
      try {
        await sql.begin(async (tx) => {
          await tx.unsafe(`SET LOCAL search_path TO "${searchPath}"`)
          for (const s of statements) await tx.unsafe(s)
        })
      } finally {
        await sql.end()
      }
    }
    const w = await openPostgresWarehouse({ schema, url, searchPath })
    schemas.set(w, searchPath)
    return w
  },
})

// text[] parameters are serialised by the warehouse itself (postgres.js's array-type lookup is
// off): every character a key or value can hold must survive the array literal, and only a real
// null is NULL.
describe('postgres text[] parameters', () => {
  it('round-trips quotes, backslashes, braces, commas, "NULL", empty and multi-line text', async () => {
    const searchPath = scratch.next('arrays')
    const w = await openPostgresWarehouse({ schema: demoSchema, url, searchPath })
    try {
      await w.migrate()
      const metrics = must(demoSchema.tables.get('metrics'), 'metrics')
      const ids = ['a"b', 'back\\slash', '{brace}', 'x,y', 'NULL', '', 'line\nbreak', "it's", '\\"', 'Zoë 🌊']
      const hlc = formatHlc({ wall: Date.now(), counter: 0, node: 'arrays' })
      await w.write((tx) =>
        tx.writeRows(
          metrics,
          ids.map((id, i) => ({
            key: { metric_id: id },
            row: { values: { metric_id: id, value: i, updated_at: null }, hlc, deleted: false },
            clientId: 'arrays',
          })),
        ),
      )
      const found = await w.write((tx) =>
        tx.readRows(metrics, [...ids.map((id) => ({ metric_id: id })), { metric_id: 'absent' }]),
      )
      expect(found.size).toBe(ids.length)
      const back = new Map([...found.values()].map((r) => [r.values.metric_id, r.values]))
      ids.forEach((id, i) => {
        expect(back.get(id)).toEqual({ metric_id: id, value: i, updated_at: null })
      })
    } finally {
      await w.close()
      const sql = postgres(url, { onnotice: () => {} })
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${searchPath}" CASCADE`).finally(() => sql.end())
    }
  })
})
