import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { canonicalKey } from '../../shared/digest.ts'
import { must } from '../../shared/errors.ts'
import { formatHlc } from '../../shared/hlc.ts'
import type { Mutation, PushResponse } from '../../shared/protocol.ts'
import { reconcile, type StoredRow } from '../../shared/reconcile.ts'
import { defineSchema, type Row, type Schema, type Table } from '../../shared/schema.ts'
import { validateWrite } from '../../shared/validators.ts'
import { createSyncApp } from '../http/app.ts'
import { applyBatch } from '../push/apply-batch.ts'
import type { NewEvent, PulledChange, RowWrite, Warehouse } from '../warehouse/warehouse.ts'

/**
 * The one suite every warehouse adapter passes (DuckDB, PostgreSQL, D1):
 * `describeWarehouse('duckdb', { open, reopen })`. It drives the adapter through the real push
 * algorithm (`applyBatch`) and checks the stored rows against a pure model built from `reconcile`.
 */
export interface ContractTarget {
  /** A fresh, empty store with this schema (the suite calls `migrate`). */
  open(schema: Schema): Promise<Warehouse>
  /**
   * Closes `previous` and opens the same store under `schema` (a grown schema), not yet migrated.
   * `sql` runs on the store directly in between, as an earlier version of Eddy would have left it.
   */
  reopen(previous: Warehouse, schema: Schema, sql?: readonly string[]): Promise<Warehouse>
}

/** The contract's schema: one table per strategy, every column type, a required column, a tenant column. */
export const contractSchema = defineSchema({
  tables: {
    items: {
      primaryKey: ['id'],
      columns: {
        id: { type: 'integer' },
        name: { type: 'text' },
        amount: { type: 'decimal(10,2)' },
        flag: { type: 'boolean' },
        at: { type: 'timestamp' },
        day: { type: 'date' },
        big: { type: 'bigint' },
        ratio: { type: 'double' },
        meta: { type: 'json' },
        ref: { type: 'uuid' },
      },
      conflict: 'lww',
    },
    stock: {
      primaryKey: ['id'],
      columns: {
        id: { type: 'integer' },
        hi: { type: 'integer', merge: 'max' },
        lo: { type: 'decimal(8,2)', merge: 'min' },
        note: { type: 'text', merge: 'concat' },
        label: { type: 'text' },
      },
      conflict: 'merge',
    },
    people: {
      primaryKey: ['id'],
      columns: {
        id: { type: 'integer' },
        name: { type: 'text' },
        qty: { type: 'integer', required: true },
      },
      conflict: 'manual',
      returnsData: true,
    },
    docs: {
      primaryKey: ['org', 'doc'],
      columns: {
        org: { type: 'text' },
        doc: { type: 'text' },
        body: { type: 'text' },
      },
      tenantColumn: 'org',
    },
  },
})

/** A wall time well in the past, so no stamp trips the clock-drift check. */
const T0 = 1_700_000_000_000

function stamp(offsetMs: number, node: string, counter = 0): string {
  return formatHlc({ wall: T0 + offsetMs, counter, node })
}

function table(schema: Schema, name: string): Table {
  return schema.table(name)
}

async function push(w: Warehouse, clientId: string, mutations: Mutation[]): Promise<PushResponse> {
  return applyBatch(w, { clientId, mutations }, { now: Date.now })
}

async function readAll(w: Warehouse, t: Table, keys: Row[]): Promise<Map<string, StoredRow>> {
  return w.write((tx) => tx.readRows(t, keys))
}

/** Follows pull pages until `hasMore` is false. */
async function pullAll(
  w: Warehouse,
  tables: readonly Table[],
  after = 0n,
  limit = 1000,
  tenant?: string,
): Promise<{ changes: PulledChange[]; last: bigint }> {
  const changes: PulledChange[] = []
  let cursor = after
  for (;;) {
    const page = await w.pull({ tables, afterVersion: cursor, limit, tenant })
    changes.push(...page.changes)
    cursor = page.changes.at(-1)?.version ?? cursor
    if (!page.hasMore) return { changes, last: cursor }
  }
}

/** The model: the same batches folded with `reconcile` over an in-memory map. */
class Model {
  readonly rows = new Map<string, StoredRow>()
  readonly lastSeq = new Map<string, number>()
  constructor(readonly schema: Schema) {}
  apply(clientId: string, mutations: readonly Mutation[]): string[] {
    let high = this.lastSeq.get(clientId) ?? 0
    const statuses: string[] = []
    for (const m of [...mutations].sort((a, b) => a.seq - b.seq)) {
      if (m.seq <= high) {
        statuses.push('duplicate')
        continue
      }
      high = m.seq
      const t = this.schema.table(m.table)
      const checked = validateWrite(t, m.op, m.key, m.values)
      if (checked.errors.length > 0) {
        statuses.push('rejected')
        continue
      }
      const id = `${t.name}:${canonicalKey(t, checked.key)}`
      const out = reconcile(
        t,
        this.rows.get(id),
        m.op === 'delete'
          ? { op: 'delete', key: checked.key, hlc: m.hlc }
          : { op: 'upsert', key: checked.key, values: checked.values, hlc: m.hlc },
      )
      if (out.status === 'applied') this.rows.set(id, out.row)
      statuses.push(out.status)
    }
    this.lastSeq.set(clientId, high)
    return statuses
  }
}

function strip(row: StoredRow | undefined): unknown {
  if (row === undefined) return undefined
  return row.columnHlcs === undefined
    ? { values: row.values, hlc: row.hlc, deleted: row.deleted }
    : { values: row.values, hlc: row.hlc, deleted: row.deleted, columnHlcs: row.columnHlcs }
}

