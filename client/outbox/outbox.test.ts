import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it } from 'vitest'
import type { NewMutation } from '../../shared/protocol.ts'
import { type Outbox, openOutbox } from './outbox.ts'

const opened: Outbox[] = []
afterEach(() => {
  for (const o of opened.splice(0)) o.close()
})
function open(name = `outbox-test-${crypto.randomUUID()}`): Outbox {
  const o = openOutbox(name)
  opened.push(o)
  return o
}
const mut = (i: number, table = 'orders', tx?: string): NewMutation => ({
  table,
  op: 'upsert',
  key: { id: i },
  values: { v: i },
  hlc: `${String(1000 + i).padStart(15, '0')}:00000:c1`,
  ...(tx === undefined ? {} : { tx }),
})

describe('outbox', () => {
  it('gives strictly increasing seqs and never splits a tx group across batches', async () => {
    const o = open()
    const a = (await o.add([mut(1)], { park: false })).seqs
    const g = (
      await o.add([mut(2, 'orders', 't'), mut(3, 'orders', 't'), mut(4, 'orders', 't')], {
        park: false,
      })
    ).seqs
    const b = (await o.add([mut(5)], { park: false })).seqs
    const seqs = [...a, ...g, ...b]
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
    expect(new Set(seqs).size).toBe(5)
    expect(await o.pending()).toBe(5)
    // A limit of 2 would cut the group: the batch stops before it.
    expect((await o.peek(2)).map((m) => m.seq)).toEqual(a)
    await o.ack(a, [])
    // The group alone fits in 3 ...
    expect((await o.peek(3)).map((m) => m.seq)).toEqual(g)
    // ... and a group larger than the limit goes out whole and alone (it is all-or-nothing per push).
    expect((await o.peek(2)).map((m) => m.seq)).toEqual(g)
    await o.ack(g, [])
    expect((await o.peek(10)).map((m) => m.seq)).toEqual(b)
    expect(await o.pending()).toBe(1)
  })

  it('keeps seqs unique and increasing and counts every write when two tabs share it', async () => {
    const name = `outbox-test-${crypto.randomUUID()}`
    const [a, b] = [open(name), open(name)]
    const seqs: number[] = []
    seqs.push(...(await a.add([mut(1), mut(2)], { park: false })).seqs)
    seqs.push(...(await a.add([mut(3)], { park: false })).seqs) // a trusts its own counters now
    // the other tab takes seqs without queueing anything (a write-through write)...
    const { first } = await b.allocate(2)
    seqs.push(first, first + 1)
    // ...and queues and parks writes, so a's counters are stale
    seqs.push(...(await b.add([mut(4)], { park: false })).seqs)
    await b.add([mut(5, 'products')], { park: true })
    seqs.push(...(await a.add([mut(6)], { park: false })).seqs)
    await a.add([mut(7, 'products')], { park: true })
    seqs.push(...(await a.add([mut(8), mut(9)], { park: false })).seqs)
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
    expect(new Set(seqs).size).toBe(seqs.length)
    expect(await a.pending()).toBe(9)
    expect(await b.pending()).toBe(9)
    expect((await b.peek(100)).map((m) => m.values?.v)).toEqual([1, 2, 3, 4, 6, 8, 9])
    expect((await a.pendingMutations()).map((m) => m.values?.v)).toEqual([1, 2, 3, 4, 6, 8, 9, 5, 7])
  })

  it('files rejected writes and removes them from the queue in the same step', async () => {
    const o = open()
    const [s1 = 0, s2 = 0] = (await o.add([mut(1, 'orders', 't'), mut(2, 'orders', 't')], { park: false }))
      .seqs
    await o.ack(
      [s1],
      [{ seq: s2, table: 'orders', op: 'upsert', key: { id: 2 }, error: { code: 'x', message: 'no' } }],
    )
    expect(await o.peek(10)).toEqual([])
    expect(await o.pending()).toBe(0)
    expect(await o.rejected()).toMatchObject([{ seq: s2, error: { code: 'x' } }])
    await o.clearRejected()
    expect(await o.rejectedCount()).toBe(0)
  })

  it('parks hybrid writes without a seq and promotes them after everything queued before', async () => {
    const o = open()
    await o.add([mut(1, 'products')], { park: true })
    const [q = 0] = (await o.add([mut(2)], { park: false })).seqs
    expect(await o.pending()).toBe(2)
    expect((await o.peek(10)).map((m) => m.table)).toEqual(['orders'])
    // what a cache must show: the queued writes and the parked ones
    expect((await o.pendingMutations()).map((m) => m.table)).toEqual(['orders', 'products'])
    expect(await o.promote(new Set(['metrics']))).toBe(0)
    expect(await o.promote(new Set(['products']))).toBe(1)
    const batch = await o.peek(10)
    expect(batch.map((m) => m.table)).toEqual(['orders', 'products'])
    expect(batch[1]?.seq).toBeGreaterThan(q)
  })

  it('keeps pending writes, the seq counter and the highest stamp across a reopen', async () => {
    const name = `outbox-test-${crypto.randomUUID()}`
    const first = openOutbox(name)
    const [s1 = 0] = (await first.add([mut(1), mut(9)], { park: false })).seqs
    first.close()
    const again = open(name)
    expect(await again.pending()).toBe(2)
    expect(await again.lastHlc()).toBe(mut(9).hlc)
    const [s2 = 0] = (await again.add([mut(3)], { park: false })).seqs
    expect(s2).toBeGreaterThan(s1 + 1)
    const { first: wt, queued } = await again.allocate(2)
    expect(queued).toBe(true)
    expect(wt).toBeGreaterThan(s2)
  })
})
