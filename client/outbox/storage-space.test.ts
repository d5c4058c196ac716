import { describe, expect, it } from 'vitest'
import type { NewMutation } from '../../shared/protocol.ts'
import { approxBytes, createSpaceGuard } from './storage-space.ts'

const mut = (id: string, text: string): NewMutation => ({
  table: 'metrics',
  op: 'upsert',
  key: { metric_id: id },
  values: { note: text },
  hlc: '001795000000000:00001:me',
})

describe('storage space guard', () => {
  it('refuses a large write the probe says does not fit (`quota`); small writes are not probed', async () => {
    const asked: number[] = []
    let free = 1_000_000
    const guard = createSpaceGuard(async (bytes) => {
      asked.push(bytes)
      return bytes <= free
    })
    await guard.admit([mut('a', 'x'.repeat(1000))])
    expect(asked).toEqual([])
    const big = [mut('b', 'x'.repeat(300_000))]
    await expect(guard.admit(big)).rejects.toMatchObject({ code: 'quota' })
    // twice its approximate size was asked for
    expect(asked).toEqual([2 * approxBytes(big)])
    free = 10_000_000
    await guard.admit(big)
  })

  it('admits everything where no probe can run (Node, a page, old browsers)', async () => {
    await createSpaceGuard(undefined).admit([mut('a', 'x'.repeat(10_000_000))])
    await createSpaceGuard(() => Promise.reject(new Error('no OPFS'))).admit([
      mut('a', 'x'.repeat(10_000_000)),
    ])
  })

  it('answers in call order, so outbox commits keep the order of the writes', async () => {
    const order: string[] = []
    let release: () => void = () => {}
    const first = new Promise<void>((r) => {
      release = r
    })
    let n = 0
    const guard = createSpaceGuard(async () => {
      if (n++ === 0) await first
      return true
    })
    const a = guard.admit([mut('a', 'x'.repeat(300_000))]).then(() => order.push('a'))
    const b = guard.admit([mut('b', '')]).then(() => order.push('b'))
    release()
    await Promise.all([a, b])
    expect(order).toEqual(['a', 'b'])
  })
})
