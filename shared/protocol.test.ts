import { createHash } from 'node:crypto'
import fc from 'fast-check'
import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { describeSchema, isPushBody, PROTOCOL_VERSION, pushBody, WIRE_SCHEMAS } from './protocol.ts'

describe('protocol', () => {
  it('pins the wire schemas: a change needs a PROTOCOL_VERSION line and a new pin', () => {
    const all = JSON.stringify(Object.entries(WIRE_SCHEMAS).map(([k, s]) => [k, describeSchema(s)]))
    // the description must see inside pipes (a regex change alone must move the hash)
    expect(all).toContain('A-Za-z0-9_-]{1,64}')
    const hash = createHash('sha256').update(all).digest('hex').slice(0, 16)
    expect({ version: PROTOCOL_VERSION, hash }).toEqual({ version: 1, hash: '40d6e04fd1effcfb' })
  })

  it('accepts the example push of PROTOCOL.md', () => {
    const body = {
      clientId: 'tab-7f3c',
      mutations: [
        {
          seq: 41,
          table: 'orders',
          op: 'upsert',
          key: { order_id: 1001 },
          values: { customer_id: 7, total_amount: '12.50' },
          hlc: '001795000000000:00001:tab-7f3c',
        },
        {
          seq: 42,
          table: 'orders',
          op: 'delete',
          key: { order_id: 999 },
          hlc: '001795000000100:00000:tab-7f3c',
          tx: 't-17',
        },
      ],
    }
    expect(v.safeParse(pushBody, body).success).toBe(true)
  })

  it.each([
    ['bad clientId', { clientId: 'a b', mutations: [] }],
    [
      'seq zero',
      {
        clientId: 'a',
        mutations: [{ seq: 0, table: 't', op: 'upsert', key: {}, hlc: '001795000000000:00001:a' }],
      },
    ],
    [
      'fractional seq',
      {
        clientId: 'a',
        mutations: [{ seq: 1.5, table: 't', op: 'upsert', key: {}, hlc: '001795000000000:00001:a' }],
      },
    ],
    [
      'bad op',
      {
        clientId: 'a',
        mutations: [{ seq: 1, table: 't', op: 'merge', key: {}, hlc: '001795000000000:00001:a' }],
      },
    ],
    [
      'garbage hlc',
      { clientId: 'a', mutations: [{ seq: 1, table: 't', op: 'upsert', key: {}, hlc: 'yesterday' }] },
    ],
    ['extra field', { clientId: 'a', mutations: [], extra: 1 }],
    ['not an object', [1, 2]],
  ])('rejects %s', (_, body) => {
    expect(v.safeParse(pushBody, body).success).toBe(false)
  })

  it('isPushBody accepts only what pushBody accepts, and every well-formed push', () => {
    const hlc = '001795000000000:00001:a'
    const pick = <T>(good: T[], bad: unknown[]): fc.Arbitrary<unknown> =>
      fc.oneof(
        { arbitrary: fc.constantFrom(...good), weight: 4 },
        { arbitrary: fc.constantFrom(...bad), weight: 1 },
      )
    const field = {
      seq: pick([1, 7, 2 ** 53 - 1], [0, -1, 1.5, '1', 2 ** 53, null]),
      table: pick(['orders', 'x'.repeat(128)], ['', 'x'.repeat(129), 3, null]),
      op: pick(['upsert', 'delete'], ['merge', 'UPSERT', null]),
      key: pick([{ id: 1 }, {}], [null, [1], 'k', 1]),
      values: pick([undefined, { a: 1 }, {}], [null, [], 'v']),
      hlc: pick([hlc, `001795000000000:00001:${'n'.repeat(64)}`], ['yesterday', `${hlc} `, 1, null]),
      tx: pick([undefined, 't-1'], ['', 'x'.repeat(129), 1, null]),
      extra: pick([undefined], [1, null, 'x']),
    }
    const mutation = fc.record(field).map((m) => {
      const out: Record<string, unknown> = {}
      for (const [k, x] of Object.entries(m)) if (x !== undefined) out[k] = x
      return out
    })
    const body = fc.record({
      clientId: pick(['tab-7f3c', 'a'.repeat(64)], ['a b', '', 'a'.repeat(65), 7]),
      mutations: fc.oneof(fc.array(mutation, { maxLength: 4 }), fc.constantFrom(null, {}, 'm')),
      extra: pick([undefined], [1]),
    })
    const inputs = fc.oneof(
      body.map((b) => JSON.parse(JSON.stringify(b)) as unknown),
      fc.constantFrom(null, [], 'x', 1, JSON.parse('{"clientId":"a","mutations":[],"__proto__":{}}')),
    )
    let accepted = 0
    fc.assert(
      fc.property(inputs, (x) => {
        const valid = v.safeParse(pushBody, x).success
        if (isPushBody(x)) {
          accepted += 1
          expect(valid).toBe(true)
        } else {
          expect(valid, JSON.stringify(x)).toBe(false)
        }
      }),
      { numRuns: 3000 },
    )
    expect(accepted).toBeGreaterThan(100)
  })
})
