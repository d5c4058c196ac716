import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { canonicalKey } from '../../shared/digest.ts'
import { formatHlc } from '../../shared/hlc.ts'
import type { Mutation, PushBody } from '../../shared/protocol.ts'
import type { StoredRow } from '../../shared/reconcile.ts'
import { defineSchema, type Row } from '../../shared/schema.ts'
import { openDuckDbWarehouse } from '../warehouse/duckdb/duckdb-warehouse.ts'
import type { Warehouse, WarehouseTx } from '../warehouse/warehouse.ts'
import { applyBatch } from './apply-batch.ts'
import { applyPushes, type PushOutcome } from './apply-pushes.ts'
import { checkPush, type PushContext } from './check-push.ts'

/** The demo's tables (lww, merge, manual with returns-data) and one scoped by tenant. */
const schema = defineSchema({
  tables: {
    ...demoSchema.spec.tables,
    notes: {
      primaryKey: ['org', 'note_id'],
      columns: { org: { type: 'text' }, note_id: { type: 'text' }, body: { type: 'text' } },
      tenantColumn: 'org',
    },
    tags: {
      primaryKey: ['tag_id'],
      columns: { tag_id: { type: 'uuid' }, label: { type: 'text' } },
    },
  },
})

/** A wall time well in the past, and the server clock the pushes are checked against. */
const T0 = 1_700_000_000_000
const NOW = T0 + 3_600_000

const STATUSES = ['pending', 'paid', 'shipped', 'cancelled']
const TABLES = ['orders', 'customers', 'products', 'metrics', 'notes', 'tags'] as const
type TableName = (typeof TABLES)[number]

/**
 * Key k of a table in run `ns`: every run has keys (and clients) of its own in the shared stores.
 * `upper` spells a tag's uuid in capitals: the same key once checked, another text in the body.
 */
