import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isEddyError } from './errors.ts'
import { checkDrift, createHlc, formatHlc, hlcWallPrefix, MAX_COUNTER, parseHlc, wallOf } from './hlc.ts'

describe('hlc', () => {
  it('formats exactly as PROTOCOL.md shows', () => {
    expect(formatHlc({ wall: 1795000000000, counter: 10, node: 'tab-7f3c' })).toBe(
      '001795000000000:0000a:tab-7f3c',
    )
    expect(parseHlc('001795000000000:0000a:tab-7f3c')).toEqual({
      wall: 1795000000000,
      counter: 10,
      node: 'tab-7f3c',
    })
  })

  it('rejects malformed stamps and node ids', () => {
    for (const bad of [
      '',
      '1:2:3',
      '001795000000000:0000A:x',
      '001795000000000:0000a:',
      '001795000000000:0000a:a b',
    ]) {
      expect(() => parseHlc(bad)).toThrow(/not an hlc/)
    }
    expect(() => createHlc({ nodeId: 'bad id' })).toThrow()
  })

  it('counts within one millisecond and resets when time moves', () => {
    let t = 1000
    const clock = createHlc({ nodeId: 'a', now: () => t })
    expect(clock.now()).toBe('000000000001000:00000:a')
    expect(clock.now()).toBe('000000000001000:00001:a')
    t = 1005
    expect(clock.now()).toBe('000000000001005:00000:a')
  })

  it('stays monotonic when the wall clock goes backwards', () => {
    let t = 5000
    const clock = createHlc({ nodeId: 'a', now: () => t })
    const first = clock.now()
    t = 1000
    const second = clock.now()
    expect(second > first).toBe(true)
    expect(second).toBe('000000000005000:00001:a')
  })

  it('moves the logical wall time on counter overflow', () => {
    const clock = createHlc({
      nodeId: 'a',
      now: () => 7,
      after: formatHlc({ wall: 7, counter: MAX_COUNTER, node: 'a' }),
    })
    expect(clock.now()).toBe('000000000000008:00000:a')
  })

  it('orders local stamps after a received one', () => {
    const clock = createHlc({ nodeId: 'a', now: () => 100 })
    clock.receive('000000000000500:00003:b')
    expect(clock.now()).toBe('000000000000500:00005:a')
  })

  it('refuses far-future remote stamps and checks drift', () => {
    const clock = createHlc({ nodeId: 'a', now: () => 0, maxDriftMs: 1000 })
    expect(() => clock.receive('000000000005000:00000:b')).toThrow(/ahead/)
    expect(() => checkDrift('000000000400000:00000:b', 0, 300_000)).toSatisfy((f: () => void) => {
      try {
        f()
        return false
      } catch (e) {
        return isEddyError(e, 'clock_skew')
      }
    })
    expect(() => checkDrift('000000000300000:00000:b', 0, 300_000)).not.toThrow()
  })

  it('property: stamps strictly increase over any interleaving of events, receipts and clock jumps', () => {
    const event = fc.oneof(
      fc.record({ kind: fc.constant('tick' as const), dt: fc.integer({ min: -10_000, max: 10_000 }) }),
      fc.record({ kind: fc.constant('local' as const) }),
      fc.record({
        kind: fc.constant('receive' as const),
        wallOffset: fc.integer({ min: -10_000, max: 10_000 }),
        counter: fc.integer({ min: 0, max: MAX_COUNTER }),
      }),
    )
    fc.assert(
      fc.property(fc.array(event, { maxLength: 200 }), (events) => {
        let t = 1_000_000
        const clock = createHlc({ nodeId: 'n1', now: () => t })
        let last = ''
        for (const e of events) {
          if (e.kind === 'tick') t = Math.max(0, t + e.dt)
          else if (e.kind === 'local') {
            const s = clock.now()
            if (!(s > last)) return false
            last = s
          } else {
            const remote = formatHlc({ wall: Math.max(0, t + e.wallOffset), counter: e.counter, node: 'n2' })
            clock.receive(remote)
            const s = clock.now()
            if (!(s > last && s > remote)) return false
            last = s
          }
        }
        return true
      }),
      { numRuns: 300 },
    )
  })
})

describe('the wall of a stamp', () => {
  it('reads the wall of any stamp, and nothing from text that is not one', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10 ** 15 - 1 }),
        fc.integer({ min: 0, max: MAX_COUNTER }),
        (wall, counter) => {
          expect(wallOf(formatHlc({ wall, counter, node: 'n' }))).toBe(wall)
        },
      ),
    )
    expect(wallOf('12345')).toBeUndefined()
    expect(wallOf('00000000000012a:00000:n')).toBeUndefined()
    expect(wallOf('0000000000001234:0000:n')).toBeUndefined()
  })

  it('gives a prefix that every earlier stamp sorts below and no later one', () => {
    const at = formatHlc({ wall: 1_700_000_000_000, counter: 0, node: 'a' })
    const before = formatHlc({ wall: 1_699_999_999_999, counter: MAX_COUNTER, node: 'z' })
    const prefix = hlcWallPrefix(1_700_000_000_000)
    expect(before < prefix).toBe(true)
    expect(at < prefix).toBe(false)
    expect(hlcWallPrefix(-5)).toBe('000000000000000')
  })
})
