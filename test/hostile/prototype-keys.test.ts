import 'fake-indexeddb/auto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTransport } from '../../client/sync/transport.ts'
import { createSyncApp } from '../../edge/http/app.ts'
import { openDuckDbWarehouse } from '../../edge/warehouse/duckdb/duckdb-warehouse.ts'
import type { Warehouse } from '../../edge/warehouse/warehouse.ts'
import { defineSchema } from '../../shared/schema.ts'
import { jsonInit, now, send, stamp } from './fixtures.ts'

/**
 * Column names that are also JavaScript's special property names. A schema may declare `constructor`
 * or `prototype` (they are valid identifiers), and a hostile body may name `__proto__`: the first two
 * must round-trip through push and pull, the last must be rejected as an unknown column, never dropped.
 */
const schema = defineSchema({
  tables: {
    things: {
      primaryKey: ['id'],
      columns: {
        id: { type: 'text' },
        prototype: { type: 'text' },
        constructor: { type: 'text' },
        body: { type: 'json' },
      },
    },
  },
})

let w: Warehouse
let app: ReturnType<typeof createSyncApp>
const errors: unknown[] = []

beforeAll(async () => {
  w = await openDuckDbWarehouse({ schema })
  await w.migrate()
  app = createSyncApp({ schema, warehouse: w, now, onError: (e) => errors.push(e) })
})
afterAll(async () => {
  await w.close()
  expect(errors).toEqual([])
})

describe('special property names as columns', () => {
  it('stores and pulls columns named prototype and constructor', async () => {
    const a = await send(
      app,
      '/sync/push',
      jsonInit(
        JSON.stringify({
          clientId: 'p',
          mutations: [
            {
              seq: 1,
              table: 'things',
              op: 'upsert',
              key: { id: 'a' },
              values: { prototype: 'P', constructor: 'C' },
              hlc: stamp(1, 'p'),
            },
          ],
        }),
      ),
    )
    expect(a.body).toEqual({ lastSeq: 1, results: [{ seq: 1, status: 'applied' }] })
    const pulled = await w.pull({ tables: [schema.table('things')], afterVersion: 0n, limit: 10 })
    expect(pulled.changes[0]?.row).toEqual({ id: 'a', prototype: 'P', constructor: 'C', body: null })
    // The client's transport validates pull answers with the same wire schemas: nothing is dropped.
    const transport = createTransport({
      url: 'http://edge.test/sync',
      fetch: async (input, init) => app.request(input instanceof Request ? input : String(input), init),
    })
    const page = await transport.pull({ tables: ['things'], cursor: undefined })
    expect(page.changes[0]?.row).toEqual({ id: 'a', prototype: 'P', constructor: 'C', body: null })
  })

  it('rejects an undeclared __proto__ column instead of dropping it and applying the rest', async () => {
    const raw = `{"clientId":"q","mutations":[{"seq":1,"table":"things","op":"upsert","key":{"id":"b"},"values":{"__proto__":{"admin":true},"prototype":"x"},"hlc":"${stamp(2, 'q')}"}]}`
    const a = await send(app, '/sync/push', jsonInit(raw))
    expect(a.body).toMatchObject({
      lastSeq: 1,
      results: [{ seq: 1, status: 'rejected', error: { code: 'unknown_column', field: '__proto__' } }],
    })
    const pulled = await w.pull({ tables: [schema.table('things')], afterVersion: 0n, limit: 10 })
    expect(pulled.changes.map((c) => c.key)).toEqual([{ id: 'a' }])
    expect(({} as Record<string, unknown>).admin).toBeUndefined()
  })

  it('rejects Infinity (raw 1e999) inside a json column instead of storing null', async () => {
    const raw = `{"clientId":"r","mutations":[{"seq":1,"table":"things","op":"upsert","key":{"id":"c"},"values":{"body":{"x":[1e999]}},"hlc":"${stamp(3, 'r')}"}]}`
    const a = await send(app, '/sync/push', jsonInit(raw))
    expect(a.body).toMatchObject({
      results: [{ seq: 1, status: 'rejected', error: { code: 'invalid_value', field: 'body' } }],
    })
  })
})
