import { describe, expect, it, vi } from 'vitest'
import { type ChannelMessage, createMutex, electLeader, openChannel } from './leader.ts'

const name = (): string => `leader-test-${crypto.randomUUID()}`

describe('leader election (in-process fallback: Node has no navigator.locks)', () => {
  it('elects exactly one leader and hands over when it closes', async () => {
    const n = name()
    const a = electLeader(n)
    const b = electLeader(n)
    await vi.waitFor(() => expect(a.isLeader() || b.isLeader()).toBe(true))
    expect([a.isLeader(), b.isLeader()].filter(Boolean)).toHaveLength(1)
    const [leader, follower] = a.isLeader() ? [a, b] : [b, a]
    const seen: boolean[] = []
    follower.onChange((v) => seen.push(v))
    leader.close()
    await vi.waitFor(() => expect(follower.isLeader()).toBe(true))
    expect(leader.isLeader()).toBe(false)
    expect(seen).toEqual([true])
    follower.close()
  })

  it('a candidate that closes before its turn never leads', async () => {
    const n = name()
    const a = electLeader(n)
    await vi.waitFor(() => expect(a.isLeader()).toBe(true))
    const b = electLeader(n)
    b.close()
    a.close()
    const c = electLeader(n)
    await vi.waitFor(() => expect(c.isLeader()).toBe(true))
    expect(b.isLeader()).toBe(false)
    c.close()
  })
})

describe('mutex', () => {
  it('never runs two holders at once and passes results and errors through', async () => {
    const m = createMutex(name())
    let inside = 0
    let most = 0
    const job = async (i: number): Promise<number> =>
      m.run(async () => {
        inside += 1
        most = Math.max(most, inside)
        await new Promise((r) => setTimeout(r, 1))
        inside -= 1
        if (i === 2) throw new Error('job 2 fails')
        return i * 10
      })
    const results = await Promise.allSettled([job(0), job(1), job(2), job(3)])
    expect(most).toBe(1)
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'failed'))).toEqual([0, 10, 'failed', 30])
  })
})

describe('channel', () => {
  it('delivers a message to the other members, not to the sender', async () => {
    const n = name()
    const a = openChannel(n)
    const b = openChannel(n)
    const atA: ChannelMessage[] = []
    const atB: ChannelMessage[] = []
    a.on((m) => atA.push(m))
    b.on((m) => atB.push(m))
    a.post({ type: 'write', tables: ['orders'] })
    await vi.waitFor(() => expect(atB).toEqual([{ type: 'write', tables: ['orders'] }]))
    expect(atA).toEqual([])
    a.close()
    b.close()
  })
})
