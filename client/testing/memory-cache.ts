import { tableFromIPC } from 'apache-arrow'
import { type ArrowTableLike, arrowToRows } from '../../shared/arrow-rows.ts'
import { canonicalKey } from '../../shared/digest.ts'
import { EddyError } from '../../shared/errors.ts'
import type { Change } from '../../shared/protocol.ts'
import type { Row, Table } from '../../shared/schema.ts'
import type { CachedRow, LocalCache, LocalWrite } from '../cache/cache.ts'

/**
 * client/testing/: test support, never shipped (package.json `files` leaves it out): this
 * Map-based cache and cache-contract.ts, the checks every `LocalCache` must pass.
 *
 * A Map-based `LocalCache` for fast Node unit tests of the engine ONLY. The real cache is
 * DuckDB-WASM (`client/cache/duckdb-cache.ts`). Its `query` understands just enough SQL for tests:
 *   SELECT * | count(*) AS n | col, ... FROM table [WHERE col = ? [AND ...] | WHERE _needs_sync] [ORDER BY col [DESC]]
 * and returns live rows (tombstones hidden) with `_hlc` and `_needs_sync` beside the columns.
 */
interface Entry {
  values: Row
  hlc: string
  deleted: boolean
  needsSync: boolean
  syncedAt: string | null
}

const SELECT =
  /^\s*select\s+(.+?)\s+from\s+([a-z][a-z0-9_]*)(?:\s+where\s+(.+?))?(?:\s+order\s+by\s+([a-z_][a-z0-9_]*)(\s+desc)?)?\s*;?\s*$/is

export class MemoryCache implements LocalCache {
  readonly tables = new Map<string, Map<string, Entry>>()

  private rows(table: Table | string): Map<string, Entry> {
    const name = typeof table === 'string' ? table : table.name
    const m = this.tables.get(name)
    if (m === undefined) throw new EddyError('unknown_table', `no local table '${name}'`)
    return m
  }

  async init(tables: readonly Table[]): Promise<void> {
    for (const t of tables) if (!this.tables.has(t.name)) this.tables.set(t.name, new Map())
  }

  async getRows(table: Table, keys: readonly Row[]): Promise<Map<string, CachedRow>> {
    const m = this.rows(table)
    const out = new Map<string, CachedRow>()
    for (const k of keys) {
      const text = canonicalKey(table, k)
      const e = m.get(text)
      if (e !== undefined)
        out.set(text, { values: { ...e.values }, hlc: e.hlc, deleted: e.deleted, needsSync: e.needsSync })
    }
    return out
  }

  async applyLocal(writes: readonly LocalWrite[]): Promise<void> {
    for (const w of writes) {
      const m = this.rows(w.table)
      const text = canonicalKey(w.table, w.key)
      const old = m.get(text)
      m.set(text, {
        values: w.row === null ? { ...(old?.values ?? w.key) } : { ...w.row },
        hlc: w.hlc,
        deleted: w.row === null,
        needsSync: true,
        syncedAt: old?.syncedAt ?? null,
      })
    }
  }

  async revertLocal(
    previous: ReadonlyArray<{ table: Table; key: Row; row: CachedRow | undefined }>,
  ): Promise<void> {
    for (const p of previous) {
      const m = this.rows(p.table)
      const text = canonicalKey(p.table, p.key)
      if (p.row === undefined) m.delete(text)
      else m.set(text, { ...p.row, values: { ...p.row.values }, syncedAt: m.get(text)?.syncedAt ?? null })
    }
  }

  async applyRemote(changes: readonly Change[], tables: ReadonlyMap<string, Table>): Promise<Set<string>> {
    const changed = new Set<string>()
    for (const c of changes) {
      const t = tables.get(c.table)
      if (t === undefined) continue
      const m = this.rows(t)
      const text = canonicalKey(t, c.key)
      const old = m.get(text)
      // An equal stamp is the same write, now in the warehouse (another tab pushed it): no longer pending.
      if (old?.needsSync && c.hlc < old.hlc) continue
      m.set(text, {
        values: c.row === null ? { ...c.key } : { ...c.row },
        hlc: c.hlc,
        deleted: c.row === null,
        needsSync: false,
        syncedAt: old?.syncedAt ?? null,
      })
      changed.add(t.name)
    }
    return changed
  }

