import { EddyError } from '../../shared/errors.ts'
import type { Change } from '../../shared/protocol.ts'
import type { Row, Table } from '../../shared/schema.ts'
import type { DuckDbSession } from './duckdb-session.ts'
import { appendTo, encodeRow, ident, keyMatch, keyTexts, literal, oneByKey, physical } from './duckdb-sql.ts'
import { dropSyncedTombstones, upsert } from './duckdb-upsert.ts'

/**
 * Applies pulled changes in one transaction (the newest change per key; never over a pending
 * local write with a greater stamp). Returns the tables that changed.
 */
export function applyRemoteChanges(
  s: DuckDbSession,
  changes: readonly Change[],
  tables: ReadonlyMap<string, Table>,
): Promise<Set<string>> {
  return s.inTransaction('pull', async () => {
    const changed = new Set<string>()
    const byTable = new Map<string, Change[]>()
    for (const c of changes) appendTo(byTable, c.table, c)
    for (const [name, cs] of byTable) {
      const t = tables.get(name)
      if (t === undefined) throw new EddyError('unknown_table', `pulled a change for unknown table '${name}'`)
      const newest = oneByKey(
        t,
        cs,
        (c) => c.key,
        (a, b) => a.hlc > b.hlc,
      )
      const n = await upsert(
        s,
        t,
        newest.map((c) => ({ values: encodeRow(t, c.row, c.key), hlc: c.hlc, deleted: c.row === null })),
        'remote',
      )
      await dropSyncedTombstones(s, t)
      if (n > 0) changed.add(name)
    }
    return changed
  })
}

/** Clears `_needs_sync` of rows still at the given stamps, in one transaction; drops synced tombstones. */
export function markRowsSynced(
  s: DuckDbSession,
  t: Table,
  rows: ReadonlyArray<{ key: Row; hlc: string }>,
  syncedAt: string,
): Promise<void> {
  return s.inTransaction('mark synced', async () => {
    if (rows.length === 0) return
    const names = [...t.primaryKey, '_hlc']
    const src = await s.source(
      names,
      rows.map((r) => [...keyTexts(t, r.key), r.hlc]),
    )
    try {
      const target = ident(physical(t))
      await s.conn.query(
        `UPDATE ${target} AS t SET _needs_sync = false, _synced_at = CAST(${literal(syncedAt)} AS TIMESTAMP)
           FROM ${src.from} WHERE ${keyMatch(t, 't')} AND t._hlc = s._hlc`,
      )
    } finally {
      await src.drop()
    }
    await dropSyncedTombstones(s, t)
  })
}
