import { describe, expect, it } from 'vitest'
import type { ConflictRecord } from '../../shared/protocol.ts'
import { defineSchema } from '../../shared/schema.ts'
import { conflictInTenant } from './tenant.ts'

const schema = defineSchema({
  tables: {
    notes: {
      primaryKey: ['org', 'id'],
      columns: { org: { type: 'text' }, id: { type: 'integer' }, body: { type: 'text' } },
      tenantColumn: 'org',
    },
    shared: { primaryKey: ['id'], columns: { id: { type: 'integer' } } },
  },
})

const record = (table: string, key: ConflictRecord['key'], incoming: ConflictRecord['incoming'] = null) => ({
  id: 1,
  table,
  key,
  stored: null,
  incoming,
  hlc: '001700000000000:00000:c',
  detectedAt: '2026-01-01T00:00:00.000Z',
})

describe('conflictInTenant', () => {
  it("shows a scoped table's conflict to the tenant its key names, and to no other", () => {
    const c = record('notes', { org: 'acme', id: 1 })
    expect(conflictInTenant(schema, c, 'acme', 'acme')).toBe(true)
    expect(conflictInTenant(schema, c, 'globex', 'acme')).toBe(false)
    expect(conflictInTenant(schema, c, null, undefined)).toBe(false)
    expect(conflictInTenant(schema, c, undefined, 'acme')).toBe(true)
  })

  it('goes by the key, not by what the values or the pusher claim', () => {
    const c = record('notes', { org: 'acme', id: 1 }, { org: 'globex', id: 1, body: 'x' })
    expect(conflictInTenant(schema, c, 'globex', 'globex')).toBe(false)
  })

  it('shows a record naming no tenant, or an undeclared table, only to the unscoped view', () => {
    expect(conflictInTenant(schema, record('notes', { id: 1 }), 'acme', 'acme')).toBe(false)
    expect(conflictInTenant(schema, record('dropped', { id: 1 }), 'acme', 'acme')).toBe(false)
    expect(conflictInTenant(schema, record('dropped', { id: 1 }), undefined, 'acme')).toBe(true)
  })

  it("shows a shared table's conflict to the tenant whose caller pushed the losing write", () => {
    const c = record('shared', { id: 1 }, { id: 1 })
    expect(conflictInTenant(schema, c, 'acme', 'acme')).toBe(true)
    expect(conflictInTenant(schema, c, 'globex', 'acme')).toBe(false)
    expect(conflictInTenant(schema, c, null, 'acme')).toBe(false)
    expect(conflictInTenant(schema, c, null, undefined)).toBe(true)
    expect(conflictInTenant(schema, c, 'acme', undefined)).toBe(false)
    expect(conflictInTenant(schema, c, undefined, 'acme')).toBe(true)
  })
})
