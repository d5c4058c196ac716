import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { demoSchema } from '../demo/schema.ts'
import { canonicalKey } from '../shared/digest.ts'
import { must } from '../shared/errors.ts'
import { formatHlc } from '../shared/hlc.ts'
import type { Mutation, PushBody } from '../shared/protocol.ts'
import type { StoredRow } from '../shared/reconcile.ts'
import { defineSchema, type Row } from '../shared/schema.ts'
import { applyBatch, applyPushes, checkPush, type PushContext, type PushOutcome } from './apply-batch.ts'
import { openDuckDbWarehouse } from './duckdb-warehouse.ts'
import type { Warehouse, WarehouseTx } from './warehouse.ts'

/** The demo's tables (lww, merge, manual with returns-data) and one scoped by tenant. */
const schema = defineSchema({
  tables: {
    ...demoSchema.spec.tables,
    notes: {
      primaryKey: ['org', 'note_id'],
      columns: { org: { type: 'text' }, note_id: { type: 'text' }, body: { type: 'text' } },
      tenantColumn: 'org',
    },
  },
})

/** A wall time well in the past, and the server clock the pushes are checked against. */
const T0 = 1_700_000_000_000
const NOW = T0 + 3_600_000

const ORDER_IDS = [
  '3f2c1a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60',
  '7c9e6679-7425-40de-944b-e07fc1f90ae7',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
]
const STATUSES = ['pending', 'paid', 'shipped', 'cancelled']
const TABLES = ['orders', 'customers', 'products', 'metrics', 'notes'] as const
type TableName = (typeof TABLES)[number]

/** Every key the generated pushes can name, per table. */
function keySpace(name: TableName): Row[] {
  const ks = [0, 1, 2]
  switch (name) {
    case 'orders':
      return ks.map((k) => ({ order_id: ORDER_IDS[k] }))
    case 'customers':
      return ks.map((k) => ({ customer_id: k + 1 }))
    case 'products':
      return ks.map((k) => ({ product_id: k + 1 }))
    case 'metrics':
      return ks.map((k) => ({ metric_id: `m${k}` }))
    case 'notes':
      return ['t1', 't2'].flatMap((org) => ks.map((k) => ({ org, note_id: `n${k}` })))
  }
}

interface WriteSpec {
  readonly table: TableName
  readonly k: number
  readonly org: string
  readonly op: 'upsert' | 'delete'
  readonly full: boolean
  readonly v: number
  readonly wall: number
  /** The seq's step from the client's previous one: 0 and negative ones make duplicates. */
  readonly step: number
  readonly tx: string | undefined
  /** An unknown table, or a stamp past the allowed clock drift. */
  readonly bad: 'table' | 'skew' | undefined
}

interface PushSpec {
  readonly client: string
  readonly subject: string | undefined
  readonly tenant: string | null | undefined
  readonly writes: readonly WriteSpec[]
}

const writeArb: fc.Arbitrary<WriteSpec> = fc.record({
  table: fc.constantFrom(...TABLES),
  k: fc.integer({ min: 0, max: 2 }),
  org: fc.constantFrom('t1', 't2'),
  op: fc.constantFrom('upsert', 'upsert', 'upsert', 'delete'),
  full: fc.boolean(),
  v: fc.integer({ min: 0, max: 9 }),
  wall: fc.integer({ min: 0, max: 12 }),
  step: fc.constantFrom(1, 1, 1, 1, 2, 0, -3),
  tx: fc.constantFrom(undefined, undefined, 'x', 'y'),
  bad: fc.constantFrom(undefined, undefined, undefined, undefined, undefined, undefined, 'table', 'skew'),
})

const pushArb: fc.Arbitrary<PushSpec> = fc.record({
  client: fc.constantFrom('a', 'b', 'c'),
  subject: fc.constantFrom(undefined, 'alice', 'alice', 'bob'),
  tenant: fc.constantFrom(undefined, undefined, 't1', 't2', null),
  writes: fc.array(writeArb, { maxLength: 6 }),
})

