import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { demoSchema } from '../demo/schema.ts'
import { bucketHashes, bucketOf, canonicalKey } from './digest.ts'

const orders = demoSchema.table('orders')

describe('digest', () => {
  it('gives equal hashes for equal sets in any order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ keyText: fc.string(), hlc: fc.string() }), {
          selector: (e) => e.keyText,
          maxLength: 50,
        }),
        fc.infiniteStream(fc.nat()),
        (entries, _) => {
          const shuffled = [...entries].reverse()
          expect(bucketHashes(shuffled, 8)).toEqual(bucketHashes(entries, 8))
        },
      ),
    )
  })

  it('changes exactly the bucket of a changed hlc', () => {
    const entries = Array.from({ length: 200 }, (_, i) => ({
      keyText: canonicalKey(orders, { order_id: `k${i}` }),
      hlc: `h${i}`,
    }))
    const before = bucketHashes(entries, 16)
    const changed = entries.map((e, i) => (i === 17 ? { ...e, hlc: 'other' } : e))
    const after = bucketHashes(changed, 16)
    const diff = before.flatMap((b, i) => (b === after[i] ? [] : [i]))
    expect(diff).toEqual([bucketOf(entries[17]?.keyText ?? '', 16)])
  })

  it('canonicalises keys in primary-key order, bigints as numbers or strings', () => {
    expect(canonicalKey(orders, { order_id: 'a' })).toBe('["a"]')
    const t = { primaryKey: ['a', 'b'] } as unknown as Parameters<typeof canonicalKey>[0]
    expect(canonicalKey(t, { b: 2n, a: 9007199254740993n })).toBe('["9007199254740993",2]')
  })

  it('writes a one-column key exactly as the general form (a one-element JSON array)', () => {
    const one = { primaryKey: ['k'] } as unknown as Parameters<typeof canonicalKey>[0]
    const general = (v: unknown): string =>
      JSON.stringify([
        typeof v === 'bigint' ? (Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()) : (v ?? null),
      ])
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.bigInt(), fc.constant(undefined), fc.string()), (v) => {
        expect(canonicalKey(one, { k: v })).toBe(general(v))
      }),
      { numRuns: 500 },
    )
    expect(canonicalKey(one, {})).toBe('[null]')
  })
})
