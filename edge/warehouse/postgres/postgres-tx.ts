import { canonicalKey } from '../../../shared/digest.ts'
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
import { type Db, q } from './postgres-pool.ts'

/** `$first::text[], …`: one text array parameter per column. */
function textArrays(count: number, first = 1): string {
  return Array.from({ length: count }, (_, i) => `$${first + i}::text[]`).join(', ')
}

/** A column of values as a text array parameter (null stays null). */
function textColumn<T>(
  xs: readonly T[],
  f: (x: T) => string | number | null | undefined,
): Array<string | null> {
  return xs.map((x) => {
    const v = f(x)
    return v === null || v === undefined ? null : String(v)
  })
}

/**
 * One set-based upsert, rows numbered with fresh versions in order. lww tables keep the hlc guard
 * in SQL: an older stamp never overwrites a newer row. With `report`, resolves the positions of the
 * rows actually written (the guard skips the others).
 */
async function upsert(db: Db, table: Table, writes: readonly RowWrite[], report: boolean): Promise<number[]> {
  if (writes.length === 0) return []
  const bumped = await q(
    db,
    `UPDATE _eddy_meta SET value = value + $1 WHERE name = 'version' RETURNING value`,
    [writes.length],
  )
  const top = BigInt(String(bumped[0]?.value ?? writes.length))
  const first = top - BigInt(writes.length) + 1n
  const merge = table.conflict === 'merge'
  const names = writeColumnNames(table)
  // one text array per column, filled column by column (no array per row)
  const arrays: Array<Array<string | null>> = table.columns.map((c) =>
    writes.map((w) => encodeValue(c, w.row.values[c.name])),
  )
  // versions as numbers while they are exact (a BigInt per row is one more object per row)
  const small = top <= BigInt(Number.MAX_SAFE_INTEGER)
  const firstNumber = Number(first)
  arrays.push(
    writes.map((w) => w.row.hlc),
    writes.map((w) => (w.row.deleted ? 'true' : 'false')),
    writes.map((_, i) => (small ? String(firstNumber + i) : (first + BigInt(i)).toString())),
    writes.map((w) => w.clientId),
  )
  if (merge)
    arrays.push(writes.map((w) => (w.row.columnHlcs === undefined ? null : JSON.stringify(w.row.columnHlcs))))
  const casts = [
    ...table.columns.map((c) => `s.${quoteIdent(c.name)}::${sqlType(c, 'postgres')}`),
    's._hlc',
    's._deleted::boolean',
    's._version::bigint',
    's._client_id',
  ]
  if (merge) casts.push('s._col_hlcs')
  const updates = names
    .filter((n) => !table.primaryKey.includes(n))
    .map((n) => `${quoteIdent(n)} = excluded.${quoteIdent(n)}`)
  const where = table.conflict === 'lww' ? ' WHERE excluded._hlc > t._hlc' : ''
  const insert = `INSERT INTO ${quoteIdent(table.name)} AS t (${names.map(quoteIdent).join(', ')})
       SELECT ${casts.join(', ')}
       FROM unnest(${textArrays(names.length)}) AS s(${names.map(quoteIdent).join(', ')})
       ON CONFLICT (${table.primaryKey.map(quoteIdent).join(', ')}) DO UPDATE SET ${updates.join(', ')}${where}`
  if (!report) {
    await q(db, insert, arrays)
    return []
  }
  // One row back, not one per written row: the count, and the written positions only when the
  // guard skipped some (parsing a row per write would cost the edge's thread more than the statement).
  const [found] = await q(
    db,
    `WITH w AS (${insert} RETURNING (t._version - $${names.length + 1}::bigint)::int AS i)
     SELECT count(*)::int AS n, CASE WHEN count(*) < $${names.length + 2}::int THEN string_agg(i::text, ',') END AS i FROM w`,
    [...arrays, first.toString(), writes.length],
  )
  if (Number(found?.n) === writes.length) return Array.from({ length: writes.length }, (_, i) => i)
  const written = found?.i
  if (written === null || written === undefined) return []
  return String(written).split(',').map(Number)
}

/**
 * A PostgreSQL write transaction's operations, and the flush that runs before its COMMIT: the
 * clients' lastSeqs and the audit events are kept until then and written by one statement, so a
 * group-committed transaction of many pushes does not pay two round trips per push for them.
 */