function valuesOf(w: WriteSpec): Row {
  const { v } = w
  const at = new Date(T0 + v * 1000).toISOString()
  switch (w.table) {
    case 'orders':
      return w.full
        ? { customer_id: v + 1, total_amount: `${v}.50`, status: STATUSES[v % 4], created_at: at }
        : v % 2 === 0
          ? { status: STATUSES[v % 4] }
          : { total_amount: `${v}.00` }
    case 'customers':
      return w.full ? { name: `c${v}`, email: `c${v}@example.com`, updated_at: at } : { name: `c${v}` }
    case 'products':
      return w.full
        ? { name: `p${v}`, unit_price: `${v}.25`, units_in_stock: v, notes: `n${v}` }
        : v % 2 === 0
          ? { notes: `n${v}` }
          : { unit_price: `${v}.00`, units_in_stock: 9 - v }
    case 'metrics':
      return w.full ? { value: v / 2, updated_at: at } : { value: v / 4 }
    case 'notes':
      return { body: `b${v}` }
  }
}

/** The pushes' bodies and contexts: seqs and stamps follow each client across every push in order. */
function bodiesOf(specs: readonly PushSpec[]): Array<{ body: PushBody; ctx: PushContext }> {
  const seqs = new Map<string, number>()
  const counters = new Map<string, number>()
  return specs.map((s) => {
    const mutations = s.writes.map((w): Mutation => {
      const seq = Math.max(1, (seqs.get(s.client) ?? 0) + w.step)
      seqs.set(s.client, seq)
      const counter = (counters.get(s.client) ?? 0) + 1
      counters.set(s.client, counter)
      const wall = w.bad === 'skew' ? NOW + 3_600_000 : T0 + w.wall
      const hlc = formatHlc({ wall, counter, node: s.client })
      const table = w.bad === 'table' ? 'nope' : w.table
      const key =
        w.table === 'notes' ? { org: w.org, note_id: `n${w.k}` } : must(keySpace(w.table)[w.k], 'key')
      const tx = w.tx === undefined ? {} : { tx: w.tx }
      return w.op === 'delete'
        ? { seq, table, op: 'delete', key, hlc, ...tx }
        : { seq, table, op: 'upsert', key, values: valuesOf(w), hlc, ...tx }
    })
    return {
      body: { clientId: s.client, mutations },
      ctx: { now: () => NOW, subject: s.subject, tenant: s.tenant },
    }
  })
}

/** A push's answer, or the code and message of its refusal. */
function settled(o: PushOutcome): unknown {
  if ('response' in o) return o.response
  const e = o.refused as { code?: unknown; message?: unknown }
  return { refused: e.code, message: e.message }
}

function strip(row: StoredRow): unknown {
  return { values: row.values, hlc: row.hlc, deleted: row.deleted, columnHlcs: row.columnHlcs }
}

/** What a store holds that a push can change, in a comparable form. */
async function snapshot(w: Warehouse, clients: readonly string[]): Promise<unknown> {
  const rows = await w.write(async (tx) => {
    const out: Record<string, unknown> = {}
    for (const name of TABLES) {
      const t = schema.table(name)
      const found = await tx.readRows(t, keySpace(name))
      for (const [k, row] of [...found].sort(([a], [b]) => (a < b ? -1 : 1))) out[`${name}:${k}`] = strip(row)
    }
    return out
  })
  const bookkeeping = await w.write(async (tx) => {
    // one statement at a time: a transaction's statements never run concurrently
    const out: unknown[] = []
    for (const c of clients) out.push(await tx.client(c))
    return out
  })
  const conflicts = (await w.conflicts()).map(({ table, key, stored, incoming, hlc }) => ({
    table,
    key,
    stored,
    incoming,
    hlc,
  }))
  const events = (await w.events(10_000))
    .reverse()
    .map(({ clientId, mutations, applied, stale, duplicate, conflict, rejected }) => ({
      clientId,
      mutations,
      applied,
      stale,
      duplicate,
      conflict,
      rejected,
    }))
  return { rows, bookkeeping, conflicts, events }
}

