import 'fake-indexeddb/auto'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { startEdge, type TestEdge } from '../../test/support/edge.ts'
import { MemoryCache } from '../testing/memory-cache.ts'
import { createEngine, type Engine } from './engine.ts'

/**
 * Whatever two clients write, in whatever order they push, pull or lose push answers, once both
 * have synced, both caches hold exactly what the warehouse holds and nothing is left pending.
 */
const KEY_COUNT = 3
const STATUSES = ['pending', 'paid', 'shipped', 'cancelled'] as const

type Op =
  | { kind: 'put'; who: 0 | 1; key: number; status: (typeof STATUSES)[number]; tick: number }
  | { kind: 'delete'; who: 0 | 1; key: number; tick: number }
  | { kind: 'sync'; who: 0 | 1; lose: boolean }

const who = fc.constantFrom<0 | 1>(0, 1)
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('put' as const),
    who,
    key: fc.nat(KEY_COUNT - 1),
    status: fc.constantFrom(...STATUSES),
    tick: fc.nat(3),
  }),
  fc.record({ kind: fc.constant('delete' as const), who, key: fc.nat(KEY_COUNT - 1), tick: fc.nat(3) }),
  fc.record({ kind: fc.constant('sync' as const), who, lose: fc.boolean() }),
)

async function live(engine: Engine, keys: readonly string[]): Promise<Record<string, string>> {
  const rows = await engine.query('SELECT order_id, status FROM orders ORDER BY order_id')
  return Object.fromEntries(
    rows.filter((r) => keys.includes(String(r.order_id))).map((r) => [String(r.order_id), String(r.status)]),
  )
}

async function warehouseRows(edge: TestEdge, keys: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const k of keys) {
    const row = await edge.row('orders', { order_id: k })
    if (row !== null) out[k] = String(row.status)
  }
  return out
}

// One edge for every run (each run writes its own keys): opening a warehouse per run would dominate.
let edge: TestEdge
beforeAll(async () => {
  edge = await startEdge(demoSchema)
})
afterAll(async () => {
  await edge.close()
})

describe('engine convergence (property)', () => {
  it('two clients converge with the warehouse after any interleaving of writes, syncs and lost answers', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 14 }), async (ops) => {
        const keys = Array.from({ length: KEY_COUNT }, () => crypto.randomUUID())
        const clocks = [1_000_000, 1_000_000]
        const engines: Engine[] = []
        try {
          for (const i of [0, 1] as const) {
            engines.push(
              await createEngine({
                url: edge.url,
                schema: demoSchema,
                cache: new MemoryCache(),
                fetch: edge.fetch,
                now: () => clocks[i] ?? 0,
                dbName: `convergence-${crypto.randomUUID()}`,
                autoSync: false,
              }),
            )
          }
          const engine = (i: 0 | 1): Engine => engines[i] as Engine
          for (const o of ops) {
            if (o.kind === 'sync') {
              edge.fault = o.lose ? 'drop-response' : 'none'
              await engine(o.who)
                .sync()
                .catch((e: unknown) => {
                  if (!o.lose) throw e
                })
              edge.fault = 'none'
              continue
            }
            clocks[o.who] = (clocks[o.who] ?? 0) + o.tick
            const key = keys[o.key] ?? ''
            if (o.kind === 'put')
              await engine(o.who).put('orders', {
                order_id: key,
                customer_id: 1,
                total_amount: '1.00',
                status: o.status,
              })
            else await engine(o.who).delete('orders', { order_id: key })
          }
          await engine(0).sync()
          await engine(1).sync()
          await engine(0).sync()
          const truth = await warehouseRows(edge, keys)
          expect(await live(engine(0), keys)).toEqual(truth)
          expect(await live(engine(1), keys)).toEqual(truth)
          for (const e of engines) {
            expect(e.status().pending).toBe(0)
            expect(await e.query('SELECT * FROM orders WHERE _needs_sync')).toEqual([])
          }
        } finally {
          edge.fault = 'none'
          for (const e of engines) await e.close()
        }
      }),
      { numRuns: 25 },
    )
  }, 60_000)
})
