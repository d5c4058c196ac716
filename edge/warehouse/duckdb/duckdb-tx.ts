import { type DuckDBType, type DuckDBValue, LIST, listValue, VARCHAR } from '@duckdb/node-api'
import { canonicalKey } from '../../../shared/digest.ts'
import { must } from '../../../shared/errors.ts'
import type { StoredRow } from '../../../shared/reconcile.ts'
import type { Table } from '../../../shared/schema.ts'
import { sqlType } from '../../../shared/sql-types.ts'
import {
  CONFLICT_COLUMNS,
  conflictIdOf,
  conflictValues,
  EVENT_COLUMNS,
  eventValues,
} from '../bookkeeping-rows.ts'
import { ClientBook } from '../client-book.ts'
import { encodeValue, quoteIdent, selectList, storedRowOf } from '../column-codec.ts'
import { writeColumnNames } from '../system-columns.ts'
import type { NewEvent, RowWrite, WarehouseTx } from '../warehouse.ts'
import type { Staged } from './duckdb-staging.ts'
import type { DuckDbWriter } from './duckdb-writer.ts'

/** Rows per statement when a group's client bookkeeping is read and its conflicts are written. */
const FLUSH_ROWS = 200

/** Flush statements of up to this many rows are prepared once per text and kept. */
const CACHED_FLUSH_ROWS = 64

/** The type of the text lists that carry the flush's columns. */
const TEXT_LIST = LIST(VARCHAR)

type RawRow = Record<string, unknown>

/** Joins a table `t` to a staged relation `s` of text columns on the primary key. */
function keyMatch(table: Table): string {
  return table.primaryKey
    .map((k) => {
      const col = must(table.columnsByName.get(k), 'key column')
      return `t.${quoteIdent(k)} = CAST(s.${quoteIdent(k)} AS ${sqlType(col, 'duckdb')})`
    })
    .join(' AND ')
}

/**
 * A DuckDB write transaction's operations, and the flush that runs before its COMMIT. The version
 * counter is read once per transaction (under the write mutex) and advanced in memory; it, the
 * clients' lastSeqs and the audit events are written by the flush, one statement each, so a
 * group-committed transaction of many pushes does not pay three statements per push for them
 * (every statement is a trip to DuckDB's threads).
 */