export function openPostgresTx(db: Db): { tx: WarehouseTx; flush(): Promise<void> } {
  const clients = new ClientBook()
  const events: NewEvent[] = []

  const flush = async (): Promise<void> => {
    const seqs = clients.take()
    const added = events.splice(0)
    if (seqs.length === 0 && added.length === 0) return
    const values = added.map(eventValues)
    // one statement for both (a data-modifying CTE); events keep their order, so their ids do too
    await q(
      db,
      `WITH clients AS (
         INSERT INTO _eddy_clients (client_id, last_seq, owner)
         SELECT s.client_id, s.last_seq::bigint, s.owner FROM unnest(${textArrays(3)}) AS s(client_id, last_seq, owner)
         ON CONFLICT (client_id) DO UPDATE
         SET last_seq = excluded.last_seq, owner = coalesce(_eddy_clients.owner, excluded.owner)
       )
       INSERT INTO _eddy_sync_events (${EVENT_COLUMNS})
       SELECT s.client_id, s.received_at::timestamptz, s.mutations::int, s.applied::int, s.stale::int,
         s.duplicate::int, s.conflict::int, s.rejected::int, s.duration_ms::float8, s.tenant
       FROM unnest(${textArrays(10, 4)}) WITH ORDINALITY
         AS s(${EVENT_COLUMNS}, n)
       ORDER BY s.n`,
      [
        textColumn(seqs, ([clientId]) => clientId),
        textColumn(seqs, ([, p]) => p.seq),
        textColumn(seqs, ([, p]) => p.owner),
        ...Array.from({ length: 10 }, (_, i) => textColumn(values, (v) => v[i])),
      ],
    )
  }

  const tx: WarehouseTx = {
    async preloadClients(clientIds) {
      clients.preload(
        clientIds,
        await q(
          db,
          'SELECT client_id, last_seq, owner FROM _eddy_clients WHERE client_id = ANY($1::text[])',
          [[...clientIds]],
        ),
      )
    },
    client(clientId) {
      return clients.client(
        clientId,
        async () =>
          (await q(db, 'SELECT last_seq, owner FROM _eddy_clients WHERE client_id = $1', [clientId]))[0],
      )
    },
    async setLastSeq(clientId, seq, owner) {
      clients.setLastSeq(clientId, seq, owner)
    },
    async readRows(table, keys) {
      const out = new Map<string, StoredRow>()
      if (keys.length === 0) return out
      const pk = table.primaryKey.map((k) => table.columnsByName.get(k)).filter((c) => c !== undefined)
      const arrays = pk.map((c) => keys.map((key) => encodeValue(c, key[c.name])))
      const on = pk
        .map((c) => `t.${quoteIdent(c.name)} = s.${quoteIdent(c.name)}::${sqlType(c, 'postgres')}`)
        .join(' AND ')
      const found = await q(
        db,
        `SELECT ${selectList(table, 'postgres', 't')} FROM ${quoteIdent(table.name)} t
         JOIN unnest(${textArrays(pk.length)}) AS s(${pk.map((c) => quoteIdent(c.name)).join(', ')})
         ON ${on}`,
        arrays,
      )
      for (const raw of found) {
        const row = storedRowOf(table, raw)
        out.set(canonicalKey(table, row.values), row)
      }
      return out
    },
    async writeRows(table, writes) {
      await upsert(db, table, writes, false)
    },
    async writeNewer(table, writes) {
      const out = new Array<boolean>(writes.length).fill(false)
      for (const i of await upsert(db, table, writes, true)) out[i] = true
      return out
    },
    async addConflicts(conflicts) {
      if (conflicts.length === 0) return
      const values = conflicts.map(conflictValues)
      await q(
        db,
        `INSERT INTO _eddy_conflicts (${CONFLICT_COLUMNS}, detected_at)
         SELECT *, now() FROM unnest(${textArrays(7)})`,
        Array.from({ length: 7 }, (_, i) => values.map((v) => v[i] ?? null)),
      )
    },
    async deleteConflict(id) {
      const n = conflictIdOf(id)
      if (n === undefined) return false
      return (
        (await q(db, 'DELETE FROM _eddy_conflicts WHERE id = $1::bigint RETURNING id', [String(n)])).length >
        0
      )
    },
    async addEvent(e) {
      events.push(e)
    },
  }
  return { tx, flush }
}
