import type { Row, Table } from '../../shared/schema.ts'
import type { CachedRow, LocalWrite } from './cache.ts'
import type { DuckDbSession } from './duckdb-session.ts'
import { appendTo, encodeRow, ident, keyMatch, keyTexts, oneByKey, physical } from './duckdb-sql.ts'
import { upsert } from './duckdb-upsert.ts'

/** Applies a batch of local writes in one transaction, one upsert per table, marked pending. */
export function applyLocalBatch(s: DuckDbSession, batch: readonly LocalWrite[]): Promise<void> {
  return s.inTransaction('write', async () => {
    const byTable = new Map<Table, LocalWrite[]>()
    for (const w of batch) appendTo(byTable, w.table, w)
    for (const [t, ws] of byTable) {
      // the later write of a key in one batch is the one that stands
      const last = oneByKey(t, ws, (w) => w.key)
      await upsert(
        s,
        t,
        last.map((w) => ({ values: encodeRow(t, w.row, w.key), hlc: w.hlc, deleted: w.row === null })),
        'local',
      )
    }
  })
}

/** Undoes local writes in one transaction: each key's row becomes `row` again (or goes). */
export function revertLocalWrites(
  s: DuckDbSession,
  previous: ReadonlyArray<{ table: Table; key: Row; row: CachedRow | undefined }>,
): Promise<void> {
  return s.inTransaction('revert', async () => {
    const byTable = new Map<Table, Array<(typeof previous)[number]>>()
    for (const p of previous) appendTo(byTable, p.table, p)
    for (const [t, ps] of byTable) {
      const keys = ps.map((p) => keyTexts(t, p.key))
      const src = await s.source(t.primaryKey, keys)
      try {
        await s.conn.query(
          `DELETE FROM ${ident(physical(t))} AS t USING ${src.from} WHERE ${keyMatch(t, 't')}`,
        )
      } finally {
        await src.drop()
      }
      const restore = ps.flatMap((p) => (p.row === undefined ? [] : [p.row]))
      const folded = oneByKey(t, restore, (r) => r.values)
      await upsert(
        s,
        t,
        folded.map((r) => ({ values: encodeRow(t, r.values, r.values), hlc: r.hlc, deleted: r.deleted })),
        'restore',
        folded.map((r) => r.needsSync),
      )
    }
  })
}