export function openDuckDbTx(w: DuckDbWriter): { tx: WarehouseTx; flush(): Promise<void> } {
  let version: bigint | undefined
  let versionWritten: bigint | undefined
  const clients = new ClientBook()
  const events: NewEvent[] = []
  /**
   * Per table, the canonical keys `readRows` found stored in this transaction. Rows are never
   * deleted while it runs, so they stay stored until COMMIT: a write that meets one of them goes
   * to the upsert without a lookup (the edge writes with `writeRows` only keys it read first).
   */
  const storedKeys = new Map<string, Set<string>>()

  const rowsOf = async (sql: string, params: DuckDBValue[], cache = true): Promise<RawRow[]> =>
    (await w.sql(sql, params, cache)).getRowObjectsJS() as RawRow[]

  const currentVersion = async (): Promise<bigint> => {
    if (version === undefined) {
      const r = await rowsOf(`SELECT value FROM _eddy_meta WHERE name = 'version'`, [])
      version = BigInt(String(r[0]?.value ?? 0))
    }
    return version
  }

  const knownStored = (table: Table, writes: readonly RowWrite[]): boolean => {
    const keys = storedKeys.get(table.name)
    return keys !== undefined && writes.some((x) => keys.has(canonicalKey(table, x.key)))
  }

  /**
   * Whether any staged key (`names` are the staged columns) is stored in `table`, tombstones
   * included. Up to the connection's key filter threshold DuckDB answers it from the primary-key
   * index (the join's key filter becomes an index scan); past it, by a scan of the key column.
   */
  const anyStored = async (table: Table, src: Staged, names: readonly string[]): Promise<boolean> => {
    const keys = src.from(table.primaryKey.map((k) => names.indexOf(k)))
    const found = await w.sql(
      `SELECT count(*) FROM ${quoteIdent(table.name)} t JOIN ${keys.sql} ON ${keyMatch(table)}`,
      keys.params,
      src.cache,
    )
    return Number(found.getColumnsJS()[0]?.[0] ?? 0) > 0
  }

  /**
   * One set-based upsert, rows numbered with fresh versions in order. lww tables keep the hlc
   * guard in SQL: an older stamp never overwrites a newer row. With `report`, resolves the
   * positions of the rows actually written (the guard skips the others).
   */
  const upsert = async (table: Table, writes: readonly RowWrite[], report: boolean): Promise<number[]> => {
    if (writes.length === 0) return []
    const names = writeColumnNames(table)
    const first = (await currentVersion()) + 1n
    const v = first + BigInt(writes.length) - 1n
    // versions as numbers while they are exact (a BigInt per row is one more object per row)
    const small = v <= BigInt(Number.MAX_SAFE_INTEGER)
    const firstNumber = Number(first)
    const { columns } = table
    const n = columns.length
    let at = -1
    let row = must(writes[0], 'row write')
    const cell = (r: number, c: number): string | null => {
      if (r !== at) {
        at = r
        row = must(writes[r], 'row write')
      }
      if (c < n) {
        const col = must(columns[c], 'column')
        return encodeValue(col, row.row.values[col.name])
      }
      switch (c - n) {
        case 0:
          return row.row.hlc
        case 1:
          return row.row.deleted ? 'true' : 'false'
        case 2:
          return small ? String(firstNumber + r) : (first + BigInt(r)).toString()
        case 3:
          return row.clientId
        default:
          return row.row.columnHlcs === undefined ? null : JSON.stringify(row.row.columnHlcs)
      }
    }
    const casts = [
      ...columns.map((c) => `CAST(s.${quoteIdent(c.name)} AS ${sqlType(c, 'duckdb')})`),
      's._hlc',
      'CAST(s._deleted AS BOOLEAN)',
      'CAST(s._version AS BIGINT)',
      's._client_id',
    ]
    if (table.conflict === 'merge') casts.push('s._col_hlcs')
    const updates = names
      .filter((x) => !table.primaryKey.includes(x))
      .map((x) => `${quoteIdent(x)} = excluded.${quoteIdent(x)}`)
    const into = `INSERT INTO ${quoteIdent(table.name)} AS t (${names.map(quoteIdent).join(', ')})`
    let staged = await w.stage(names, writes.length, cell)
    let written: number[] = []
    if (!knownStored(table, writes) && !(await anyStored(table, staged, names))) {
      // No key is stored yet: a plain INSERT writes every row, as the upsert would have. Worth a
      // lookup first: DuckDB's ON CONFLICT costs much more than a plain INSERT, and a failed
      // INSERT would abort the whole transaction.
      const from = staged.from()
      await w.sql(`${into} SELECT ${casts.join(', ')} FROM ${from.sql}`, from.params, staged.cache)
      if (report) written = Array.from(writes, (_, i) => i)
    } else {
      if (staged.kind === 'packed') staged = await w.intoTable(staged, names)
      const from = staged.from()
      const guard = table.conflict === 'lww' ? ' WHERE excluded._hlc > t._hlc' : ''
      const sql = `${into} SELECT ${casts.join(', ')} FROM ${from.sql}
         ON CONFLICT (${table.primaryKey.map(quoteIdent).join(', ')}) DO UPDATE SET ${updates.join(', ')}${guard}`
      if (report) {
        // the statement text stays the same from push to push (it is prepared once): offsets in JS
        const reader = await w.sql(`${sql} RETURNING _version`, from.params, staged.cache)
        written = (reader.getColumnsJS()[0] ?? []).map((x) => Number(BigInt(String(x)) - first))
      } else {
        await w.sql(sql, from.params, staged.cache)
      }
    }
    await staged.done()
    version = v
    return written
  }

  /**
   * One text list parameter per column, so each statement is prepared once whatever the count
   * (typed: a list's type is otherwise guessed from its first item, and a leading null makes every
   * item null); `unnest` keeps the lists' order, and the events' ids follow it.
   */
  const textLists = (
    rows: ReadonlyArray<ReadonlyArray<string | number | null | undefined>>,
    width: number,
  ) => ({
    params: Array.from(
      { length: width },
      (_, i): DuckDBValue =>
        listValue(
          rows.map((r) => {
            const x = r[i]
            return x === undefined || x === null ? null : String(x)
          }),
        ),
    ),
    types: new Array<DuckDBType>(width).fill(TEXT_LIST),
  })

  const flush = async (): Promise<void> => {
    if (version !== undefined && version !== versionWritten) {
      await w.sql(`UPDATE _eddy_meta SET value = ? WHERE name = 'version'`, [version])
      versionWritten = version
    }
    const seqs = clients.take()
    if (seqs.length > 0) {
      const lists = textLists(
        seqs.map(([id, p]) => [id, p.seq, p.owner]),
        3,
      )
      await w.sql(
        `INSERT INTO _eddy_clients SELECT unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[])
         ON CONFLICT (client_id)
         DO UPDATE SET last_seq = excluded.last_seq, owner = coalesce(_eddy_clients.owner, excluded.owner)`,
        lists.params,
        true,
        lists.types,
      )
    }
    const added = events.splice(0)
    if (added.length > 0) {
      const lists = textLists(added.map(eventValues), 10)
      await w.sql(
        `INSERT INTO _eddy_sync_events (${EVENT_COLUMNS})
         SELECT unnest(?::VARCHAR[]), unnest(?::TIMESTAMP[]), unnest(?::INTEGER[]), unnest(?::INTEGER[]),
           unnest(?::INTEGER[]), unnest(?::INTEGER[]), unnest(?::INTEGER[]), unnest(?::INTEGER[]),
           unnest(?::DOUBLE[]), unnest(?::VARCHAR[])`,
        lists.params,
        true,
        lists.types,
      )
    }
  }

  const tx: WarehouseTx = {
    async preloadClients(clientIds) {
      for (let at = 0; at < clientIds.length; at += FLUSH_ROWS) {
        const part = clientIds.slice(at, at + FLUSH_ROWS)
        const found = await rowsOf(
          `SELECT client_id, last_seq, owner FROM _eddy_clients WHERE client_id IN (${part.map(() => '?').join(', ')})`,
          [...part],
          part.length <= CACHED_FLUSH_ROWS,
        )
        clients.preload(part, found)
      }
    },
    client(clientId) {
      return clients.client(
        clientId,
        async () =>
          (await rowsOf('SELECT last_seq, owner FROM _eddy_clients WHERE client_id = ?', [clientId]))[0],
      )
    },
    async setLastSeq(clientId, seq, owner) {
      clients.setLastSeq(clientId, seq, owner)
    },
    async readRows(table, keys) {
      const out = new Map<string, StoredRow>()
      if (keys.length === 0) return out
      const pk = table.primaryKey.map((k) => table.columnsByName.get(k)).filter((c) => c !== undefined)
      const src = await w.stage(table.primaryKey, keys.length, (r, c) => {
        const col = must(pk[c], 'key column')
        return encodeValue(col, must(keys[r], 'key')[col.name])
      })
      const from = src.from()
      const found = await rowsOf(
        `SELECT ${selectList(table, 'duckdb', 't')} FROM ${quoteIdent(table.name)} t JOIN ${from.sql} ON ${keyMatch(table)}`,
        from.params,
        src.cache,
      )
      await src.done()
      let stored = storedKeys.get(table.name)
      if (stored === undefined) {
        stored = new Set()
        storedKeys.set(table.name, stored)
      }
      for (const raw of found) {
        const row = storedRowOf(table, raw)
        const key = canonicalKey(table, row.values)
        out.set(key, row)
        stored.add(key)
      }
      return out
    },
    async writeRows(table, writes) {
      await upsert(table, writes, false)
    },
    async writeNewer(table, writes) {
      const out = new Array<boolean>(writes.length).fill(false)
      for (const i of await upsert(table, writes, true)) out[i] = true
      return out
    },
    async addConflicts(conflicts) {
      // one statement per FLUSH_ROWS conflicts (a group commit's conflicts arrive together); ids follow their order
      for (let at = 0; at < conflicts.length; at += FLUSH_ROWS) {
        const part = conflicts.slice(at, at + FLUSH_ROWS)
        await w.sql(
          `INSERT INTO _eddy_conflicts (${CONFLICT_COLUMNS}, detected_at)
           VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, ?, now())').join(', ')}`,
          part.flatMap(conflictValues),
          part.length <= CACHED_FLUSH_ROWS,
        )
      }
    },
    async deleteConflict(id) {
      const n = conflictIdOf(id)
      if (n === undefined) return false
      return (await rowsOf('DELETE FROM _eddy_conflicts WHERE id = ? RETURNING id', [n])).length > 0
    },
    async addEvent(e) {
      events.push(e)
    },
  }
  return { tx, flush }
}
