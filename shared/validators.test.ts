import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { demoSchema } from '../demo/schema.ts'
import { defineSchema } from './schema.ts'
import { validateValue, validateWrite, validateWriteFully } from './validators.ts'

const orders = demoSchema.table('orders')
const ID = '3f2c1a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60'

describe('validateWrite', () => {
  it('accepts a good order and returns canonical values', () => {
    const r = validateWrite(
      orders,
      'upsert',
      { order_id: ID.toUpperCase() },
      {
        customer_id: 7,
        total_amount: '12.50',
        status: 'paid',
        created_at: '2026-01-02 03:04:05',
      },
    )
    expect(r.errors).toEqual([])
    expect(r.key).toEqual({ order_id: ID.toUpperCase() })
    expect(r.values.created_at).toBe('2026-01-02T03:04:05.000Z')
  })

  it('returns every field error with code, field and message', () => {
    const r = validateWrite(
      orders,
      'upsert',
      { order_id: 'not-a-uuid' },
      {
        customer_id: 0,
        total_amount: '12.5',
        status: 'lost',
        nope: 1,
      },
    )
    expect(r.errors.map((e) => [e.code, e.field])).toEqual([
      ['invalid_value', 'order_id'],
      ['invalid_value', 'customer_id'],
      ['invalid_value', 'total_amount'],
      ['invalid_value', 'status'],
      ['unknown_column', 'nope'],
    ])
    expect(r.errors[1]?.message).toBe('customer_id must be at least 1')
  })

  it('checks the key: missing, extra and mismatched columns', () => {
    expect(validateWrite(orders, 'delete', {}, undefined).errors[0]).toMatchObject({
      field: 'order_id',
      code: 'invalid_value',
    })
    expect(validateWrite(orders, 'delete', { order_id: ID, x: 1 }, undefined).errors[0]).toMatchObject({
      field: 'x',
      code: 'unknown_column',
    })
    const other = '00000000-0000-4000-8000-000000000000'
    expect(validateWrite(orders, 'upsert', { order_id: ID }, { order_id: other }).errors[0]?.message).toMatch(
      /differs/,
    )
  })

  it('does not let __proto__ or constructor through as columns', () => {
    const values = JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1}') as Record<
      string,
      unknown
    >
    const r = validateWrite(orders, 'upsert', { order_id: ID }, values)
    expect(r.errors.map((e) => e.field).sort()).toEqual(['__proto__', 'constructor'])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  const typed = defineSchema({
    tables: {
      t: {
        primaryKey: ['id'],
        columns: {
          id: { type: 'bigint' },
          i: { type: 'integer' },
          d: { type: 'decimal(6,2)' },
          f: { type: 'double' },
          b: { type: 'boolean' },
          day: { type: 'date' },
          ts: { type: 'timestamp' },
          j: { type: 'json' },
          s: { type: 'text', validators: [{ type: 'string', minLength: 2, maxLength: 4 }] },
          e: { type: 'text', validators: [{ type: 'email' }] },
          tm: { type: 'text', validators: [{ type: 'time' }] },
          n: { type: 'double', validators: [{ type: 'number', min: 0, max: 1 }] },
        },
      },
    },
  }).table('t')

  it.each([
    ['i', 1.5],
    ['i', 2 ** 31],
    ['i', '3'],
    ['d', '12.345'],
    ['d', '12345.6'],
    ['d', 'abc'],
    ['f', Number.NaN],
    ['f', Number.POSITIVE_INFINITY],
    ['b', 'true'],
    ['day', '2026-02-30'],
    ['ts', 'yesterday'],
    ['s', 'x'],
    ['s', 'xxxxx'],
    ['e', 'a@b'],
    ['tm', '25:00'],
    ['n', 2],
    ['s', 'a\u0000b'],
    ['s', '\ud800x'],
  ])('rejects %s = %j', (field, value) => {
    const r = validateWrite(typed, 'upsert', { id: 1 }, { [field]: value })
    expect(r.errors.map((e) => e.field)).toEqual([field])
  })

  it('normalises decimals and big integers', () => {
    const r = validateWrite(
      typed,
      'upsert',
      { id: '9007199254740993' },
      { d: 12.5, j: { a: [1, 2] }, tm: '12:30', n: 0.5, b: false },
    )
    expect(r.errors).toEqual([])
    expect(r.key.id).toBe('9007199254740993')
    expect(r.values.d).toBe('12.50')
    expect(validateWrite(typed, 'upsert', { id: 1 }, { d: '-0.5' }).values.d).toBe('-0.50')
    expect(validateWrite(typed, 'upsert', { id: '9223372036854775808' }, {}).errors[0]?.field).toBe('id')
  })

  it('allows null values (required is checked on the whole row)', () => {
    expect(validateWrite(orders, 'upsert', { order_id: ID }, { status: null }).errors).toEqual([])
  })

  it('answers exactly as the general path does, for good and bad writes alike', () => {
    const u = typed.columnsByName
    const uuidTable = defineSchema({
      tables: {
        u: {
          primaryKey: ['k'],
          columns: {
            k: { type: 'uuid' },
            v: { type: 'integer', validators: [{ type: 'int', min: 1 }] },
            st: { type: 'text', validators: [{ type: 'enum', allowedValues: ['a', 'b'] }] },
            re: { type: 'text', validators: [{ type: 'string', regex: '^\\d+(\\.\\d{2})?$' }] },
            at: { type: 'timestamp' },
          },
        },
      },
    }).table('u')
    const anyValue = fc.oneof(
      fc.integer({ min: -(2 ** 32), max: 2 ** 32 }),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.string({ maxLength: 6 }),
      fc.constantFrom('12.50', '7', 'a', 'b', 'x\u0000', '\ud800', '1.5', '-0.5', '9007199254740993'),
      fc.uuid().map((x) => x.toUpperCase()),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.constantFrom('2024-02-29T12:00:00.000Z', '2023-02-29T12:00:00.000Z', '2026-01-02 03:04:05', '12:30'),
      fc.dictionary(fc.string({ maxLength: 2 }), fc.integer(), { maxKeys: 2, noNullPrototype: true }),
    )
    for (const table of [typed, uuidTable]) {
      const names = [...(table === typed ? u.keys() : table.columnsByName.keys()), 'nope', '__proto__']
      const keyName = table.primaryKey[0] ?? ''
      const write = fc.record({
        op: fc.constantFrom('upsert' as const, 'delete' as const),
        key: fc.oneof(
          fc.record({ [keyName]: anyValue }, { noNullPrototype: true }),
          fc.dictionary(fc.constantFrom(...names), anyValue, { maxKeys: 2, noNullPrototype: true }),
        ),
        values: fc.option(
          fc.dictionary(fc.constantFrom(...names), anyValue, { maxKeys: 6, noNullPrototype: true }),
          {
            nil: undefined,
          },
        ),
      })
      fc.assert(
        fc.property(write, ({ op, key, values }) => {
          const fast = validateWrite(table, op, key, values)
          const full = validateWriteFully(table, op, key, values)
          expect(fast).toEqual(full)
          expect(Object.keys(fast.values)).toEqual(Object.keys(full.values))
        }),
        { numRuns: 3000 },
      )
    }
  })

  it('canonicalises timestamps exactly as parsing and toISOString() do, in range or not', () => {
    const col = typed.columnsByName.get('ts')
    if (col === undefined) throw new Error('no ts column')
    // the general rule: an ISO 8601 string, parsed, in years 1..9999, written back by toISOString()
    const reference = (s: string): string | undefined => {
      const d = new Date(s)
      return Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1 || d.getUTCFullYear() > 9999
        ? undefined
        : d.toISOString()
    }
    const pad = (n: number, w: number): string => String(n).padStart(w, '0')
    const shaped = fc
      .tuple(
        fc.integer({ min: 0, max: 9999 }),
        fc.integer({ min: 0, max: 13 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 25 }),
        fc.integer({ min: 0, max: 61 }),
        fc.integer({ min: 0, max: 61 }),
        fc.integer({ min: 0, max: 999 }),
      )
      .map(
        ([y, mo, d, h, mi, s, ms]) =>
          `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}T${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}.${pad(ms, 3)}Z`,
      )
    fc.assert(
      fc.property(shaped, (s) => {
        const r = validateValue(col, s)
        const want = reference(s)
        if (want === undefined) expect(r.errors.map((e) => e.field)).toEqual(['ts'])
        else expect([r.errors, r.value]).toEqual([[], want])
      }),
      { numRuns: 3000 },
    )
    for (const s of ['2024-02-29T12:00:00.000Z', '2023-02-29T12:00:00.000Z', '1900-02-29T00:00:00.000Z']) {
      const r = validateValue(col, s)
      expect(r.errors.length === 0 ? r.value : undefined).toBe(reference(s))
    }
  })
})
