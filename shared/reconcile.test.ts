import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { demoSchema } from '../demo/schema.ts'
import { formatHlc } from './hlc.ts'
import { type IncomingWrite, mergeColumn, type Outcome, reconcile, type StoredRow } from './reconcile.ts'
import { type Column, defineSchema, type Table } from './schema.ts'

const h = (wall: number, node = 'a', counter = 0) => formatHlc({ wall, counter, node })
const orders = demoSchema.table('orders')
const products = demoSchema.table('products')
const customers = demoSchema.table('customers')
const OID = '3f2c1a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60'

function applied(o: Outcome): StoredRow {
  if (o.status !== 'applied') throw new Error(`expected applied, got ${o.status}`)
  return o.row
}

describe('reconcile: lww', () => {
  const first = applied(
    reconcile(orders, undefined, {
      op: 'upsert',
      key: { order_id: OID },
      values: { customer_id: 7, total_amount: '12.50' },
      hlc: h(10),
    }),
  )

  it('creates a row with nulls for unset columns', () => {
    expect(first).toEqual({
      values: { order_id: OID, customer_id: 7, total_amount: '12.50', status: null, created_at: null },
      hlc: h(10),
      deleted: false,
    })
  })

  it('keeps omitted columns on a partial upsert and refuses older writes', () => {
    const next = applied(
      reconcile(orders, first, {
        op: 'upsert',
        key: { order_id: OID },
        values: { status: 'paid' },
        hlc: h(11),
      }),
    )
    expect(next.values).toMatchObject({ customer_id: 7, total_amount: '12.50', status: 'paid' })
    expect(
      reconcile(orders, next, {
        op: 'upsert',
        key: { order_id: OID },
        values: { status: 'shipped' },
        hlc: h(10, 'z'),
      }).status,
    ).toBe('stale')
    expect(
      reconcile(orders, next, {
        op: 'upsert',
        key: { order_id: OID },
        values: { status: 'shipped' },
        hlc: h(11),
      }).status,
    ).toBe('stale')
  })

  it('checks required columns on the row as it would stand', () => {
    const o = reconcile(orders, undefined, {
      op: 'upsert',
      key: { order_id: OID },
      values: { customer_id: 7 },
      hlc: h(1),
    })
    expect(o).toMatchObject({ status: 'rejected', error: { code: 'invalid_value', field: 'total_amount' } })
    expect(
      reconcile(orders, first, {
        op: 'upsert',
        key: { order_id: OID },
        values: { total_amount: null },
        hlc: h(20),
      }).status,
    ).toBe('rejected')
  })

  it('leaves a tombstone for a never-seen key so a late older upsert loses', () => {
    const tomb = applied(reconcile(orders, undefined, { op: 'delete', key: { order_id: OID }, hlc: h(50) }))
    expect(tomb.deleted).toBe(true)
    expect(
      reconcile(orders, tomb, {
        op: 'upsert',
        key: { order_id: OID },
        values: { customer_id: 1, total_amount: '1.00' },
        hlc: h(40),
      }).status,
    ).toBe('stale')
    const back = applied(
      reconcile(orders, tomb, {
        op: 'upsert',
        key: { order_id: OID },
        values: { customer_id: 1, total_amount: '1.00' },
        hlc: h(60),
      }),
    )
    expect(back).toMatchObject({ deleted: false, values: { customer_id: 1, status: null } })
  })
})

