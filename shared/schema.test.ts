import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { demoSchema } from '../demo/schema.ts'
import { EddyError } from './errors.ts'
import { defineSchema, type SchemaSpec } from './schema.ts'
import { loadSchemaYaml } from './schema-yaml.ts'

function errorOf(f: () => unknown): EddyError {
  try {
    f()
  } catch (e) {
    if (e instanceof EddyError) return e
    throw e
  }
  throw new Error('expected an EddyError')
}

const strip = (s: ReturnType<typeof defineSchema>) =>
  [...s.tables.values()].map((t) => ({ ...t, columnsByName: [...t.columnsByName.keys()] }))

describe('schema', () => {
  it('fills in defaults for the demo schema', () => {
    const orders = demoSchema.table('orders')
    expect(orders.primaryKey).toEqual(['order_id'])
    expect(orders.sync).toBe('write-back')
    expect(orders.columnsByName.get('customer_id')?.required).toBe(true)
    const products = demoSchema.table('products')
    expect(products.scheduleMs).toBe(300_000)
    expect(products.columnsByName.get('unit_price')).toMatchObject({
      type: 'decimal',
      precision: 10,
      scale: 2,
      merge: 'max',
    })
    expect(demoSchema.table('metrics').invalidateOnWrite).toBe(true)
    expect(demoSchema.maxClockDriftMs).toBe(300_000)
  })

  it('loads the YAML form (flAPI kebab-case keys) to the same schema', () => {
    const fromYaml = loadSchemaYaml(readFileSync(new URL('../demo/schema.yaml', import.meta.url), 'utf8'))
    expect(strip(fromYaml)).toEqual(strip(demoSchema))
  })

  it('names the offending path of a bad regex', () => {
    const e = errorOf(() =>
      loadSchemaYaml(`
tables:
  orders:
    primary-key: [order_id]
    columns:
      order_id: { type: text }
      total_amount: { type: text, validators: [{ type: string, regex: '([' }] }
`),
    )
    expect(e.code).toBe('invalid_schema')
    expect(e.message).toBe(
      'tables.orders.columns.total_amount.validators[0].regex: not a valid regular expression',
    )
  })

  const bad: Array<[string, unknown, RegExp]> = [
    [
      'unknown key',
      { tables: { t: { primaryKey: ['id'], columns: { id: { type: 'text' } }, sink: 'x' } } },
      /tables\.t\.sink: unknown key/,
    ],
    [
      'missing pk column',
      { tables: { t: { primaryKey: ['nope'], columns: { id: { type: 'text' } } } } },
      /primaryKey: names 'nope'/,
    ],
    [
      'bad type',
      { tables: { t: { primaryKey: ['id'], columns: { id: { type: 'varchar' } } } } },
      /columns\.id\.type: unknown type/,
    ],
    [
      'bad identifier',
      { tables: { 'x; drop table y': { primaryKey: ['id'], columns: { id: { type: 'text' } } } } },
      /lower-case identifiers/,
    ],
    [
      'system column',
      { tables: { t: { primaryKey: ['id'], columns: { id: { type: 'text' }, _hlc: { type: 'text' } } } } },
      /columns\._hlc/,
    ],
    [
      'merge rule without merge',
      {
        tables: {
          t: { primaryKey: ['id'], columns: { id: { type: 'text' }, n: { type: 'integer', merge: 'max' } } },
        },
      },
      /conflict strategy/,
    ],
    [
      'concat on a number',
      {
        tables: {
          t: {
            primaryKey: ['id'],
            conflict: 'merge',
            columns: { id: { type: 'text' }, n: { type: 'integer', merge: 'concat' } },
          },
        },
      },
      /text column/,
    ],
    [
      'bad schedule',
      {
        tables: {
          t: { primaryKey: ['id'], sync: 'hybrid', schedule: 'soon', columns: { id: { type: 'text' } } },
        },
      },
      /schedule: not a duration/,
    ],
    [
      'schedule on write-back',
      { tables: { t: { primaryKey: ['id'], schedule: '5m', columns: { id: { type: 'text' } } } } },
      /only hybrid/,
    ],
    [
      'bad sync',
      { tables: { t: { primaryKey: ['id'], sync: 'sometimes', columns: { id: { type: 'text' } } } } },
      /sync: must be one of/,
    ],
    [
      'bad validator',
      {
        tables: {
          t: { primaryKey: ['id'], columns: { id: { type: 'text', validators: [{ type: 'magic' }] } } },
        },
      },
      /validators\[0\]\.type: unknown validator/,
    ],
    [
      'empty enum',
      {
        tables: {
          t: {
            primaryKey: ['id'],
            columns: { id: { type: 'text', validators: [{ type: 'enum', allowedValues: [] }] } },
          },
        },
      },
      /allowedValues/,
    ],
    [
      'bad tenant',
      { tables: { t: { primaryKey: ['id'], tenantColumn: 'org', columns: { id: { type: 'text' } } } } },
      /tables\.t\.tenantColumn: must name a declared column/,
    ],
    [
      'tenant outside the key',
      {
        tables: {
          t: {
            primaryKey: ['id'],
            tenantColumn: 'org',
            columns: { id: { type: 'text' }, org: { type: 'text' } },
          },
        },
      },
      /^tables\.t\.tenantColumn: 'org' must be part of the primary key$/,
    ],
    ['no tables', { tables: {} }, /tables: must declare/],
  ]
  it.each(bad)('rejects %s with its path', (_, spec, message) => {
    const e = errorOf(() => defineSchema(spec as SchemaSpec))
    expect(e.code).toBe('invalid_schema')
    expect(e.message).toMatch(message)
  })

  it('answers unknown_table for undeclared tables, including prototype names', () => {
    expect(errorOf(() => demoSchema.table('nope')).code).toBe('unknown_table')
    expect(errorOf(() => demoSchema.table('__proto__')).code).toBe('unknown_table')
    expect(errorOf(() => demoSchema.table('constructor')).code).toBe('unknown_table')
  })

  it('accepts a tenant column in the key and names the path of one outside it, in YAML too', () => {
    const yaml = (key: string): string => `
tables:
  notes:
    primary-key: ${key}
    tenant-column: org
    columns:
      org: { type: text }
      id: { type: integer }
`
    expect(loadSchemaYaml(yaml('[org, id]')).table('notes').tenantColumn).toBe('org')
    const e = errorOf(() => loadSchemaYaml(yaml('[id]')))
    expect(e.code).toBe('invalid_schema')
    expect(e.message).toBe("tables.notes.tenantColumn: 'org' must be part of the primary key")
  })

  it('rejects invalid YAML with a clear error', () => {
    expect(errorOf(() => loadSchemaYaml('tables: [')).message).toMatch(/not valid YAML/)
  })
})