function keyOf(name: TableName, ns: number, k: number, org = 't1', upper = false): Row {
  const n = ns * 10 + k
  switch (name) {
    case 'orders':
      return { order_id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}` }
    case 'customers':
      return { customer_id: n + 1 }
    case 'products':
      return { product_id: n + 1 }
    case 'metrics':
      return { metric_id: `m${n}` }
    case 'notes':
      return { org, note_id: `n${n}` }
    case 'tags': {
      const id = `00000000-0000-4000-a000-${String(n).padStart(12, '0')}`
      return { tag_id: upper ? id.toUpperCase() : id }
    }
  }
}

/** Every key the generated pushes of run `ns` can name in a table. */
function keySpace(name: TableName, ns: number): Row[] {
  return ['t1', 't2'].flatMap((org) =>
    name === 'notes' || org === 't1' ? [0, 1, 2, 3, 4].map((k) => keyOf(name, ns, k, org)) : [],
  )
}

const clientsOf = (ns: number): string[] => ['a', 'b', 'c'].map((c) => `r${ns}${c}`)

interface WriteSpec {
  readonly table: TableName
  readonly k: number
  readonly org: string
  /** A tag's key spelled in capitals. */
  readonly upper: boolean
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
  // customers twice: its manual strategy's conflicts need a stored row and an older write
  table: fc.constantFrom(...TABLES, 'customers'),
  k: fc.integer({ min: 0, max: 1 }),
  org: fc.constantFrom('t1', 't2'),
  upper: fc.constantFrom(false, false, false, true),
  op: fc.constantFrom('upsert', 'upsert', 'upsert', 'delete'),
  full: fc.boolean(),
  v: fc.integer({ min: 0, max: 9 }),
  wall: fc.integer({ min: 0, max: 12 }),
  step: fc.constantFrom(1, 1, 1, 1, 1, 1, 2, 0, -3),
  tx: fc.constantFrom(undefined, undefined, 'x', 'y'),
  bad: fc.constantFrom(...new Array<undefined>(10).fill(undefined), 'table', 'skew'),
})

const pushArb: fc.Arbitrary<PushSpec> = fc.record({
  client: fc.constantFrom('a', 'b', 'c'),
  subject: fc.constantFrom(undefined, 'alice', 'alice', 'alice', 'bob'),
  tenant: fc.constantFrom(undefined, undefined, undefined, 't1', 't2', null),
  writes: fc.array(writeArb, { maxLength: 6 }),
})

/**
 * Pushes `applyBatch` may stream (see `streamable`, with the chunk lowered to 2 below): full-row
 * upserts of lww tables, no tx groups, each key once as spelled. Some may not (a tx group, a
 * partial upsert), some still need `applyPushes`
 * (a tag's key in both spellings, a 403 from a tenant or owner check mid-stream), some meet
 * stored rows with newer stamps (stale by the store's guard), duplicates and rejected mutations.
 */
const streamPushArb: fc.Arbitrary<PushSpec> = fc
  .record({
    grouped: fc.constantFrom(false, false, false, true),
    client: fc.constantFrom('a', 'b', 'c'),
    subject: fc.constantFrom(undefined, 'alice', 'alice', 'alice', 'alice', 'bob'),
    tenant: fc.constantFrom(undefined, undefined, undefined, undefined, 't1', 't2', null),
    writes: fc.uniqueArray(
      fc.record({
        table: fc.constantFrom('orders', 'metrics', 'notes', 'tags', 'tags'),
        k: fc.integer({ min: 0, max: 2 }),
        org: fc.constantFrom('t1', 't1', 't2'),
        upper: fc.boolean(),
        op: fc.constant('upsert'),
        full: fc.constantFrom(...new Array<boolean>(11).fill(true), false),
        v: fc.integer({ min: 0, max: 9 }),
        wall: fc.integer({ min: 0, max: 12 }),
        step: fc.constantFrom(1, 1, 1, 1, 1, 1, 1, 1, 2, 0, -3),
        tx: fc.constant(undefined),
        bad: fc.constantFrom(...new Array<undefined>(15).fill(undefined), 'table', 'skew'),
      }),
      {
        minLength: 3,
        maxLength: 9,
        selector: (w) =>
          `${w.table}:${w.k}:${w.table === 'notes' ? w.org : ''}:${w.table === 'tags' && w.upper}`,
      },
    ),
  })
  // a quarter of them in one tx group (not streamed: a rejected member aborts the others)
  .map(({ grouped, ...p }) => (grouped ? { ...p, writes: p.writes.map((w) => ({ ...w, tx: 'x' })) } : p))

/** A push of either kind. */
const anyPushArb = fc.oneof(pushArb, streamPushArb)

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
    case 'tags':
      return { label: `l${v}` }
  }
}

/** The pushes' bodies and contexts: seqs and stamps follow each client across every push in order. */
function bodiesOf(specs: readonly PushSpec[], ns: number): Array<{ body: PushBody; ctx: PushContext }> {
  const seqs = new Map<string, number>()
  const counters = new Map<string, number>()
  return specs.map((s) => {
    const clientId = `r${ns}${s.client}`
    const mutations = s.writes.map((w): Mutation => {
      const seq = Math.max(1, (seqs.get(clientId) ?? 0) + w.step)
      seqs.set(clientId, seq)
      const counter = (counters.get(clientId) ?? 0) + 1
      counters.set(clientId, counter)
      const wall = w.bad === 'skew' ? NOW + 3_600_000 : T0 + w.wall
      const hlc = formatHlc({ wall, counter, node: clientId })
      const table = w.bad === 'table' ? 'nope' : w.table
      const key = keyOf(w.table, ns, w.k, w.org, w.upper)
      const tx = w.tx === undefined ? {} : { tx: w.tx }
      return w.op === 'delete'
        ? { seq, table, op: 'delete', key, hlc, ...tx }
        : { seq, table, op: 'upsert', key, values: valuesOf(w), hlc, ...tx }
    })
    return {
      body: { clientId, mutations },
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

/** What a store holds that the pushes of run `ns` can change, in a comparable form. */
async function snapshot(w: Warehouse, ns: number): Promise<unknown> {
  const clients = clientsOf(ns)
  const keys = new Set(
    TABLES.flatMap((name) => keySpace(name, ns).map((k) => `${name}:${canonicalKey(schema.table(name), k)}`)),
  )
  const rows = await w.write(async (tx) => {
    const out: Record<string, unknown> = {}
    for (const name of TABLES) {
      const t = schema.table(name)
      const found = await tx.readRows(t, keySpace(name, ns))
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
  const conflicts = (await w.conflicts())
    .filter((c) => keys.has(`${c.table}:${canonicalKey(schema.table(c.table), c.key)}`))
    .map(({ table, key, stored, incoming, hlc }) => ({
      table,
      key,
      stored,
      incoming,
      hlc,
    }))
  const events = (await w.events(100_000))
    .filter((e) => clients.includes(e.clientId))
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

/** Three pushes of one fresh order each, from three clients. */
function threeOrders(ns: number): Array<{ body: PushBody; ctx: PushContext }> {
  return bodiesOf(
    ['a', 'b', 'c'].map((client, i) => ({
      client,
      subject: undefined,
      tenant: undefined,
      writes: [
        {
          table: 'orders',
          k: i,
          org: 't1',
          upper: false,
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
    ns,
  )
}

describe('applyBatch: group commit', () => {
  /** How many write transactions three pushes take, queued behind a held write lock. */
  async function transactions(groupCommit: boolean | undefined, ns: number): Promise<number> {
    const w = await open()
    let writes = 0
    const counted: Warehouse = {
      ...w,
      write: (fn) => {
        writes += 1
        return w.write(fn)
      },
    }
    try {
      let release = (): void => {}
      const gate = new Promise<void>((r) => {
        release = r
      })
      const held = w.write(() => gate)
      const answers = threeOrders(ns).map(({ body, ctx }) =>
        applyBatch(counted, body, { ...ctx, groupCommit }),
      )
      release()
      await held
      const results = await Promise.all(answers)
      expect(results.map((r) => r.results.map((x) => x.status))).toEqual([
        ['applied'],
        ['applied'],
        ['applied'],
      ])
      return writes
    } finally {
      await w.close()
    }
  }

  it('commits the pushes that wait together by default, and each alone when groupCommit is false', async () => {
    // the first push starts at once; by default the two that queued behind it share one transaction
    expect(await transactions(undefined, 1)).toBe(2)
    expect(await transactions(false, 2)).toBe(3)
  })
})

describe('applyPushes: a group of pushes', () => {
  it('answers and stores exactly what the same pushes applied one at a time do', async () => {
    // two stores: pushes one at a time on `one`, the same pushes as one group on `all`. The
    // streamed path only calls `writeNewer`, one call at a time, so it runs on DuckDB as well:
    // `one` takes it as PostgreSQL does, for pushes of more mutations than the chunk.
    const duck = await open()
    const one: Warehouse = { ...duck, writesElsewhere: true }
    const all = await open()
    let runs = 0
    // pushes of more than two mutations may be streamed when applied alone (never in a group)
    const streamed = (ctx: PushContext): PushContext => ({ ...ctx, streamChunk: 2 })
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(anyPushArb, { maxLength: 3 }),
          fc.array(anyPushArb, { minLength: 2, maxLength: 6 }),
          async (history, group) => {
            const ns = ++runs
            const pushes = bodiesOf([...history, ...group], ns)
            // the history, one push at a time on both stores (stored rows, owners, lastSeqs)
            for (const { body, ctx } of pushes.slice(0, history.length)) {
              for (const w of [one, all]) await applyBatch(w, body, streamed(ctx)).catch(() => undefined)
            }
            const rest = pushes.slice(history.length)
            const alone: unknown[] = []
            for (const { body, ctx } of rest) {
              alone.push(
                await applyBatch(one, body, streamed(ctx)).then(
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
            expect(await snapshot(all, ns)).toEqual(await snapshot(one, ns))
          },
        ),
        { numRuns: 40 },
      )
    } finally {
      await duck.close()
      await all.close()
    }
    // many pushes against two stores: generous on a busy machine (not a timing assertion)
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
      // four pushes of one fresh order each (the fourth a second push of client a)
      const bodies = bodiesOf(
        ['a', 'b', 'c', 'a'].map((client, i) => ({
          client,
          subject: undefined,
          tenant: undefined,
          writes: [
            {
              table: 'orders',
              k: i % 2,
              org: 't1',
              upper: false,
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
        0,
      )
      let release = (): void => {}
      const gate = new Promise<void>((r) => {
        release = r
      })
      // hold the write lock, so that the pushes below queue up behind the first one
      const held = w.write(() => gate)
      failNext = true
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
      const stored = await w.write((tx) => tx.readRows(orders, keySpace('orders', 0)))
      // written by the first push (stamp 0), then by the third (stamp 2)
      expect(stored.get(canonicalKey(orders, keyOf('orders', 0, 0)))?.values.customer_id).toBe(3)
      expect((await w.events(100)).length).toBe(4)
    } finally {
      await w.close()
    }
  })
})