  async markSynced(
    table: Table,
    rows: ReadonlyArray<{ key: Row; hlc: string }>,
    syncedAt: string,
  ): Promise<void> {
    const m = this.rows(table)
    for (const r of rows) {
      const text = canonicalKey(table, r.key)
      const e = m.get(text)
      if (e === undefined || e.hlc !== r.hlc) continue
      if (e.deleted) m.delete(text)
      else m.set(text, { ...e, needsSync: false, syncedAt })
    }
  }

  /**
   * Rows with `_hlc` (and `_deleted` for tombstones), as the Arrow bulk pull answers them; applied
   * with `applyRemote`'s rule, so a pending local write with a newer stamp is never overwritten.
   */
  async loadArrow(table: Table, ipc: Uint8Array): Promise<number> {
    const rows = arrowToRows(tableFromIPC(ipc) as unknown as ArrowTableLike)
    const changes: Change[] = rows.map((r) => {
      if (r._hlc === null || r._hlc === undefined)
        throw new EddyError('protocol', `Arrow load of '${table.name}' has no _hlc column`)
      const values: Row = {}
      for (const c of table.columns) {
        const v = r[c.name] ?? null
        values[c.name] = c.type === 'json' && typeof v === 'string' ? JSON.parse(v) : v
      }
      const key: Row = {}
      for (const k of table.primaryKey) key[k] = values[k] ?? null
      return { table: table.name, key, row: r._deleted === true ? null : values, hlc: String(r._hlc) }
    })
    await this.applyRemote(changes, new Map([[table.name, table]]))
    return rows.length
  }

  async query(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    const q = SELECT.exec(sql)
    if (q === null) throw new EddyError('bad_request', `memory cache cannot run: ${sql}`)
    const [, what = '*', name = '', where, orderBy, desc] = q
    let next = 0
    const tests: Array<(r: Row) => boolean> = []
    for (const cond of where === undefined ? [] : where.split(/\s+and\s+/i)) {
      const eq = /^\s*([a-z_][a-z0-9_]*)\s*=\s*\?\s*$/i.exec(cond)
      if (eq?.[1] !== undefined) {
        const col = eq[1]
        const want = params[next++]
        tests.push((r) => r[col] === want)
      } else if (/^\s*_needs_sync\s*$/i.test(cond)) tests.push((r) => r._needs_sync === true)
      else throw new EddyError('bad_request', `memory cache cannot filter on: ${cond}`)
    }
    let rows: Row[] = []
    for (const e of this.rows(name).values()) {
      if (e.deleted) continue
      const r: Row = { ...e.values, _hlc: e.hlc, _needs_sync: e.needsSync, _synced_at: e.syncedAt }
      if (tests.every((t) => t(r))) rows.push(r)
    }
    if (orderBy !== undefined) {
      const dir = desc === undefined ? 1 : -1
      rows.sort((a, b) => {
        const x = a[orderBy]
        const y = b[orderBy]
        return (x === y ? 0 : String(x) < String(y) ? -1 : 1) * dir
      })
    }
    if (/^count\(\*\)\s+as\s+([a-z_]+)$/i.test(what.trim())) {
      const alias = what.trim().split(/\s+/).at(-1) ?? 'n'
      return [{ [alias]: rows.length }]
    }
    if (what.trim() !== '*') {
      const cols = what.split(',').map((c) => c.trim())
      rows = rows.map((r) => Object.fromEntries(cols.map((c) => [c, r[c]])))
    }
    return rows
  }

  async digestEntries(table: Table): Promise<Array<{ keyText: string; hlc: string }>> {
    const out: Array<{ keyText: string; hlc: string }> = []
    for (const [keyText, e] of this.rows(table)) if (!e.deleted) out.push({ keyText, hlc: e.hlc })
    return out
  }

  async checkpoint(): Promise<void> {}
  async close(): Promise<void> {}
}
