import type { Table } from '../../shared/schema.ts'
import type { DuckDbSession } from './duckdb-session.ts'
import { affectedRows, castCol, ident, physical } from './duckdb-sql.ts'

/** Encoded rows (`encodeRow`) with their stamp and whether each is a tombstone. */
export type EncodedRows = ReadonlyArray<{ values: Array<string | null>; hlc: string; deleted: boolean }>

/**
 * One upsert of encoded rows into a table's physical table; returns the rows it wrote. `mode`
 * decides the rule: a `local` write is pending (`_needs_sync`) and keeps the row's `_synced_at`; a
 * `remote` (pulled) row replaces the stored one when the stored row has no pending write, or when
 * the pulled hlc is greater or equal: an equal hlc is the same write, now in the warehouse (another
 * tab of the profile pushed it), so the row is no longer pending here either; a `restore` puts
 * back rows as they were, pending or not as `needsSync` says.
 */
export async function upsert(
  s: DuckDbSession,
  t: Table,
  rows: EncodedRows,
  mode: 'local' | 'remote' | 'restore',
  needsSync?: readonly boolean[],
): Promise<number> {
  if (rows.length === 0) return 0
  const names = [...t.columns.map((c) => c.name), '_hlc', '_deleted', '_needs_sync']
  const encoded = rows.map((r, i) => [
    ...r.values,
    r.hlc,
    String(r.deleted),
    String(mode === 'local' ? true : mode === 'remote' ? false : (needsSync?.[i] ?? false)),
  ])
  const src = await s.source(names, encoded)
  try {
    const target = ident(physical(t))
    const cols = [...t.columns.map((c) => ident(c.name)), '_hlc', '_deleted', '_needs_sync', '_synced_at']
    const select = [
      ...t.columns.map((c) => castCol(c)),
      's._hlc',
      'CAST(s._deleted AS BOOLEAN)',
      'CAST(s._needs_sync AS BOOLEAN)',
      mode === 'remote' ? 'CAST(now() AS TIMESTAMP)' : 'NULL',
    ]
    const sets = [
      ...t.columns.filter((c) => !c.primaryKey).map((c) => `${ident(c.name)} = excluded.${ident(c.name)}`),
      '_hlc = excluded._hlc',
      '_deleted = excluded._deleted',
      '_needs_sync = excluded._needs_sync',
      mode === 'local' ? `_synced_at = ${target}._synced_at` : '_synced_at = excluded._synced_at',
    ]
    const where =
      mode === 'remote' ? ` WHERE excluded._hlc >= ${target}._hlc OR NOT ${target}._needs_sync` : ''
    const res = await s.run(
      `INSERT INTO ${target} (${cols.join(', ')}) SELECT ${select.join(', ')} FROM ${src.from}
         ON CONFLICT DO UPDATE SET ${sets.join(', ')}${where}`,
    )
    return affectedRows(res)
  } finally {
    await src.drop()
  }
}

/** Tombstones whose delete is synced have nothing left to say: they go. */
export async function dropSyncedTombstones(s: DuckDbSession, t: Table): Promise<void> {
  await s.conn.query(`DELETE FROM ${ident(physical(t))} WHERE _deleted AND NOT _needs_sync`)
}