describe('reconcile: manual', () => {
  const stored = applied(
    reconcile(customers, undefined, {
      op: 'upsert',
      key: { customer_id: 1 },
      values: { name: 'Ada', email: 'ada@x.io' },
      hlc: h(10),
    }),
  )
  it('records an older differing write as a conflict and keeps the row', () => {
    const o = reconcile(customers, stored, {
      op: 'upsert',
      key: { customer_id: 1 },
      values: { name: 'Bob' },
      hlc: h(5),
    })
    expect(o).toEqual({ status: 'conflict', stored })
  })
  it('treats an older identical write as stale and a newer one as applied', () => {
    expect(
      reconcile(customers, stored, {
        op: 'upsert',
        key: { customer_id: 1 },
        values: { name: 'Ada' },
        hlc: h(5),
      }).status,
    ).toBe('stale')
    expect(
      applied(
        reconcile(customers, stored, {
          op: 'upsert',
          key: { customer_id: 1 },
          values: { name: 'Bob' },
          hlc: h(15),
        }),
      ).values.name,
    ).toBe('Bob')
  })
  it('treats an older delete of a live row as a conflict', () => {
    expect(reconcile(customers, stored, { op: 'delete', key: { customer_id: 1 }, hlc: h(5) }).status).toBe(
      'conflict',
    )
  })
})

describe('reconcile: merge', () => {
  const base = applied(
    reconcile(products, undefined, {
      op: 'upsert',
      key: { product_id: 1 },
      values: { name: 'Pen', unit_price: '2.00', units_in_stock: 10, notes: 'new' },
      hlc: h(10),
    }),
  )
  it('applies max, min and concat whatever the stamps', () => {
    const older = applied(
      reconcile(products, base, {
        op: 'upsert',
        key: { product_id: 1 },
        values: { unit_price: '10.00', units_in_stock: 3, notes: 'restock', name: 'Old' },
        hlc: h(5),
      }),
    )
    expect(older.values).toEqual({
      product_id: 1,
      name: 'Pen',
      unit_price: '10.00',
      units_in_stock: 3,
      notes: 'new | restock',
    })
    expect(older.hlc).toBe(h(10))
  })
  it('compares decimals numerically, not as text', () => {
    const col = products.columnsByName.get('unit_price') as Column
    expect(mergeColumn(col, '9.50', '10.00', false)).toBe('10.00')
    expect(mergeColumn(col, '-1.50', '-1.25', false)).toBe('-1.25')
  })
})

// ---- properties -------------------------------------------------------------------------------

const propSchema = defineSchema({
  tables: {
    l: {
      primaryKey: ['id'],
      columns: { id: { type: 'integer' }, a: { type: 'integer' }, b: { type: 'text' } },
    },
    m: {
      primaryKey: ['id'],
      conflict: 'merge',
      columns: {
        id: { type: 'integer' },
        hi: { type: 'integer', merge: 'max' },
        lo: { type: 'decimal(6,2)', merge: 'min' },
        w: { type: 'text', merge: 'lww' },
      },
    },
  },
})

const writeArb = (table: Table) =>
  fc.record({
    id: fc.integer({ min: 1, max: 3 }),
    // merge rules converge for upserts; a delete on a merge table is row-level lww
    del: table.name === 'l' ? fc.boolean() : fc.constant(false),
    wall: fc.integer({ min: 1, max: 50 }),
    node: fc.constantFrom('a', 'b', 'c'),
    values:
      table.name === 'l'
        ? // lww is row-level: writes carry the whole row, as PROTOCOL.md's lww compares row stamps
          fc.record({ a: fc.integer({ min: -5, max: 5 }), b: fc.constantFrom('x', 'y', 'z') })
        : fc.record(
            {
              hi: fc.integer({ min: -5, max: 5 }),
              lo: fc.constantFrom('1.00', '2.50', '-3.00'),
              w: fc.constantFrom('p', 'q'),
            },
            { requiredKeys: [] },
          ),
  })

type W = { id: number; del: boolean; wall: number; node: string; values: Record<string, unknown> }

/** Each write gets a distinct stamp (as distinct clients' HLCs are). */
function toIncoming(ws: W[]): IncomingWrite[] {
  return ws.map((w, i) => ({
    op: w.del ? 'delete' : 'upsert',
    key: { id: w.id },
    ...(w.del ? {} : { values: w.values }),
    hlc: formatHlc({ wall: w.wall, counter: i, node: w.node }),
  }))
}

