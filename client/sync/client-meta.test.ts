import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { defineSchema } from '../../shared/schema.ts'
import { forgetCursorIfSchemaChanged, openClientMeta } from './client-meta.ts'

const all = [...demoSchema.tables.values()]
const ordersOnly = [demoSchema.table('orders')]
const withNotes = [
  ...defineSchema({
    tables: {
      orders: {
        ...demoSchema.spec.tables.orders,
        columns: { ...demoSchema.spec.tables.orders.columns, notes: { type: 'text' } },
      },
    },
  }).tables.values(),
]

describe('forgetCursorIfSchemaChanged', () => {
  const profile = () => `meta-${crypto.randomUUID()}`

  it('keeps the cursor while the schema is the one it was saved under', async () => {
    const name = profile()
    const meta = openClientMeta(name)
    expect(await forgetCursorIfSchemaChanged(name, ordersOnly)).toBe(false) // a new profile
    await meta.setCursor('v42')
    expect(await forgetCursorIfSchemaChanged(name, ordersOnly)).toBe(false)
    expect(await meta.cursor()).toBe('v42')
  })

  it('forgets it when a table or a column was added, once', async () => {
    const name = profile()
    const meta = openClientMeta(name)
    await forgetCursorIfSchemaChanged(name, ordersOnly)
    await meta.setCursor('v42')
    expect(await forgetCursorIfSchemaChanged(name, all)).toBe(true)
    expect(await meta.cursor()).toBeUndefined()
    await meta.setCursor('v50')
    expect(await forgetCursorIfSchemaChanged(name, all)).toBe(false)
    expect(await meta.cursor()).toBe('v50')

    const other = profile()
    await forgetCursorIfSchemaChanged(other, ordersOnly)
    await openClientMeta(other).setCursor('v7')
    expect(await forgetCursorIfSchemaChanged(other, withNotes)).toBe(true)
    expect(await openClientMeta(other).cursor()).toBeUndefined()
  })

  it('forgets a cursor saved before shapes were kept', async () => {
    const name = profile()
    await openClientMeta(name).setCursor('v9')
    expect(await forgetCursorIfSchemaChanged(name, all)).toBe(true)
    expect(await openClientMeta(name).cursor()).toBeUndefined()
    expect(await openClientMeta(name).shape()).toBeDefined()
  })
})
