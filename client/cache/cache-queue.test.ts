import { afterEach, describe, expect, it, vi } from 'vitest'
import { defineSchema } from '../../shared/schema.ts'
import type { LocalWrite } from './cache.ts'
import { createCacheQueue } from './cache-queue.ts'

const schema = defineSchema({
  tables: { notes: { primaryKey: ['id'], columns: { id: { type: 'text' }, body: { type: 'text' } } } },
})
const notes = schema.table('notes')
const write = (id: string): LocalWrite => ({ table: notes, key: { id }, row: { id, body: id }, hlc: id })

afterEach(() => {
  vi.useRealTimers()
})

describe('cache queue', () => {
  it('gathers local writes called within the quiet time into one batch, started after it', async () => {
    vi.useFakeTimers()
    const q = createCacheQueue({ quietMs: 25, maxWaitMs: 250 })
    const batches: string[][] = []
    const apply = async (b: readonly LocalWrite[]): Promise<void> => {
      batches.push(b.map((w) => w.hlc))
    }
    const a = q.local([write('a')], apply)
    await vi.advanceTimersByTimeAsync(10)
    const b = q.local([write('b')], apply)
    expect(batches).toEqual([])
    await vi.advanceTimersByTimeAsync(30)
    await Promise.all([a, b])
    expect(batches).toEqual([['a', 'b']])
  })

  it('starts an open batch at once when any other operation is queued behind it, in call order', async () => {
    vi.useFakeTimers()
    const q = createCacheQueue({ quietMs: 25, maxWaitMs: 250 })
    const order: string[] = []
    const w = q.local([write('a')], async (b) => {
      order.push(`write ${b.length}`)
    })
    const r = q.run(async () => {
      order.push('read')
    })
    const late = q.local([write('b')], async (b) => {
      order.push(`write ${b.length}`)
    })
    await vi.advanceTimersByTimeAsync(0)
    await Promise.all([w, r])
    expect(order).toEqual(['write 1', 'read'])
    await vi.advanceTimersByTimeAsync(30)
    await late
    expect(order).toEqual(['write 1', 'read', 'write 1'])
  })

  it('starts a batch kept open by a steady stream of writes no later than maxWaitMs after its first', async () => {
    vi.useFakeTimers()
    const q = createCacheQueue({ quietMs: 25, maxWaitMs: 100 })
    const batches: number[] = []
    const apply = async (b: readonly LocalWrite[]): Promise<void> => {
      batches.push(b.length)
    }
    const done: Array<Promise<void>> = []
    for (let i = 0; i < 10; i++) {
      done.push(q.local([write(String(i))], apply))
      await vi.advanceTimersByTimeAsync(20)
    }
    await vi.advanceTimersByTimeAsync(100)
    await Promise.all(done)
    expect(batches[0]).toBeLessThan(10)
    expect(batches.reduce((s, n) => s + n, 0)).toBe(10)
  })
})