export function describeWarehouse(name: string, target: ContractTarget): void {
  describe(`warehouse contract: ${name}`, () => {
    let w: Warehouse
    const schema = contractSchema
    const items = table(schema, 'items')
    const stock = table(schema, 'stock')
    const people = table(schema, 'people')
    const docs = table(schema, 'docs')
    let nextId = 1
    /** Fresh keys for every test, so tests share one store without seeing each other. */
    const ids = (n: number): number[] => Array.from({ length: n }, () => nextId++)
    let nextClient = 0
    const client = (): string => `c${nextClient++}`

    beforeAll(async () => {
      w = await target.open(schema)
      await w.migrate()
    })
    afterAll(async () => {
      await w.close()
    })

    it('reports its kind and health', async () => {
      expect(['duckdb', 'postgres', 'd1']).toContain(w.kind)
      await expect(w.health()).resolves.toBeUndefined()
    })

    it('stores every column type and reads it back in canonical form', async () => {
      const [id = 0] = ids(1)
      const values = {
        name: 'Zoë "quoted" \' ; DROP TABLE items; --',
        amount: '-12.50',
        flag: true,
        at: '2024-02-29T23:59:59.123Z',
        day: '2024-02-29',
        big: '9007199254740993',
        ratio: 0.1,
        meta: { zeta: [1, 'two', null], a: { c: true } },
        ref: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
      }
      const c = client()
      const r = await push(w, c, [
        { seq: 1, table: 'items', op: 'upsert', key: { id }, values, hlc: stamp(1, c) },
      ])
      expect(r.results[0]?.status).toBe('applied')
      const stored = (await readAll(w, items, [{ id }])).get(canonicalKey(items, { id }))
      expect(stored?.values).toEqual({ id, ...values })
      // JSON reads back as written (key order included), so an unchanged value compares as unchanged
      expect(JSON.stringify(stored?.values.meta)).toBe(JSON.stringify(values.meta))
      expect(stored?.hlc).toBe(stamp(1, c))
      expect(stored?.deleted).toBe(false)
    })

    /**
     * Text a staging format could lose or confuse: separator and NULL-marker characters (alone, inside,
     * at either end), empty vs NULL, NULL-like words, quotes, unicode (emoji and ZWJ sequences,
     * combining marks, non-BMP, right-to-left) and a long value.
     */
    const LONG = 'é𝄞x'.repeat(25_000)
    const awkward: ReadonlyArray<string | null> = [
      '',
      null,
      '\x1e',
      '\x1f',
      'a\x1fb',
      '\x1f\x1e\x1f',
      'ends\x1e',
      '\x1estarts',
      '\x1e\x1e',
      'NULL',
      '\\N',
      `"',;\t\n\r`,
      'Zoë 😀 👩‍👩‍👧 𝄞',
      'e\u0301 n\u0303 a\u030a',
      'שלום عربي',
      LONG,
    ]
    /** Those that a packed form can carry without escaping (no separator, not a bare marker). */
    const packable = awkward.filter((v) => v === null || (v !== '\x1e' && !v.includes('\x1f')))

    /** Writes fresh `docs` rows in one set, reads them back in one set, and compares every row. */
    async function roundTrip(
      docKeys: readonly string[],
      bodies: ReadonlyArray<string | null>,
    ): Promise<void> {
      const org = client()
      const writes = docKeys.map((doc, i) => ({
        key: { org, doc },
        row: { values: { org, doc, body: bodies[i] ?? null }, hlc: stamp(1, org), deleted: false },
        clientId: org,
      }))
      await w.write((tx) => tx.writeRows(docs, writes))
      const stored = await readAll(
        w,
        docs,
        writes.map((x) => x.key),
      )
      expect(stored.size).toBe(writes.length)
      const got = writes.map((x) => stored.get(canonicalKey(docs, x.key))?.values)
      // one comparison for the whole set (a failure prints the rows that differ)
      expect(got).toEqual(writes.map((x) => x.row.values))
    }
    const short = packable.filter((v) => v !== LONG)
    const numbered = (n: number): string[] => Array.from({ length: n }, (_, i) => `k${i}`)
    const cycle = <T>(list: readonly T[], n: number): T[] =>
      Array.from({ length: n }, (_, i) => list[i % list.length] as T)

    it('stores text exactly in a small set: separators, markers, empty vs null, unicode, long values', async () => {
      // awkward keys too (the long value is no key: PostgreSQL caps an index entry's size)
      const keys = awkward.filter((v): v is string => v !== null && v !== LONG)
      await roundTrip(keys, keys)
      await roundTrip(numbered(awkward.length), awkward)
    })

    it('stores text exactly in large sets, with and without values that need escaping', async () => {
      // large enough for a store's bulk staging (DuckDB packs sets above 128 values)
      const n = 400
      // each value once, then the short ones again
      const bodies = [...packable, ...cycle(short, n - packable.length)]
      await roundTrip(numbered(n), bodies)
      // one value that is a bare marker, one holding a separator, then a key holding one
      await roundTrip(numbered(n), ['\x1e', ...bodies.slice(1)])
      await roundTrip(numbered(n), [...bodies.slice(0, -1), 'a\x1fb'])
      await roundTrip(['k\x1fk', '\x1e', ...numbered(n - 2)], bodies)
      // text keys that are empty or marker-like, in a set large enough to be packed
      const keys = short.filter((v): v is string => v !== null)
      await roundTrip([...keys, ...numbered(n - keys.length)], bodies)
    })

    it('stores 10,001 rows of one set exactly', async () => {
      const n = 10_001
      await roundTrip(numbered(n), [LONG, ...cycle(short, n - 1)])
    }, 60_000)

    it('upserts sets of any size over stored rows and tombstones, with the hlc guard', async () => {
      for (const n of [6, 300]) {
        const keys = ids(n).map((id) => ({ id }))
        const cl = client()
        const row = (i: number, wall: number, deleted = false): RowWrite => {
          const key = must(keys[i], 'key')
          return {
            key,
            row: { values: { ...key, name: `${cl}-${i}-${wall}` }, hlc: stamp(wall, cl, i), deleted },
            clientId: cl,
          }
        }
        // the first third live, the second third tombstones, the rest never written
        const third = n / 3
        const seeded = Array.from({ length: 2 * third }, (_, i) => row(i, 10, i >= third))
        await w.write((tx) => tx.writeRows(items, seeded))
        // every other row older than what is stored
        const wallOf = (i: number): number => (i % 2 === 0 ? 20 : 5)
        const next = keys.map((_, i) => row(i, wallOf(i)))
        const expected = keys.map((_, i) =>
          i < 2 * third ? (wallOf(i) > 10 ? next[i] : seeded[i]) : next[i],
        )
        const written = await w.write(async (tx) => {
          if (tx.writeNewer === undefined) {
            // without the store's guard a caller writes only the rows that win
            await tx.writeRows(
              items,
              next.filter((_, i) => expected[i] === next[i]),
            )
            return undefined
          }
          return tx.writeNewer(items, next)
        })
        if (written !== undefined) expect(written).toEqual(expected.map((e, i) => e === next[i]))
        const stored = await readAll(w, items, keys)
        const got = keys.map((key) => {
          const s = stored.get(canonicalKey(items, key))
          return s === undefined ? undefined : { name: s.values.name, hlc: s.hlc, deleted: s.deleted }
        })
        expect(got).toEqual(
          expected.map((e) => ({ name: e?.row.values.name, hlc: e?.row.hlc, deleted: e?.row.deleted })),
        )
        // a set of keys none of which is stored: every row written and reported
        const fresh = ids(n).map((id) => ({ id }))
        const all = await w.write(async (tx) => {
          const rows = fresh.map((key) => ({
            key,
            row: { values: { ...key, name: 'new' }, hlc: stamp(1, cl), deleted: false },
            clientId: cl,
          }))
          if (tx.writeNewer === undefined) {
            await tx.writeRows(items, rows)
            return rows.map(() => true)
          }
          return tx.writeNewer(items, rows)
        })
        expect(all).toEqual(fresh.map(() => true))
        expect((await readAll(w, items, fresh)).size).toBe(n)
      }
    })

    it('matches the pure reconcile model for random batches on every strategy', async () => {
      const tables = ['items', 'stock', 'people'] as const
      const write = fc.record({
        table: fc.constantFrom(...tables),
        k: fc.integer({ min: 0, max: 3 }),
        op: fc.constantFrom('upsert', 'upsert', 'upsert', 'delete'),
        wall: fc.integer({ min: 0, max: 20 }),
        hi: fc.option(fc.integer({ min: -5, max: 5 }), { nil: undefined }),
        lo: fc.option(fc.constantFrom('1.00', '2.50', '-3.00'), { nil: undefined }),
        text: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: undefined }),
        qty: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
      })
      const batch = fc.record({
        client: fc.constantFrom('x', 'y'),
        writes: fc.array(write, { minLength: 1, maxLength: 8 }),
        resend: fc.boolean(),
      })
      await fc.assert(
        fc.asyncProperty(fc.array(batch, { minLength: 1, maxLength: 5 }), async (batches) => {
          const base = ids(4)
          const prefix = client()
          const model = new Model(schema)
          const seqs = new Map<string, number>()
          const counters = new Map<string, number>()
          for (const b of batches) {
            const clientId = `${prefix}${b.client}`
            const start = seqs.get(clientId) ?? 0
            const mutations: Mutation[] = b.writes.map((x, i) => {
              const id = base[x.k] ?? 0
              const n = (counters.get(clientId) ?? 0) + 1
              counters.set(clientId, n)
              const hlc = stamp(x.wall, clientId, n)
              const values: Row = {}
              if (x.table === 'items' && x.text !== undefined) values.name = x.text
              if (x.table === 'stock') {
                if (x.hi !== undefined) values.hi = x.hi
                if (x.lo !== undefined) values.lo = x.lo
                if (x.text !== undefined) values.note = x.text
                if (x.text !== undefined) values.label = `l${x.text}`
              }
              if (x.table === 'people') {
                if (x.text !== undefined) values.name = x.text
                if (x.qty !== undefined) values.qty = x.qty
              }
              return x.op === 'delete'
                ? { seq: start + i + 1, table: x.table, op: 'delete', key: { id }, hlc }
                : { seq: start + i + 1, table: x.table, op: 'upsert', key: { id }, values, hlc }
            })
            seqs.set(clientId, start + mutations.length)
            const expected = model.apply(clientId, mutations)
            const got = await push(w, clientId, mutations)
            expect(got.results.map((r) => r.status)).toEqual(expected)
            expect(got.lastSeq).toBe(start + mutations.length)
            if (b.resend) {
              const again = await push(w, clientId, mutations)
              expect(again.results.every((r) => r.status === 'duplicate')).toBe(true)
            }
          }
          for (const t of [items, stock, people]) {
            const keys = base.map((id) => ({ id }))
            const stored = await readAll(w, t, keys)
            for (const key of keys) {
              const k = canonicalKey(t, key)
              expect(strip(stored.get(k)), `${t.name} ${k}`).toEqual(strip(model.rows.get(`${t.name}:${k}`)))
            }
          }
        }),
        { numRuns: 12 },
      )
      // property runs against a real store: generous on a busy machine (not a timing assertion)
    }, 60_000)

    it('decides lww batches of full rows, stale writes, tombstones and partial upserts like the model', async () => {
      // Full-row lww upserts of keys written once per batch are decided by the store's hlc guard
      // (`writeNewer`, where the adapter has it) instead of a read: the outcome must not differ.
      const full = (n: number, wall: number): Row => ({
        name: `n${n}`,
        amount: `${n}.25`,
        flag: n % 2 === 0,
        at: new Date(T0 + wall).toISOString(),
        day: `2024-01-0${1 + (n % 9)}`,
        big: n * 1000,
        ratio: n / 4,
        meta: { n },
        ref: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
      })
      const write = fc.record({
        k: fc.integer({ min: 0, max: 5 }),
        kind: fc.constantFrom('full', 'full', 'full', 'partial', 'delete'),
        wall: fc.integer({ min: 0, max: 12 }),
        tx: fc.constantFrom(undefined, undefined, undefined, 'g'),
      })
      const batches = fc.array(fc.array(write, { minLength: 1, maxLength: 10 }), {
        minLength: 1,
        maxLength: 5,
      })
      await fc.assert(
        fc.asyncProperty(batches, async (list) => {
          const base = ids(6)
          const clientId = client()
          const model = new Model(schema)
          const before = await pullAll(w, [items])
          let seq = 0
          let n = 0
          for (const [b, writes] of list.entries()) {
            const mutations: Mutation[] = writes.map((x) => {
              seq += 1
              n += 1
              const key = { id: base[x.k] ?? 0 }
              // counter and node make every stamp distinct; equal walls still order by counter
              const hlc = stamp(x.wall, x.k % 2 === 0 ? 'a' : 'b', n)
              const m: Mutation =
                x.kind === 'delete'
                  ? { seq, table: 'items', op: 'delete', key, hlc }
                  : {
                      seq,
                      table: 'items',
                      op: 'upsert',
                      key,
                      values: x.kind === 'full' ? full(n, x.wall) : { name: `p${n}` },
                      hlc,
                    }
              return x.tx === undefined ? m : { ...m, tx: `${x.tx}${b}` }
            })
            const expected = model.apply(clientId, mutations)
            const got = await push(w, clientId, mutations)
            expect(got.results.map((r) => r.status)).toEqual(expected)
          }
          const keys = base.map((id) => ({ id }))
          const stored = await readAll(w, items, keys)
          let live = 0
          for (const key of keys) {
            const k = canonicalKey(items, key)
            const want = model.rows.get(`items:${k}`)
            if (want !== undefined) live += 1
            expect(strip(stored.get(k)), k).toEqual(strip(want))
          }
          // a stale write changes nothing, so exactly the keys the model holds were pulled, each at its final stamp
          const after = await pullAll(w, [items], before.last)
          const mine = new Set(keys.map((key) => canonicalKey(items, key)))
          const last = new Map(
            after.changes
              .map((c): [string, string] => [canonicalKey(items, c.key), c.hlc])
              .filter(([k]) => mine.has(k)),
          )
          expect(last.size).toBe(live)
          for (const [k, hlc] of last) expect(hlc).toBe(model.rows.get(`items:${k}`)?.hlc)
        }),
        { numRuns: 15 },
      )
      // property runs against a real store: generous on a busy machine (not a timing assertion)
    }, 60_000)

    it('answers duplicate for seq <= lastSeq and keeps lastSeq', async () => {
      const [a = 0, b = 0, c = 0] = ids(3)
      const cl = client()
      const m = (seq: number, id: number): Mutation => ({
        seq,
        table: 'items',
        op: 'upsert',
        key: { id },
        values: { name: `n${seq}` },
        hlc: stamp(seq, cl),
      })
      const first = await push(w, cl, [m(1, a), m(2, b)])
      expect(first).toEqual({
        lastSeq: 2,
        results: [
          { seq: 1, status: 'applied' },
          { seq: 2, status: 'applied' },
        ],
      })
      const again = await push(w, cl, [m(2, b), m(3, c)])
      expect(again.results.map((r) => r.status)).toEqual(['duplicate', 'applied'])
      expect(again.lastSeq).toBe(3)
      const old = await push(w, cl, [m(1, c)])
      expect(old).toEqual({ lastSeq: 3, results: [{ seq: 1, status: 'duplicate' }] })
      expect(await w.write((tx) => tx.client(cl)).then((c) => c.lastSeq)).toBe(3)
    })

    it('applies a tx group all-or-nothing, without letting its writes leak into the rest', async () => {
      const [a = 0, b = 0, c = 0] = ids(3)
      const cl = client()
      const r = await push(w, cl, [
        {
          seq: 1,
          table: 'people',
          op: 'upsert',
          key: { id: a },
          values: { name: 'A', qty: 1 },
          hlc: stamp(1, cl),
          tx: 'g',
        },
        // a new row without its required qty: rejected by reconcile, after seq 1 already applied in memory
        {
          seq: 2,
          table: 'people',
          op: 'upsert',
          key: { id: b },
          values: { name: 'B' },
          hlc: stamp(2, cl),
          tx: 'g',
        },
        {
          seq: 3,
          table: 'people',
          op: 'upsert',
          key: { id: c },
          values: { name: 'C', qty: 3 },
          hlc: stamp(3, cl),
        },
        {
          seq: 4,
          table: 'items',
          op: 'upsert',
          key: { id: a },
          values: { name: 1 },
          hlc: stamp(4, cl),
          tx: 'h',
        },
        {
          seq: 5,
          table: 'items',
          op: 'upsert',
          key: { id: b },
          values: { name: 'ok' },
          hlc: stamp(5, cl),
          tx: 'h',
        },
      ])
      expect(r.results.map((x) => [x.status, x.error?.code])).toEqual([
        ['rejected', 'tx_aborted'],
        ['rejected', 'invalid_value'],
        ['applied', undefined],
        ['rejected', 'invalid_value'],
        ['rejected', 'tx_aborted'],
      ])
      expect(r.lastSeq).toBe(5)
      const stored = await readAll(w, people, [{ id: a }, { id: b }, { id: c }])
      expect([...stored.values()].map((s) => s.values.id)).toEqual([c])
      expect((await readAll(w, items, [{ id: a }, { id: b }])).size).toBe(0)
    })

    it('checks required columns on the row as it would stand', async () => {
      const [a = 0] = ids(1)
      const cl = client()
      const r = await push(w, cl, [
        {
          seq: 1,
          table: 'people',
          op: 'upsert',
          key: { id: a },
          values: { name: 'no qty' },
          hlc: stamp(1, cl),
        },
        { seq: 2, table: 'people', op: 'upsert', key: { id: a }, values: { qty: 2 }, hlc: stamp(2, cl) },
        {
          seq: 3,
          table: 'people',
          op: 'upsert',
          key: { id: a },
          values: { name: 'partial' },
          hlc: stamp(3, cl),
        },
        { seq: 4, table: 'people', op: 'upsert', key: { id: a }, values: { qty: null }, hlc: stamp(4, cl) },
      ])
      expect(r.results.map((x) => x.status)).toEqual(['rejected', 'applied', 'applied', 'rejected'])
      expect(r.results[0]?.error).toMatchObject({ code: 'invalid_value', field: 'qty' })
      expect(r.results[2]?.row).toEqual({ id: a, name: 'partial', qty: 2 })
    })

    it('keeps tombstones, so a late older upsert loses, and pulls them as row null', async () => {
      const [a = 0] = ids(1)
      const cl = client()
      const before = await pullAll(w, [items])
      const r = await push(w, cl, [
        { seq: 1, table: 'items', op: 'delete', key: { id: a }, hlc: stamp(10, cl) },
        { seq: 2, table: 'items', op: 'upsert', key: { id: a }, values: { name: 'late' }, hlc: stamp(5, cl) },
      ])
      expect(r.results.map((x) => x.status)).toEqual(['applied', 'stale'])
      const stored = (await readAll(w, items, [{ id: a }])).get(canonicalKey(items, { id: a }))
      expect(stored).toMatchObject({ deleted: true, hlc: stamp(10, cl) })
      const after = await pullAll(w, [items], before.last)
      expect(after.changes).toEqual([
        { table: 'items', key: { id: a }, row: null, hlc: stamp(10, cl), version: expect.any(BigInt) },
      ])
      const digest = await w.digestEntries(items)
      expect(digest.some((e) => e.key.id === a)).toBe(false)
    })

    it('folds repeated keys in one batch: the highest hlc wins and one change is pulled', async () => {
      const [a = 0] = ids(1)
      const cl = client()
      const before = await pullAll(w, [items])
      const r = await push(w, cl, [
        { seq: 1, table: 'items', op: 'upsert', key: { id: a }, values: { name: 'one' }, hlc: stamp(3, cl) },
        { seq: 2, table: 'items', op: 'upsert', key: { id: a }, values: { name: 'two' }, hlc: stamp(9, cl) },
        {
          seq: 3,
          table: 'items',
          op: 'upsert',
          key: { id: a },
          values: { name: 'three' },
          hlc: stamp(6, cl),
        },
      ])
      expect(r.results.map((x) => x.status)).toEqual(['applied', 'applied', 'stale'])
      const after = await pullAll(w, [items], before.last)
      expect(after.changes.map((c) => [c.row?.name, c.hlc])).toEqual([['two', stamp(9, cl)]])
    })

    it('pulls in version order with paging, never repeating or skipping', async () => {
      const start = (await pullAll(w, [items, stock, people])).last
      const cl = client()
      const keys = ids(23)
      for (let i = 0; i < keys.length; i += 5) {
        const mutations: Mutation[] = keys.slice(i, i + 5).map((id, j) => ({
          seq: i + j + 1,
          table: (['items', 'stock', 'people'] as const)[(i + j) % 3] ?? 'items',
          op: 'upsert',
          key: { id },
          values:
            (i + j) % 3 === 2
              ? { name: `p${id}`, qty: 1 }
              : (i + j) % 3 === 1
                ? { hi: id }
                : { name: `i${id}` },
          hlc: stamp(100 + i + j, cl),
        }))
        await push(w, cl, mutations)
      }
      const paged = await pullAll(w, [items, stock, people], start, 4)
      const versions = paged.changes.map((c) => c.version)
      expect(versions).toEqual([...versions].sort((a, b) => (a < b ? -1 : 1)))
      expect(new Set(versions).size).toBe(versions.length)
      // within one push, rows are grouped by table; across pushes, in commit order
      expect(paged.changes.map((c) => Number(c.key.id)).sort((a, b) => a - b)).toEqual(keys)
      const whole = await pullAll(w, [items, stock, people], start, 1000)
      expect(whole.changes).toEqual(paged.changes)
      const onlyStock = await pullAll(w, [stock], start, 3)
      expect(onlyStock.changes.map((c) => c.key.id)).toEqual(keys.filter((_, i) => i % 3 === 1))
      const page = await w.pull({ tables: [items, stock, people], afterVersion: start, limit: 23 })
      expect(page.hasMore).toBe(false)
      const short = await w.pull({ tables: [items, stock, people], afterVersion: start, limit: 22 })
      expect(short.hasMore).toBe(true)
    })

    it('reports its high-water mark (when it has one) as the newest committed version', async () => {
      if (w.highWater === undefined) return
      const cl = client()
      const [id = 0] = ids(1)
      await push(w, cl, [
        { seq: 1, table: 'items', op: 'upsert', key: { id }, values: { name: 'hw' }, hlc: stamp(1, cl) },
      ])
      const high = await w.highWater()
      const all = await pullAll(w, [...schema.tables.values()])
      // every committed change is at or below it, the push just made included
      expect(all.last).toBeGreaterThan(0n)
      expect(high >= all.last).toBe(true)
      expect(all.changes.some((c) => c.key.id === id && c.version <= high)).toBe(true)
      expect((await pullAll(w, [...schema.tables.values()], high)).changes).toEqual([])
    })

    it('never lets a puller skip a change while writers push concurrently', async () => {
      const keys = ids(12)
      const start = (await pullAll(w, [items, stock])).last
      const writers = ['wa', 'wb', 'wc'].map((p) => `${p}${client()}`)
      let done = false
      const seen = new Map<string, string>()
      let cursor = start
      let pages = 0
      const puller = (async () => {
        for (;;) {
          const finished = done
          const page = await w.pull({ tables: [items, stock], afterVersion: cursor, limit: 7 })
          pages += 1
          for (const ch of page.changes) {
            expect(ch.version > cursor).toBe(true)
            cursor = ch.version
            seen.set(`${ch.table}:${canonicalKey(ch.table === 'items' ? items : stock, ch.key)}`, ch.hlc)
          }
          if (finished && !page.hasMore) return
        }
      })()
      await Promise.all(
        writers.map(async (cl, wi) => {
          for (let b = 0; b < 8; b++) {
            const mutations: Mutation[] = Array.from({ length: 4 }, (_, j) => {
              const id = keys[(b * 4 + j + wi) % keys.length] ?? 0
              const t = (b + j) % 2 === 0 ? 'items' : 'stock'
              return {
                seq: b * 4 + j + 1,
                table: t,
                op: 'upsert',
                key: { id },
                values: t === 'items' ? { name: `${cl}-${b}` } : { hi: b * 10 + j, label: cl },
                hlc: stamp(1000 + b * 10 + j, cl),
              }
            })
            await push(w, cl, mutations)
          }
        }),
      )
      done = true
      await puller
      expect(pages).toBeGreaterThan(0)
      for (const t of [items, stock]) {
        const stored = await readAll(
          w,
          t,
          keys.map((id) => ({ id })),
        )
        for (const [k, row] of stored) expect(seen.get(`${t.name}:${k}`), `${t.name} ${k}`).toBe(row.hlc)
      }
      // a busy puller against three writers: generous on a busy machine (not a timing assertion)
    }, 60_000)

    it('records manual conflicts, lists and deletes them', async () => {
      const [a = 0] = ids(1)
      const cl = client()
      await push(w, cl, [
        {
          seq: 1,
          table: 'people',
          op: 'upsert',
          key: { id: a },
          values: { name: 'new', qty: 1 },
          hlc: stamp(50, cl),
        },
      ])
      const r = await push(w, cl, [
        {
          seq: 2,
          table: 'people',
          op: 'upsert',
          key: { id: a },
          values: { name: 'older' },
          hlc: stamp(40, cl),
        },
        {
          seq: 3,
          table: 'people',
          op: 'upsert',
          key: { id: a },
          values: { name: 'new' },
          hlc: stamp(30, cl),
        },
      ])
      expect(r.results.map((x) => x.status)).toEqual(['conflict', 'stale'])
      expect(r.results[0]?.row).toEqual({ id: a, name: 'new', qty: 1 })
      const list = (await w.conflicts()).filter((c) => c.key.id === a)
      expect(list).toEqual([
        {
          id: expect.anything(),
          table: 'people',
          key: { id: a },
          stored: { id: a, name: 'new', qty: 1 },
          incoming: { id: a, name: 'older' },
          hlc: stamp(40, cl),
          detectedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        },
      ])
      const id = String(list[0]?.id)
      // a transaction that removes the record and then fails leaves it listed
      await expect(
        w.write(async (tx) => {
          expect(await tx.deleteConflict(id)).toBe(true)
          throw new Error('boom')
        }),
      ).rejects.toThrow('boom')
      expect((await w.conflicts()).some((c) => c.key.id === a)).toBe(true)
      expect(
        await w.write(async (tx) => [
          await tx.deleteConflict(id),
          await tx.deleteConflict(id),
          await tx.deleteConflict('999999999'),
          await tx.deleteConflict('nope'),
          await tx.deleteConflict('1e3'),
        ]),
      ).toEqual([true, false, false, false, false])
      expect(await w.write((tx) => tx.deleteConflict(id))).toBe(false)
      expect((await w.conflicts()).some((c) => c.key.id === a)).toBe(false)
    })

    it('resolves a conflict and removes its record in one transaction', async () => {
      const cl = client()
      const [a = 0] = ids(1)
      const conflicted = async (): Promise<string> => {
        await push(w, cl, [
          {
            seq: 1,
            table: 'people',
            op: 'upsert',
            key: { id: a },
            values: { name: 'kept', qty: 1 },
            hlc: stamp(50, cl),
          },
          {
            seq: 2,
            table: 'people',
            op: 'upsert',
            key: { id: a },
            values: { name: 'lost' },
            hlc: stamp(40, cl),
          },
        ])
        return String((await w.conflicts()).find((c) => c.key.id === a)?.id)
      }
      const id = await conflicted()
      const resolve = (store: Warehouse): Promise<Response> =>
        Promise.resolve(
          createSyncApp({ schema, warehouse: store, onError: () => {} }).request(
            `/sync/conflicts/${id}/resolve`,
            {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ keep: 'incoming' }),
            },
          ),
        )
      const stored = async (): Promise<unknown> =>
        (await readAll(w, people, [{ id: a }])).get(canonicalKey(people, { id: a }))?.values
      // Removing the record fails (as a crash after the resolving write would): the write must not stay
      // behind. Both ways of removing it fail, the transaction's and the separate call an older edge made.
      const failing = (e: Error): Warehouse => ({
        ...w,
        write: (fn) => w.write((tx) => fn({ ...tx, deleteConflict: () => Promise.reject(e) })),
        ...({ deleteConflict: () => Promise.reject(e) } as object),
      })
      expect((await resolve(failing(new Error('crash')))).status).toBe(500)
      expect(await stored()).toEqual({ id: a, name: 'kept', qty: 1 })
      expect((await w.conflicts()).some((c) => String(c.id) === id)).toBe(true)
      // resolved for real, once: a retry finds no record and writes nothing
      expect((await resolve(w)).status).toBe(200)
      expect(await stored()).toEqual({ id: a, name: 'lost', qty: 1 })
      expect((await w.conflicts()).some((c) => String(c.id) === id)).toBe(false)
      const mark = (await pullAll(w, [people])).last
      expect((await resolve(w)).status).toBe(404)
      expect((await pullAll(w, [people], mark)).changes).toEqual([])
    })

    it('writes one audit event per push, newest first', async () => {
      const cl = client()
      const [a = 0] = ids(1)
      await push(w, cl, [
        { seq: 1, table: 'items', op: 'upsert', key: { id: a }, values: { name: 'e' }, hlc: stamp(1, cl) },
        { seq: 2, table: 'nope', op: 'upsert', key: { id: a }, hlc: stamp(2, cl) },
      ])
      await push(w, cl, [{ seq: 2, table: 'items', op: 'delete', key: { id: a }, hlc: stamp(3, cl) }])
      const events = (await w.events(50)).filter((e) => e.clientId === cl)
      expect(
        events.map((e) => [e.mutations, e.applied, e.rejected, e.duplicate, e.stale, e.conflict]),
      ).toEqual([
        [1, 0, 0, 1, 0, 0],
        [2, 1, 1, 0, 0, 0],
      ])
      expect(Number(events[0]?.id)).toBeGreaterThan(Number(events[1]?.id))
      expect(events[0]?.durationMs).toBeGreaterThanOrEqual(0)
      expect(Number.isNaN(Date.parse(events[0]?.receivedAt ?? ''))).toBe(false)
      expect((await w.events(1)).length).toBe(1)
    })

    it('scopes the audit trail and shared-table conflicts by the pushing tenant, in an older store too', async () => {
      const conflict = (id: number, clientId: string, tenant?: string) => ({
        table: 'people',
        key: { id },
        stored: { id, name: 'kept', qty: 1 },
        incoming: { id, name: `from ${clientId}` },
        hlc: stamp(id, clientId),
        clientId,
        ...(tenant === undefined ? {} : { tenant }),
      })
      let store = await target.open(schema)
      await store.migrate()
      await applyBatch(store, { clientId: 'before', mutations: [] }, { now: Date.now, tenant: 'acme' })
      await store.write((tx) => tx.addConflicts([conflict(1, 'before', 'acme')]))
      store = await target.reopen(store, schema, [
        'ALTER TABLE _eddy_sync_events DROP COLUMN tenant',
        'ALTER TABLE _eddy_conflicts DROP COLUMN tenant',
      ])
      try {
        await store.migrate()
        await store.migrate()
        for (const [clientId, tenant] of [
          ['acme-1', 'acme'],
          ['globex-1', 'globex'],
          ['none-1', null],
          ['open-1', undefined],
          ['acme-2', 'acme'],
        ] as const)
          await applyBatch(store, { clientId, mutations: [] }, { now: Date.now, tenant })
        const clients = async (tenant?: string): Promise<string[]> =>
          (await store.events(100, tenant)).map((e) => e.clientId)
        expect(await clients('acme')).toEqual(['acme-2', 'acme-1'])
        expect(await clients('globex')).toEqual(['globex-1'])
        expect(await clients('nobody')).toEqual([])
        expect((await store.events(1, 'acme')).map((e) => e.clientId)).toEqual(['acme-2'])
        // events recorded before the store knew tenants belong to no tenant: only an unscoped view has them
        expect(await clients()).toEqual(['acme-2', 'open-1', 'none-1', 'globex-1', 'acme-1', 'before'])

        // A shared table's conflict belongs to the tenant whose push lost (its incoming values are theirs).
        await store.write((tx) =>
          tx.addConflicts([
            conflict(2, 'acme-1', 'acme'),
            conflict(3, 'globex-1', 'globex'),
            conflict(4, 'none-1'),
          ]),
        )
        const ids = async (tenant?: string | null): Promise<unknown[]> =>
          (await store.conflicts(tenant)).map((c) => c.key.id)
        expect(await ids('acme')).toEqual([2])
        expect(await ids('globex')).toEqual([3])
        expect(await ids('initech')).toEqual([])
        expect(await ids(null)).toEqual([1, 4])
        expect(await ids()).toEqual([1, 2, 3, 4])
      } finally {
        await store.close()
      }
    })

    it('scopes pull, digest and composite keys by tenant', async () => {
      const cl = client()
      const doc = `d${ids(1)[0]}`
      await push(w, cl, [
        {
          seq: 1,
          table: 'docs',
          op: 'upsert',
          key: { org: 'acme', doc },
          values: { body: 'a' },
          hlc: stamp(1, cl),
        },
        {
          seq: 2,
          table: 'docs',
          op: 'upsert',
          key: { org: 'globex', doc },
          values: { body: 'g' },
          hlc: stamp(2, cl),
        },
      ])
      const acme = await pullAll(w, [docs], 0n, 1000, 'acme')
      expect(acme.changes.filter((c) => c.key.doc === doc).map((c) => c.row)).toEqual([
        { org: 'acme', doc, body: 'a' },
      ])
      const all = await pullAll(w, [docs])
      expect(all.changes.filter((c) => c.key.doc === doc)).toHaveLength(2)
      const digest = await w.digestEntries(docs, 'globex')
      expect(digest.filter((e) => e.key.doc === doc)).toEqual([
        { key: { org: 'globex', doc }, hlc: stamp(2, cl) },
      ])
      // a tenant's tombstones reach that tenant's pulls only; its conflicts are listed for it only
      await push(w, cl, [
        { seq: 3, table: 'docs', op: 'delete', key: { org: 'acme', doc }, hlc: stamp(3, cl) },
      ])
      const pulled = async (tenant: string) =>
        (await pullAll(w, [docs], all.last, 1000, tenant)).changes.map((c) => [c.key, c.row])
      expect(await pulled('acme')).toEqual([[{ org: 'acme', doc }, null]])
      expect(await pulled('globex')).toEqual([])
      await w.write((tx) =>
        tx.addConflicts(
          (['acme', 'globex'] as const).map((org) => ({
            table: 'docs',
            key: { org, doc },
            stored: null,
            incoming: { org, doc, body: 'late' },
            hlc: stamp(0, cl),
            clientId: cl,
          })),
        ),
      )
      const listed = async (tenant?: string) =>
        (await w.conflicts(tenant)).filter((c) => c.key.doc === doc).map((c) => c.key.org)
      expect(await listed('acme')).toEqual(['acme'])
      expect(await listed('globex')).toEqual(['globex'])
      expect(await listed('initech')).toEqual([])
      expect(await listed()).toEqual(['acme', 'globex'])
    })

    it('returns digest entries for live rows with their stamps', async () => {
      const cl = client()
      const [a = 0, b = 0] = ids(2)
      await push(w, cl, [
        { seq: 1, table: 'stock', op: 'upsert', key: { id: a }, values: { hi: 1 }, hlc: stamp(7, cl) },
        { seq: 2, table: 'stock', op: 'upsert', key: { id: b }, values: { hi: 2 }, hlc: stamp(8, cl) },
        { seq: 3, table: 'stock', op: 'delete', key: { id: b }, hlc: stamp(9, cl) },
      ])
      const entries = (await w.digestEntries(stock)).filter((e) => e.key.id === a || e.key.id === b)
      expect(entries).toEqual([{ key: { id: a }, hlc: stamp(7, cl) }])
    })

    it('takes nothing from a write transaction that fails', async () => {
      const [a = 0] = ids(1)
      const cl = client()
      const before = (await pullAll(w, [items])).last
      await expect(
        w.write(async (tx) => {
          await tx.writeRows(items, [
            {
              key: { id: a },
              row: { values: { id: a, name: 'x' }, hlc: stamp(1, cl), deleted: false },
              clientId: cl,
            },
          ])
          await tx.setLastSeq(cl, 99, undefined)
          throw new Error('boom')
        }),
      ).rejects.toThrow('boom')
      expect((await readAll(w, items, [{ id: a }])).size).toBe(0)
      expect(await w.write((tx) => tx.client(cl)).then((c) => c.lastSeq)).toBe(0)
      expect((await pullAll(w, [items], before)).changes).toEqual([])
    })

    it('applies concurrent pushes each on its own: duplicates by seq, and a failing push fails alone', async () => {
      const up = (cl: string, seq: number, id: number): Mutation => ({
        seq,
        table: 'items',
        op: 'upsert',
        key: { id },
        values: { name: `${cl}-${seq}` },
        hlc: stamp(seq, cl),
      })
      const owned = client()
      await applyBatch(w, { clientId: owned, mutations: [] }, { now: Date.now, subject: 'alice' })
      const [a = 0, b = 0, c = 0, d = 0] = ids(4)
      const same = client()
      const others = [client(), client(), client()]
      const before = await w.events(1000)
      // all at once: pushes that arrive while one is being written may share its successor's transaction
      const settled = await Promise.allSettled([
        applyBatch(w, { clientId: others[0] ?? '', mutations: [up('o0', 1, a)] }, { now: Date.now }),
        applyBatch(w, { clientId: same, mutations: [up(same, 1, b), up(same, 2, c)] }, { now: Date.now }),
        applyBatch(
          w,
          { clientId: owned, mutations: [up(owned, 1, d)] },
          { now: Date.now, subject: 'mallory' },
        ),
        applyBatch(w, { clientId: same, mutations: [up(same, 1, b), up(same, 2, c)] }, { now: Date.now }),
        applyBatch(w, { clientId: others[1] ?? '', mutations: [up('o1', 1, a)] }, { now: Date.now }),
        applyBatch(w, { clientId: others[2] ?? '', mutations: [] }, { now: Date.now }),
      ])
      const [o0, s1, bad, s2, o1, o2] = settled
      expect(bad?.status).toBe('rejected')
      expect(bad?.status === 'rejected' ? (bad.reason as { code?: string }).code : undefined).toBe(
        'forbidden',
      )
      const ok = (r: PromiseSettledResult<PushResponse> | undefined): PushResponse => {
        if (r?.status !== 'fulfilled')
          throw new Error(`push failed: ${String(r?.status === 'rejected' && r.reason)}`)
        return r.value
      }
      expect(ok(o0).results.map((r) => r.status)).toEqual(['applied'])
      // the second push of `a` has the later stamp (seq 1 of o1 vs o0: same wall, node decides)
      expect(ok(o1).results).toHaveLength(1)
      expect(ok(o2)).toEqual({ lastSeq: 0, results: [] })
      // the same client's two identical pushes: one applies, the other sees duplicates
      const both = [ok(s1), ok(s2)].map((r) => r.results.map((x) => x.status))
      expect(both).toContainEqual(['applied', 'applied'])
      expect(both).toContainEqual(['duplicate', 'duplicate'])
      expect(ok(s1).lastSeq).toBe(2)
      expect(ok(s2).lastSeq).toBe(2)
      const stored = await readAll(w, items, [{ id: b }, { id: c }, { id: d }])
      expect(stored.get(canonicalKey(items, { id: b }))?.values.name).toBe(`${same}-1`)
      expect(stored.get(canonicalKey(items, { id: c }))?.values.name).toBe(`${same}-2`)
      // the refused push wrote nothing, not even its lastSeq
      expect(stored.has(canonicalKey(items, { id: d }))).toBe(false)
      expect(await w.write((tx) => tx.client(owned))).toEqual({ lastSeq: 0, owner: 'alice' })
      // one audit event per successful push, none for the refused one
      const after = await w.events(1000)
      expect(after.length - before.length).toBe(5)
    })

    it('records the owner of a client once', async () => {
      const cl = client()
      await w.write((tx) => tx.setLastSeq(cl, 1, 'alice'))
      await w.write((tx) => tx.setLastSeq(cl, 2, 'bob'))
      expect(await w.write(async (tx) => (await tx.client(cl)).owner)).toBe('alice')
      expect(await w.write((tx) => tx.client(cl)).then((c) => c.lastSeq)).toBe(2)
      expect(await w.write(async (tx) => (await tx.client(`${cl}-unknown`)).owner)).toBeUndefined()
    })

    it('reads its own bookkeeping back inside a transaction, however many clients and events it holds', async () => {
      const cl = client()
      const many = Array.from({ length: 230 }, () => client())
      const before = (await w.events(1000)).length
      const event = (clientId: string, mutations: number): NewEvent => ({
        clientId,
        receivedAt: new Date().toISOString(),
        mutations,
        applied: mutations,
        stale: 0,
        duplicate: 0,
        conflict: 0,
        rejected: 0,
        durationMs: 1.5,
      })
      const owned = client()
      await w.write((tx) => tx.setLastSeq(owned, 4, 'carol'))
      const seen = await w.write(async (tx) => {
        // preloaded answers (where the adapter can) are the stored ones, and stay current in the transaction
        await tx.preloadClients?.([cl, owned, `${cl}-unknown`])
        const read: Array<{ lastSeq: number; owner: string | undefined }> = []
        read.push(await tx.client(owned))
        read.push(await tx.client(`${cl}-unknown`))
        await tx.setLastSeq(owned, 6, 'dave')
        read.push(await tx.client(owned))
        read.push(await tx.client(cl))
        await tx.setLastSeq(cl, 5, undefined)
        read.push(await tx.client(cl))
        await tx.setLastSeq(cl, 7, 'alice')
        read.push(await tx.client(cl))
        await tx.setLastSeq(cl, 9, 'bob')
        read.push(await tx.client(cl))
        for (const [i, other] of many.entries()) {
          await tx.setLastSeq(other, i + 1, undefined)
          await tx.addEvent(event(other, i + 1))
        }
        return read
      })
      expect(seen).toEqual([
        { lastSeq: 4, owner: 'carol' },
        { lastSeq: 0, owner: undefined },
        { lastSeq: 6, owner: 'carol' },
        { lastSeq: 0, owner: undefined },
        { lastSeq: 5, owner: undefined },
        { lastSeq: 7, owner: 'alice' },
        { lastSeq: 9, owner: 'alice' },
      ])
      expect(await w.write((tx) => tx.client(cl))).toEqual({ lastSeq: 9, owner: 'alice' })
      expect(await w.write((tx) => tx.client(owned))).toEqual({ lastSeq: 6, owner: 'carol' })
      const last = must(many.at(-1), 'client')
      expect(await w.write((tx) => tx.client(last))).toEqual({ lastSeq: many.length, owner: undefined })
      const events = await w.events(1000)
      expect(events.length - before).toBe(many.length)
      expect(events[0]).toMatchObject({ clientId: last, mutations: many.length, durationMs: 1.5 })
    })

    it('prunes old events and old tombstones, keeping live rows', async () => {
      const fresh = await target.open(schema)
      try {
        await fresh.migrate()
        const now = Date.now()
        const cl = 'pruner'
        const oldStamp = formatHlc({ wall: now - 3_600_000, counter: 0, node: cl })
        const newStamp = formatHlc({ wall: now - 1000, counter: 0, node: cl })
        await push(fresh, cl, [
          { seq: 1, table: 'items', op: 'upsert', key: { id: 1 }, values: { name: 'live' }, hlc: oldStamp },
          { seq: 2, table: 'items', op: 'delete', key: { id: 2 }, hlc: oldStamp },
          { seq: 3, table: 'items', op: 'delete', key: { id: 3 }, hlc: newStamp },
        ])
        for (let s = 4; s < 9; s++) await push(fresh, cl, [])
        await fresh.prune({ keepEvents: 3, now })
        expect((await fresh.events(100)).length).toBe(3)
        await fresh.prune({ maxAgeMs: 60_000, now })
        const left = await readAll(fresh, items, [{ id: 1 }, { id: 2 }, { id: 3 }])
        expect([...left.values()].map((r) => [r.values.id, r.deleted])).toEqual([
          [1, false],
          [3, true],
        ])
        await fresh.prune({ maxAgeMs: 60_000, now: now + 3_600_000 })
        expect((await fresh.events(100)).length).toBe(0)
      } finally {
        await fresh.close()
      }
    })

    it('migrates idempotently and adds columns when the schema grows, keeping data', async () => {
      let store = await target.open(schema)
      await store.migrate()
      await store.migrate()
      await push(store, 'grow', [
        {
          seq: 1,
          table: 'items',
          op: 'upsert',
          key: { id: 1 },
          values: { name: 'kept' },
          hlc: stamp(1, 'grow'),
        },
      ])
      const grown = defineSchema({
        ...schema.spec,
        tables: {
          ...schema.spec.tables,
          items: {
            ...schema.spec.tables.items,
            columns: { ...schema.spec.tables.items.columns, extra: { type: 'integer' } },
          },
          added: { primaryKey: ['id'], columns: { id: { type: 'integer' }, v: { type: 'text' } } },
        },
      })
      store = await target.reopen(store, grown)
      try {
        await store.migrate()
        await store.migrate()
        const t = grown.table('items')
        const kept = (await readAll(store, t, [{ id: 1 }])).get(canonicalKey(t, { id: 1 }))
        expect(kept?.values).toMatchObject({ id: 1, name: 'kept', extra: null })
        const r = await push(store, 'grow', [
          {
            seq: 2,
            table: 'items',
            op: 'upsert',
            key: { id: 1 },
            values: { extra: 5 },
            hlc: stamp(2, 'grow'),
          },
          { seq: 3, table: 'added', op: 'upsert', key: { id: 1 }, values: { v: 'x' }, hlc: stamp(3, 'grow') },
        ])
        expect(r.results.map((x) => x.status)).toEqual(['applied', 'applied'])
        expect(r.lastSeq).toBe(3)
        const after = (await readAll(store, t, [{ id: 1 }])).get(canonicalKey(t, { id: 1 }))
        expect(after?.values).toMatchObject({ id: 1, name: 'kept', extra: 5 })
      } finally {
        await store.close()
      }
    })
  })
}
