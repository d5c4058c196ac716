import { EddyError } from '../../shared/errors.ts'
import type { Table } from '../../shared/schema.ts'
import { physicalPage } from './arrow-page.ts'
import type { DuckDbDdl } from './duckdb-ddl.ts'
import type { DuckDbSession } from './duckdb-session.ts'
import { affectedRows, castCol, ident, isKeyConflict, physical } from './duckdb-sql.ts'
import { dropSyncedTombstones } from './duckdb-upsert.ts'

/**
 * The first try of a bulk load (inside the caller's transaction): when none of the page's keys
 * is stored (a first load, and its later pages too: a key comes back in a later page only if it
 * changed meanwhile), the page is appended to the physical table as it is, tombstones included,
 * and a page that carried tombstones then drops them (the upsert's outcome when no key matches:
 * a tombstone has nothing to delete). A stored key makes the append fail on the primary key, and
 * the caller rolls back and loads the page again through `upsertStaged`, which never lets
 * an older pulled row overwrite a pending local write and whose tombstones delete. Returns the
 * live rows appended.
 */
async function appendPage(s: DuckDbSession, ddl: DuckDbDdl, t: Table, ipc: Uint8Array): Promise<number> {
  const columns = await ddl.physicalColumns(t)
  const page = physicalPage(ipc, columns, Date.now())
  if (page === undefined) throw new EddyError('protocol', `Arrow load of '${t.name}' has no _hlc column`)
  if (page.rows === 0) return 0
  await s.conn.insertArrowFromIPCStream(page.ipc, { name: physical(t), create: false })
  if (page.tombstones > 0) await dropSyncedTombstones(s, t)
  return page.rows - page.tombstones
}

/**
 * Upserts a staged Arrow page into a table's physical table (inside the caller's transaction):
 * the path of a page that meets stored keys. A pulled row never overwrites a pending local write
 * with a greater stamp, and its tombstones delete.
 */
async function upsertStaged(s: DuckDbSession, t: Table, name: string): Promise<number> {
  const target = ident(physical(t))
  const stagedCols = new Set(await s.columnsOf(name))
  if (!stagedCols.has('_hlc')) throw new EddyError('protocol', `Arrow load of '${t.name}' has no _hlc column`)
  const cols = t.columns.filter((c) => stagedCols.has(c.name))
  const deleted = stagedCols.has('_deleted') ? 'CAST(s._deleted AS BOOLEAN)' : 'false'
  const res = await s.run(
    `INSERT INTO ${target} (${[...cols.map((c) => ident(c.name)), '_hlc', '_deleted', '_needs_sync', '_synced_at'].join(', ')})
       SELECT ${[...cols.map((c) => castCol(c)), 'CAST(s._hlc AS VARCHAR)', deleted, 'false', 'CAST(now() AS TIMESTAMP)'].join(', ')}
       FROM ${ident(name)} AS s
       ON CONFLICT DO UPDATE SET ${[
         ...cols.filter((c) => !c.primaryKey).map((c) => `${ident(c.name)} = excluded.${ident(c.name)}`),
         '_hlc = excluded._hlc',
         '_deleted = excluded._deleted',
         '_needs_sync = false',
         '_synced_at = excluded._synced_at',
       ].join(', ')} WHERE excluded._hlc >= ${target}._hlc OR NOT ${target}._needs_sync`,
  )
  await dropSyncedTombstones(s, t)
  return affectedRows(res)
}

/**
 * Stages `ipc` (DuckDB takes its buffer), runs `load` on it and drops the staging table, inside
 * the caller's transaction: when `load` fails, the caller's rollback removes the table (DuckDB
 * refuses any further statement in a failed transaction).
 */
async function withStaged(
  s: DuckDbSession,
  ipc: Uint8Array,
  load: (name: string) => Promise<number>,
): Promise<number> {
  const name = s.stageName()
  await s.conn.insertArrowFromIPCStream(ipc, { name, create: true })
  const out = await load(name)
  await s.conn.query(`DROP TABLE ${ident(name)}`)
  return out
}

/**
 * Loads one Arrow pull page: appended as it is when none of its keys is stored, else upserted.
 * DuckDB-WASM transfers the buffer it is given to its worker: the caller's `ipc` is detached
 * afterwards. The first try appends a rewritten copy, so that a page whose keys are stored can be
 * staged again for the upsert.
 */
export async function loadArrowPage(
  s: DuckDbSession,
  ddl: DuckDbDdl,
  t: Table,
  ipc: Uint8Array,
): Promise<number> {
  try {
    return await s.inTransaction('bulk load', () => appendPage(s, ddl, t, ipc))
  } catch (e) {
    if (!(e instanceof EddyError && isKeyConflict(e.cause))) throw e
  }
  return s.inTransaction('bulk load', () => withStaged(s, ipc, (name) => upsertStaged(s, t, name)))
}
