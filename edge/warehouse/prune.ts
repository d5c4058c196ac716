import { hlcWallPrefix } from '../../shared/hlc.ts'
import type { Schema } from '../../shared/schema.ts'
import { quoteIdent } from './column-codec.ts'
import { isTrue, param, timestampParam, type WarehouseDialect } from './dialect.ts'

/** What `Warehouse.prune` is asked to drop. */
export interface PruneOptions {
  readonly keepEvents?: number | undefined
  readonly maxAgeMs?: number | undefined
  readonly now: number
}

/** A statement and its parameters. */
export interface Statement {
  readonly sql: string
  readonly params: ReadonlyArray<string | number>
}

/**
 * The statements of one prune, for every store: audit events past the newest `keepEvents` or older
 * than `maxAgeMs`, and tombstones whose stamp is older than `maxAgeMs` (live rows are never
 * dropped). The caller runs them as one write, serialised with the others: dropping a tombstone
 * changes what a write would read.
 */
export function pruneStatements(schema: Schema, dialect: WarehouseDialect, opts: PruneOptions): Statement[] {
  const out: Statement[] = []
  const p1 = param(dialect, 1)
  if (opts.keepEvents !== undefined) {
    // ids grow with time: everything at or below the first id past the newest `keepEvents` goes
    out.push({
      sql: `DELETE FROM _eddy_sync_events
            WHERE id <= (SELECT id FROM _eddy_sync_events ORDER BY id DESC LIMIT 1 OFFSET ${p1})`,
      params: [opts.keepEvents],
    })
  }
  if (opts.maxAgeMs !== undefined) {
    const cutoff = opts.now - opts.maxAgeMs
    out.push({
      sql: `DELETE FROM _eddy_sync_events WHERE received_at < ${timestampParam(dialect, 1)}`,
      params: [new Date(cutoff).toISOString()],
    })
    // a tombstone's age is its stamp's wall time, which leads the stamp's text
    const stamp = hlcWallPrefix(cutoff)
    for (const table of schema.tables.values()) {
      out.push({
        sql: `DELETE FROM ${quoteIdent(table.name)} WHERE ${isTrue(dialect, '_deleted')} AND _hlc < ${p1}`,
        params: [stamp],
      })
    }
  }
  return out
}
