import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { canonicalKey } from '../../../shared/digest.ts'
import { isEddyError } from '../../../shared/errors.ts'
import { defineSchema, type Row, type Table } from '../../../shared/schema.ts'
import { type D1Harness, startD1 } from '../../../test/workerd/miniflare.ts'
import type { RowWrite, Warehouse } from '../warehouse.ts'
import { openD1Warehouse } from './d1-warehouse.ts'

/**
 * What is particular to D1 (the shared contract suite covers the Warehouse behaviour itself): the
 * batch-as-transaction, the cross-isolate guard, type round trips through SQLite, schema growth.
 */
const spec = {
  tables: {
    things: {
      primaryKey: ['id'],
      columns: {
        id: { type: 'bigint' },
        label: { type: 'text' },
        price: { type: 'decimal(10,2)' },
        ratio: { type: 'double' },
        active: { type: 'boolean' },
        meta: { type: 'json' },
        seen_at: { type: 'timestamp' },
        day: { type: 'date' },
        tenant: { type: 'text' },
      },
    },
    pairs: {
      primaryKey: ['a', 'b'],
      columns: { a: { type: 'integer' }, b: { type: 'text' }, n: { type: 'integer', merge: 'max' } },
      conflict: 'merge',
    },
  },
} as const
const schema = defineSchema(spec)
const things = schema.table('things')
const pairs = schema.table('pairs')

const hlc = (ms: number, node = 'n1'): string => `${String(ms).padStart(15, '0')}:00000:${node}`

function thing(id: number | string, extra: Row, ms: number, deleted = false): RowWrite {
  const values: Row = {
    id,
    label: null,
    price: null,
    ratio: null,
    active: null,
    meta: null,
    seen_at: null,
    day: null,
    tenant: null,
    ...extra,
  }
  return { key: { id }, row: { values, hlc: hlc(ms), deleted }, clientId: 'c1' }
}

async function writeRows(w: Warehouse, table: Table, rows: RowWrite[]): Promise<void> {
  await w.write(async (tx) => {
    await tx.writeRows(table, rows)
  })
}

let h: D1Harness
let wh: Warehouse

beforeAll(async () => {
  h = await startD1()
})
afterAll(async () => {
  await h.dispose()
})
beforeEach(async () => {
  await h.wipe()
  wh = openD1Warehouse({ db: h.db, schema })
  await wh.migrate()
})

