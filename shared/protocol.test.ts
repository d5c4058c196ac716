import { createHash } from 'node:crypto'
import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { describeSchema, PROTOCOL_VERSION, pushBody, WIRE_SCHEMAS } from './protocol.ts'

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
})