/** A warehouse in miniature: applies each delivered write, ignoring re-deliveries (the server's lastSeq does this). */
function run(table: Table, writes: IncomingWrite[], order: number[]): Map<number, StoredRow> {
  const rows = new Map<number, StoredRow>()
  const seen = new Set<number>()
  for (const i of order) {
    if (seen.has(i)) continue
    seen.add(i)
    const w = writes[i] as IncomingWrite
    const id = w.key.id as number
    const o = reconcile(table, rows.get(id), w)
    if (o.status === 'applied') rows.set(id, o.row)
  }
  return rows
}

function deliveries(n: number) {
  const base = Array.from({ length: n }, (_, i) => i)
  return fc.tuple(
    fc.shuffledSubarray(base, { minLength: n, maxLength: n }),
    fc.array(fc.integer({ min: 0, max: Math.max(0, n - 1) }), { maxLength: n }),
  )
}

const strip = (rows: Map<number, StoredRow>) =>
  [...rows.entries()].sort(([a], [b]) => a - b).map(([id, r]) => [id, r.deleted ? null : r.values, r.hlc])

describe('reconcile: properties', () => {
  for (const name of ['l', 'm'] as const) {
    const table = propSchema.table(name)
    it(`${name === 'l' ? 'lww' : 'merge (max/min/lww)'}: any order of delivery, with duplicates, reaches the same rows`, () => {
      fc.assert(
        fc.property(
          fc
            .array(writeArb(table), { minLength: 1, maxLength: 12 })
            .chain((ws) => fc.tuple(fc.constant(ws), deliveries(ws.length))),
          ([ws, [perm, dups]]) => {
            const writes = toIncoming(ws as W[])
            const inOrder = run(
              table,
              writes,
              writes.map((_, i) => i),
            )
            // duplicates are interleaved at random points of the permutation
            const order = [...perm]
            for (const [j, d] of dups.entries()) order.splice((j * 7) % (order.length + 1), 0, d)
            expect(strip(run(table, writes, order))).toEqual(strip(inOrder))
          },
        ),
        { numRuns: 400 },
      )
    })
  }

  const intCol = propSchema.table('m').columnsByName.get('hi') as Column
  const decCol = propSchema.table('m').columnsByName.get('lo') as Column
  const rules: Array<[string, Column, fc.Arbitrary<unknown>]> = [
    ['max', intCol, fc.option(fc.integer(), { nil: null })],
    ['min', decCol, fc.option(fc.constantFrom('0.00', '1.50', '-2.25', '10.00', '9.99'), { nil: null })],
  ]
  for (const [rule, col, arb] of rules) {
    it(`${rule} is commutative, associative and idempotent`, () => {
      fc.assert(
        fc.property(arb, arb, arb, (x, y, z) => {
          const f = (a: unknown, b: unknown) => mergeColumn(col, a, b, false)
          expect(f(x, y)).toEqual(f(y, x))
          expect(f(f(x, y), z)).toEqual(f(x, f(y, z)))
          expect(f(x, x)).toEqual(x)
        }),
      )
    })
  }

  it('lww (by stamp) is commutative, associative and idempotent', () => {
    const stamped = fc.record({ v: fc.integer(), s: fc.integer({ min: 0, max: 1000 }).map((n) => h(n, 'a')) })
    type S = { v: number; s: string }
    const lww = (a: S, b: S): S => (b.s > a.s ? b : a)
    fc.assert(
      fc.property(stamped, stamped, stamped, (x, y, z) => {
        fc.pre(x.s !== y.s && y.s !== z.s && x.s !== z.s)
        expect(lww(x, y)).toEqual(lww(y, x))
        expect(lww(lww(x, y), z)).toEqual(lww(x, lww(y, z)))
        expect(lww(x, x)).toEqual(x)
      }),
    )
  })
})