async function open(): Promise<Warehouse> {
  const w = await openDuckDbWarehouse({ schema })
  await w.migrate()
  return w
}

describe('applyPushes: a group of pushes', () => {
  it('answers and stores exactly what the same pushes applied one at a time do', async () => {
    const clients = ['a', 'b', 'c']
    await fc.assert(
      fc.asyncProperty(
        fc.array(pushArb, { maxLength: 3 }),
        fc.array(pushArb, { minLength: 2, maxLength: 6 }),
        async (history, group) => {
          const pushes = bodiesOf([...history, ...group])
          const one = await open()
          const all = await open()
          try {
            // the history, one push at a time on both stores (stored rows, owners, lastSeqs)
            for (const { body, ctx } of pushes.slice(0, history.length)) {
              for (const w of [one, all]) await applyBatch(w, body, ctx).catch(() => undefined)
            }
            const rest = pushes.slice(history.length)
            const alone: unknown[] = []
            for (const { body, ctx } of rest) {
              alone.push(
                await applyBatch(one, body, ctx).then(
                  (response) => settled({ response }),
                  (refused: unknown) => settled({ refused }),
                ),
              )
            }
            const together = await all.write((tx) =>
              applyPushes(
                tx,
                rest.map(({ body, ctx }) => checkPush(schema, body, ctx)),
              ),
            )
            expect(together.map(settled)).toEqual(alone)
            expect(await snapshot(all, clients)).toEqual(await snapshot(one, clients))
          } finally {
            await one.close()
            await all.close()
          }
        },
      ),
      { numRuns: 30 },
    )
    // two stores per run: generous on a busy machine (not a timing assertion)
  }, 120_000)

  it('runs each push of a group alone when the group transaction fails', async () => {
    const w = await open()
    let failNext = false
    let groups = 0
    // the same store, but the first group transaction fails at its first statement
    const failing: Warehouse = {
      ...w,
      write: (fn) =>
        w.write((tx) => {
          const wrapped: WarehouseTx = {
            ...tx,
            async preloadClients(ids) {
              groups += 1
              if (failNext) {
                failNext = false
                throw new Error('lost the connection')
              }
              await tx.preloadClients?.(ids)
            },
          }
          return fn(wrapped)
        }),
    }
    try {
      let release = (): void => {}
      const gate = new Promise<void>((r) => {
        release = r
      })
      // hold the write lock, so that the pushes below queue up behind the first one
      const held = w.write(() => gate)
      failNext = true
      const bodies = bodiesOf(
        ['a', 'b', 'c', 'a'].map((client, i) => ({
          client,
          subject: undefined,
          tenant: undefined,
          writes: [
            {
              table: 'orders',
              k: i % 3,
              org: 't1',
              op: 'upsert',
              full: true,
              v: i,
              wall: i,
              step: 1,
              tx: undefined,
              bad: undefined,
            },
          ],
        })),
      )
      const answers = bodies.map(({ body, ctx }) => applyBatch(failing, body, ctx))
      release()
      await held
      const results = await Promise.all(answers)
      expect(groups).toBeGreaterThan(0)
      expect(failNext).toBe(false)
      expect(results.map((r) => [r.lastSeq, r.results.map((x) => x.status)])).toEqual([
        [1, ['applied']],
        [1, ['applied']],
        [1, ['applied']],
        [2, ['applied']],
      ])
      const orders = schema.table('orders')
      const stored = await w.write((tx) => tx.readRows(orders, keySpace('orders')))
      expect(stored.get(canonicalKey(orders, { order_id: ORDER_IDS[0] }))?.values.customer_id).toBe(4)
      expect((await w.events(100)).length).toBe(4)
    } finally {
      await w.close()
    }
  })
})
