import { describe, expect, it } from 'vitest'
import type { ConflictRecord } from '../shared/protocol.ts'
import { defineSchema } from '../shared/schema.ts'
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
    expect(conflictInTenant(schema, c, 'acme')).toBe(true)
    expect(conflictInTenant(schema, c, 'globex')).toBe(false)
    expect(conflictInTenant(schema, c, undefined)).toBe(true)
  })

  it('goes by the key, not by what the values claim', () => {
    const c = record('notes', { org: 'acme', id: 1 }, { org: 'globex', id: 1, body: 'x' })
    expect(conflictInTenant(schema, c, 'globex')).toBe(false)
  })

  it('shows a record naming no tenant, or an undeclared table, to no tenant', () => {
    expect(conflictInTenant(schema, record('notes', { id: 1 }), 'acme')).toBe(false)
    expect(conflictInTenant(schema, record('dropped', { id: 1 }), 'acme')).toBe(false)
    expect(conflictInTenant(schema, record('dropped', { id: 1 }), undefined)).toBe(true)
  })

  it('shows conflicts of shared tables to every tenant', () => {
    expect(conflictInTenant(schema, record('shared', { id: 1 }), 'acme')).toBe(true)
  })
})
