import postgres from 'postgres'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { demoSchema } from '../../../demo/schema.ts'
import { must } from '../../../shared/errors.ts'
import { formatHlc } from '../../../shared/hlc.ts'
import type { Mutation, PushBody } from '../../../shared/protocol.ts'
import type { StoredRow } from '../../../shared/reconcile.ts'
import { defineSchema } from '../../../shared/schema.ts'
import { scratchSchemas } from '../../../test/setup/scratch-schemas.ts'
import { applyBatch } from '../../push/apply-batch.ts'
import { applyPushes } from '../../push/apply-pushes.ts'
import { checkPush } from '../../push/check-push.ts'
import { describeWarehouse } from '../../testing/warehouse-contract.ts'
import type { Warehouse } from '../warehouse.ts'
import { openPostgresWarehouse } from './postgres-warehouse.ts'

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

// A large push of fresh full-row upserts is written while it is checked (`streamOne`, chunk
// lowered here): on PostgreSQL it must answer and store what the same push checked first does.
describe('postgres streamed push', () => {
  it('answers and stores what applyPushes does: stale rows, duplicates, rejections, a key spelled twice', async () => {
    const schema = defineSchema({
      tables: {
        ...demoSchema.spec.tables,
        tags: { primaryKey: ['tag_id'], columns: { tag_id: { type: 'uuid' }, label: { type: 'text' } } },
      },
    })
    const open = async (name: string): Promise<Warehouse> => {
      const w = await openPostgresWarehouse({ schema, url, searchPath: scratch.next(name) })
      await w.migrate()
      return w
    }
    const streamed = await open('streamed')
    const checked = await open('checked')
    try {
      const orders = schema.table('orders')
      const tags = schema.table('tags')
      const T = 1_700_000_000_000
      const now = (): number => T + 60_000
      const orderId = (i: number): string => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`
      const tagId = (i: number): string => `00000000-0000-4000-a000-${String(i).padStart(12, '0')}`
      const order = (seq: number, i: number, wall: number, total = `${i}.50`): Mutation => ({
        seq,
        table: 'orders',
        op: 'upsert',
        key: { order_id: orderId(i) },
        values: {
          customer_id: i + 1,
          total_amount: total,
          status: 'paid',
          created_at: new Date(T).toISOString(),
        },
        hlc: formatHlc({ wall: T + wall, counter: seq, node: 'p' }),
      })
      const tag = (seq: number, i: number, upper: boolean): Mutation => ({
        seq,
        table: 'tags',
        op: 'upsert',
        key: { tag_id: upper ? tagId(i).toUpperCase() : tagId(i) },
        values: { label: `l${seq}` },
        hlc: formatHlc({ wall: T + 5, counter: seq, node: 'p' }),
      })
      // stored first on both: orders 2 and 5 with a newer stamp than the push's (so stale), and a lastSeq
      const history: PushBody = { clientId: 'p', mutations: [order(1, 2, 50), order(2, 5, 50)] }
      const pushes: PushBody[] = [
        // seq 2 is a duplicate, order 7's amount is rejected, the rest written while checked
        {
          clientId: 'p',
          mutations: [2, 3, 4, 5, 6, 7, 8, 9].map((i, n) =>
            order(n + 2, i === 3 ? 1 : i, 10, i === 7 ? 'lots' : `${i}.50`),
          ),
        },
        // one tag under two spellings of its uuid: the same key once checked, so not streamed
        { clientId: 'q', mutations: [tag(1, 1, false), tag(2, 1, true), tag(3, 2, false), tag(4, 3, false)] },
      ]
      const ctx = { now, streamChunk: 3 }
      for (const w of [streamed, checked]) await applyBatch(w, history, ctx)
      for (const body of pushes) {
        const a = await applyBatch(streamed, body, ctx)
        const b = must(
          (await checked.write((tx) => applyPushes(tx, [checkPush(schema, body, ctx)])))[0],
          'outcome',
        )
        expect({ response: a }).toEqual(b)
      }
      const snapshot = async (w: Warehouse): Promise<unknown> =>
        w.write(async (tx) => {
          const strip = (rows: Map<string, StoredRow>): unknown =>
            [...rows].sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, r]) => [k, r.values, r.hlc, r.deleted])
          return {
            orders: strip(
              await tx.readRows(
                orders,
                [...Array(10).keys()].map((i) => ({ order_id: orderId(i) })),
              ),
            ),
            tags: strip(
              await tx.readRows(
                tags,
                [1, 2, 3].map((i) => ({ tag_id: tagId(i) })),
              ),
            ),
            clients: [await tx.client('p'), await tx.client('q')],
          }
        })
      const mine = await snapshot(streamed)
      expect(mine).toEqual(await snapshot(checked))
      expect((mine as { orders: unknown[] }).orders.length).toBe(7)
    } finally {
      await streamed.close()
      await checked.close()
    }
  })
})
