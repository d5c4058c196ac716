import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { openDuckDbWarehouse } from '../../edge/warehouse/duckdb/duckdb-warehouse.ts'
import type { Warehouse } from '../../edge/warehouse/warehouse.ts'
import { must } from '../../shared/errors.ts'
import type { Schema } from '../../shared/schema.ts'

/**
 * A real DuckDB warehouse on a temp file, behind a stable `Warehouse` object, that can be checksummed
 * byte for byte: `checksums()` closes the store, reads every table of the file with a separate DuckDB
 * instance (synced tables with their `_hlc`/`_version`/`_client_id` columns, and all bookkeeping),
 * and reopens it. The app under test keeps the same object throughout.
 */
export interface SnapshotWarehouse {
  readonly warehouse: Warehouse
  /** sha256 of every table's full contents (ordered), by table name. */
  checksums(): Promise<Map<string, string>>
  close(): Promise<void>
}

/** Names of tables whose checksum differs between two snapshots (tables added or removed included). */
export function changedTables(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): string[] {
  const names = new Set([...a.keys(), ...b.keys()])
  return [...names].filter((n) => a.get(n) !== b.get(n)).sort()
}

/** JSON with bigints as text, so a checksum covers every value DuckDB returns. */
function stable(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))
}

export async function openSnapshotWarehouse(schema: Schema): Promise<SnapshotWarehouse> {
  const dir = mkdtempSync(join(tmpdir(), 'eddy-hostile-'))
  const path = join(dir, 'warehouse.duckdb')
  let current = await openDuckDbWarehouse({ schema, path })
  await current.migrate()

  const warehouse: Warehouse = {
    get kind() {
      return current.kind
    },
    schema,
    migrate: () => current.migrate(),
    write: (fn) => current.write(fn),
    pull: (req) => current.pull(req),
    // the DuckDB adapter's own Arrow read path and resume cursor, not the fallback through `pull`
    pullColumns: (req) => must(current.pullColumns, 'DuckDB pullColumns').call(current, req),
    highWater: () => must(current.highWater, 'DuckDB highWater').call(current),
    digestEntries: (table, tenant) => current.digestEntries(table, tenant),
    events: (limit, tenant) => current.events(limit, tenant),
    conflicts: (tenant) => current.conflicts(tenant),
    health: () => current.health(),
    prune: (opts) => current.prune(opts),
    close: () => current.close(),
  }

  return {
    warehouse,
    async checksums() {
      await current.close()
      const out = new Map<string, string>()
      const instance = await DuckDBInstance.create(path)
      const conn = await instance.connect()
      try {
        const names = (
          await conn.runAndReadAll(
            `SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1`,
          )
        ).getRowObjectsJS()
        for (const { table_name } of names) {
          const name = String(table_name)
          const rows = (await conn.runAndReadAll(`SELECT * FROM "${name}" ORDER BY ALL`)).getRowObjectsJS()
          out.set(name, createHash('sha256').update(stable(rows)).digest('hex'))
        }
        const seqs = (
          await conn.runAndReadAll(`SELECT sequence_name, last_value FROM duckdb_sequences() ORDER BY 1`)
        ).getRowObjectsJS()
        out.set('(sequences)', createHash('sha256').update(stable(seqs)).digest('hex'))
      } finally {
        conn.closeSync()
        instance.closeSync()
      }
      current = await openDuckDbWarehouse({ schema, path })
      await current.migrate()
      return out
    },
    async close() {
      await current.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