describe('D1 warehouse in workerd', () => {
  it('round-trips every column type, bigint past 2^53 included', async () => {
    const big = '9007199254740993'
    const rows = [
      thing(
        1,
        {
          label: 'a "quoted" ünïcode ✓',
          price: '12.50',
          ratio: 0.25,
          active: true,
          meta: { tags: ['x', 'y'], n: 1 },
          seen_at: '2026-01-02T03:04:05.678Z',
          day: '2026-01-02',
          tenant: 't1',
        },
        1000,
      ),
      thing(big, { label: '42', price: '0.00', ratio: 3, active: false, meta: 'just text' }, 1000),
    ]
    await writeRows(wh, things, rows)
    const found = await wh.write((tx) => tx.readRows(things, [{ id: 1 }, { id: big }, { id: 7 }]))
    expect(found.size).toBe(2)
    for (const r of rows) {
      const got = found.get(canonicalKey(things, r.key))
      expect(got?.values).toEqual(r.row.values)
      expect(got?.hlc).toBe(r.row.hlc)
      expect(got?.deleted).toBe(false)
    }
    const pulled = await wh.pull({ tables: [things], afterVersion: 0n, limit: 10 })
    expect(pulled.changes.map((c) => c.row)).toEqual(rows.map((r) => r.row.values))
    expect(pulled.changes.map((c) => c.key)).toEqual([{ id: 1 }, { id: big }])
  })

  it('assigns increasing versions across batches and pages a pull by them', async () => {
    await writeRows(wh, things, [thing(1, {}, 1), thing(2, {}, 1)])
    await writeRows(wh, pairs, [
      {
        key: { a: 1, b: 'x' },
        row: { values: { a: 1, b: 'x', n: 5 }, hlc: hlc(2), deleted: false },
        clientId: 'c',
      },
    ])
    await writeRows(wh, things, [thing(1, { label: 'again' }, 3), thing(3, {}, 3, true)])
    const all = await wh.pull({ tables: [things, pairs], afterVersion: 0n, limit: 100 })
    expect(all.hasMore).toBe(false)
    const versions = all.changes.map((c) => c.version)
    expect([...versions].sort((a, b) => (a < b ? -1 : 1))).toEqual(versions)
    expect(new Set(versions).size).toBe(versions.length)
    // thing 1 was rewritten, so it appears once, after pair (1,'x'); thing 3 is a tombstone
    expect(all.changes.map((c) => [c.table, c.key])).toEqual([
      ['things', { id: 2 }],
      ['pairs', { a: 1, b: 'x' }],
      ['things', { id: 1 }],
      ['things', { id: 3 }],
    ])
    expect(all.changes[3]?.row).toBeNull()
    const seen: string[] = []
    let after = 0n
    for (let more = true; more; ) {
      const page = await wh.pull({ tables: [things, pairs], afterVersion: after, limit: 1 })
      expect(page.changes.length).toBe(1)
      seen.push(...page.changes.map((c) => `${c.table}${JSON.stringify(c.key)}`))
      after = page.changes.at(-1)?.version ?? after
      more = page.hasMore
    }
    expect(seen).toEqual(all.changes.map((c) => `${c.table}${JSON.stringify(c.key)}`))
  })

  it('applies nothing when fn throws, and nothing of a batch whose last statement fails', async () => {
    await expect(
      wh.write(async (tx) => {
        await tx.writeRows(things, [thing(1, {}, 1)])
        await tx.setLastSeq('c1', 5, undefined)
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(await wh.write(async (tx) => (await tx.client('c1')).lastSeq)).toBe(0)
    // Drop the events table behind the adapter's back: the batch's last statement fails, so its
    // earlier row write and lastSeq must roll back with it.
    await h.db.exec('DROP TABLE _eddy_sync_events')
    const failing = wh.write(async (tx) => {
      await tx.writeRows(things, [thing(2, {}, 1)])
      await tx.setLastSeq('c1', 9, undefined)
      await tx.addEvent({
        clientId: 'c1',
        receivedAt: new Date(0).toISOString(),
        mutations: 1,
        applied: 1,
        stale: 0,
        duplicate: 0,
        conflict: 0,
        rejected: 0,
        durationMs: 1,
      })
    })
    await expect(failing).rejects.toSatisfy((e) => isEddyError(e, 'warehouse_unavailable'))
    expect(await wh.write(async (tx) => (await tx.client('c1')).lastSeq)).toBe(0)
    expect((await wh.pull({ tables: [things], afterVersion: 0n, limit: 10 })).changes).toEqual([])
  })

  it('sees its own earlier writes inside one transaction', async () => {
    await wh.write(async (tx) => {
      await tx.setLastSeq('c1', 4, 'alice')
      expect((await tx.client('c1')).lastSeq).toBe(4)
      expect((await tx.client('c1')).owner).toBe('alice')
      await tx.writeRows(things, [thing(1, { label: 'x' }, 1)])
      const again = await tx.readRows(things, [{ id: 1 }])
      expect(again.get(canonicalKey(things, { id: 1 }))?.values.label).toBe('x')
    })
    await wh.write(async (tx) => {
      await tx.setLastSeq('c1', 3, 'mallory')
      expect((await tx.client('c1')).owner).toBe('alice')
    })
    expect(await wh.write(async (tx) => (await tx.client('c1')).lastSeq)).toBe(4)
  })

  it('keeps two isolates from losing each other’s updates (the generation guard)', async () => {
    // Two adapters on one database behave like two isolates: each has its own mutex, so only the
    // guard in the batch stops a read-modify-write from one overwriting the other's.
    const other = openD1Warehouse({ db: h.db, schema })
    let runs = 0
    const bump = (w: Warehouse) =>
      w.write(async (tx) => {
        runs++
        const seq = (await tx.client('shared')).lastSeq
        const rows = await tx.readRows(things, [{ id: 1 }])
        const count = Number(rows.get(canonicalKey(things, { id: 1 }))?.values.label ?? 0)
        await tx.writeRows(things, [thing(1, { label: String(count + 1) }, seq + 1)])
        await tx.setLastSeq('shared', seq + 1, undefined)
      })
    const n = 12
    await Promise.all(Array.from({ length: n }, (_, i) => bump(i % 2 === 0 ? wh : other)))
    expect(await wh.write(async (tx) => (await tx.client('shared')).lastSeq)).toBe(n)
    const row = await wh.write((tx) => tx.readRows(things, [{ id: 1 }]))
    expect(row.get(canonicalKey(things, { id: 1 }))?.values.label).toBe(String(n))
    // at least one attempt was re-run on fresh reads (otherwise the test did not interleave)
    expect(runs).toBeGreaterThan(n)
  })

  it('guards lww rows in SQL and stores merge results whose stamp did not advance', async () => {
    await writeRows(wh, things, [thing(1, { label: 'new' }, 10)])
    await writeRows(wh, things, [thing(1, { label: 'old' }, 5)])
    const r = await wh.write((tx) => tx.readRows(things, [{ id: 1 }]))
    expect(r.get(canonicalKey(things, { id: 1 }))?.values.label).toBe('new')
    const key = { a: 1, b: 'x' }
    const stamp = hlc(10)
    await writeRows(wh, pairs, [
      {
        key,
        row: { values: { ...key, n: 1 }, hlc: stamp, deleted: false, columnHlcs: { n: stamp } },
        clientId: 'c',
      },
    ])
    await writeRows(wh, pairs, [
      {
        key,
        row: { values: { ...key, n: 9 }, hlc: stamp, deleted: false, columnHlcs: { n: stamp } },
        clientId: 'c',
      },
    ])
    const p = (await wh.write((tx) => tx.readRows(pairs, [key]))).get(canonicalKey(pairs, key))
    expect(p?.values.n).toBe(9)
    expect(p?.columnHlcs).toEqual({ n: stamp })
  })

  it('writes a large batch in chunks within one transaction', async () => {
    const rows = Array.from({ length: 1200 }, (_, i) => thing(i + 1, { label: `row ${i}`.repeat(50) }, 1))
    await writeRows(wh, things, rows)
    const keys = rows.map((r) => r.key)
    const found = await wh.write((tx) => tx.readRows(things, keys))
    expect(found.size).toBe(1200)
    const pulled = await wh.pull({ tables: [things], afterVersion: 0n, limit: 10_000 })
    expect(new Set(pulled.changes.map((c) => c.version)).size).toBe(1200)
  })

  it('keeps conflicts and events, deletes a conflict, prunes by count and age', async () => {
    await wh.write(async (tx) => {
      await tx.addConflicts([
        {
          table: 'things',
          key: { id: 1 },
          stored: { id: 1, tenant: 'a' },
          incoming: { id: 1, tenant: 'a', label: 'x' },
          hlc: hlc(1),
          clientId: 'c1',
        },
        {
          table: 'things',
          key: { id: 2 },
          stored: { id: 2, tenant: 'b' },
          incoming: null,
          hlc: hlc(2),
          clientId: 'c1',
        },
      ])
      for (let i = 0; i < 5; i++)
        await tx.addEvent({
          clientId: `c${i}`,
          receivedAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
          mutations: i,
          applied: i,
          stale: 0,
          duplicate: 0,
          conflict: 0,
          rejected: 0,
          durationMs: 1.5,
        })
    })
    const list = await wh.conflicts()
    expect(list.map((c) => [c.table, c.key, c.incoming])).toEqual([
      ['things', { id: 1 }, { id: 1, tenant: 'a', label: 'x' }],
      ['things', { id: 2 }, null],
    ])
    const first = list[0]
    expect(await wh.write((tx) => tx.deleteConflict(String(first?.id)))).toBe(true)
    expect(await wh.write((tx) => tx.deleteConflict(String(first?.id)))).toBe(false)
    expect(await wh.write((tx) => tx.deleteConflict('nope'))).toBe(false)
    expect((await wh.events(10)).map((e) => e.clientId)).toEqual(['c4', 'c3', 'c2', 'c1', 'c0'])
    await wh.prune({ keepEvents: 3, now: Date.UTC(2026, 0, 1, 1) })
    expect((await wh.events(10)).map((e) => e.clientId)).toEqual(['c4', 'c3', 'c2'])
    await wh.prune({ maxAgeMs: 1000, now: Date.UTC(2026, 0, 1, 0, 3, 30) })
    expect((await wh.events(10)).map((e) => e.clientId)).toEqual(['c4'])
    await writeRows(wh, things, [thing(1, {}, 1000, true), thing(2, {}, 5000, true), thing(3, {}, 1000)])
    await wh.prune({ maxAgeMs: 2000, now: 4000 })
    const left = await wh.write((tx) => tx.readRows(things, [{ id: 1 }, { id: 2 }, { id: 3 }]))
    expect([...left.values()].map((r) => r.values.id).sort()).toEqual([2, 3])
  })

  it('adds a column when the schema grows and keeps the data', async () => {
    await writeRows(wh, pairs, [
      {
        key: { a: 1, b: 'x' },
        row: { values: { a: 1, b: 'x', n: 3 }, hlc: hlc(1), deleted: false },
        clientId: 'c',
      },
    ])
    const grown = defineSchema({
      tables: {
        ...spec.tables,
        pairs: { ...spec.tables.pairs, columns: { ...spec.tables.pairs.columns, note: { type: 'text' } } },
        extra: { primaryKey: ['id'], columns: { id: { type: 'integer' } } },
      },
    })
    const next = openD1Warehouse({ db: h.db, schema: grown })
    await next.migrate()
    await next.migrate()
    const p = grown.table('pairs')
    const r = await next.write((tx) => tx.readRows(p, [{ a: 1, b: 'x' }]))
    expect(r.get(canonicalKey(p, { a: 1, b: 'x' }))?.values).toEqual({ a: 1, b: 'x', n: 3, note: null })
    expect((await next.pull({ tables: [grown.table('extra')], afterVersion: 0n, limit: 1 })).changes).toEqual(
      [],
    )
  })

  it('reports a D1 failure during a write’s reads as warehouse_unavailable', async () => {
    await h.db.exec('DROP TABLE _eddy_clients')
    await expect(wh.write(async (tx) => (await tx.client('c1')).lastSeq)).rejects.toSatisfy((e) =>
      isEddyError(e, 'warehouse_unavailable'),
    )
    await h.db.exec('DROP TABLE things')
    await expect(wh.write((tx) => tx.readRows(things, [{ id: 1 }]))).rejects.toSatisfy((e) =>
      isEddyError(e, 'warehouse_unavailable'),
    )
    // a migration brings the store back, and the adapter works again without being recreated
    await wh.migrate()
    expect(await wh.write(async (tx) => (await tx.client('c1')).lastSeq)).toBe(0)
  })

  it('reports warehouse_unavailable once closed', async () => {
    await wh.health()
    await wh.close()
    await expect(wh.health()).rejects.toSatisfy((e) => isEddyError(e, 'warehouse_unavailable'))
  })
})
