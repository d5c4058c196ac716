import type { D1Database, D1PreparedStatement } from '@cloudflare/workers-types'
import { canonicalKey } from '../../../shared/digest.ts'
import { EddyError, isEddyError } from '../../../shared/errors.ts'
import type { StoredRow } from '../../../shared/reconcile.ts'
import type { Column, Row, Table } from '../../../shared/schema.ts'
import {
  CONFLICT_COLUMNS,
  conflictIdOf,
  conflictValues,
  EVENT_COLUMNS,
  eventValues,
} from '../bookkeeping-rows.ts'
import { ClientBook, type ClientState } from '../client-book.ts'
import { encodeJsonValue, keyOf } from '../column-codec.ts'
import type { NewConflict, NewEvent, RowWrite, WarehouseTx } from '../warehouse.ts'
import { chunked, decodeArray, type TablePlan } from './d1-table-plan.ts'

/** A D1 failure as `warehouse_unavailable`; the cause keeps D1's message for logs, the wire never sees it. */
export function unavailable(e: unknown): EddyError {
  if (isEddyError(e)) return e
  return new EddyError('warehouse_unavailable', 'the D1 warehouse is unavailable', { cause: e })
}

/** A read inside a write: a D1 failure is `warehouse_unavailable`, like every other call. */
async function read<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op()
  } catch (e) {
    throw unavailable(e)
  }
}

function columnOf(table: Table, column: string): Column {
  const c = table.columnsByName.get(column)
  if (!c) throw new EddyError('internal', `${table.name}.${column} is not a column`)
  return c
}

export function planFor(plans: ReadonlyMap<string, TablePlan>, table: Table): TablePlan {
  const plan = plans.get(table.name)
  if (!plan) throw new EddyError('unknown_table', `unknown table '${table.name}'`)
  return plan
}

/** Records one write attempt: reads go to D1 now, writes become statements of the final batch. */
export class D1Tx implements WarehouseTx {
  private readonly queued: D1PreparedStatement[] = []
  private readonly clients = new ClientBook()
  /** Rows written earlier in this transaction, so later reads see them. */
  private readonly pending = new Map<string, Map<string, StoredRow>>()
  /** Conflict records this transaction removes. */
  private readonly deletedConflicts = new Set<number>()

  constructor(
    private readonly db: D1Database,
    private readonly plans: ReadonlyMap<string, TablePlan>,
    private readonly now: () => number,
  ) {}

  /** The batch's statements: the writes in order, then the clients' lastSeqs. */
  statements(): D1PreparedStatement[] {
    const seqs = this.clients.take().map(([clientId, p]) =>
      this.db
        .prepare(
          `INSERT INTO _eddy_clients (client_id, last_seq, owner) VALUES (?1, ?2, ?3)
           ON CONFLICT (client_id) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq),
           owner = coalesce(owner, excluded.owner)`,
        )
        .bind(clientId, p.seq, p.owner ?? null),
    )
    this.queued.push(...seqs)
    return this.queued
  }

  client(clientId: string): Promise<ClientState> {
    return this.clients.client(clientId, () =>
      read(() =>
        this.db
          .prepare('SELECT last_seq, owner FROM _eddy_clients WHERE client_id = ?1')
          .bind(clientId)
          .first<Record<string, unknown>>(),
      ),
    )
  }

  async setLastSeq(clientId: string, seq: number, owner: string | undefined): Promise<void> {
    this.clients.setLastSeq(clientId, seq, owner)
  }

  async readRows(table: Table, keys: readonly Row[]): Promise<Map<string, StoredRow>> {
    const plan = planFor(this.plans, table)
    const out = new Map<string, StoredRow>()
    const chunks = chunked(keys, (k) =>
      table.primaryKey.map((c) => encodeJsonValue(columnOf(table, c), k[c])),
    )
    for (const json of chunks) {
      const res = await read(() => this.db.prepare(plan.readByKeys).bind(json).all<Record<string, unknown>>())
      for (const r of res.results) {
        const values = decodeArray(table.columns, r.vals)
        const stored: StoredRow = {
          values,
          hlc: String(r.hlc),
          deleted: r.deleted === 1,
          ...(plan.merge && typeof r.col_hlcs === 'string'
            ? { columnHlcs: JSON.parse(r.col_hlcs) as Record<string, string> }
            : {}),
        }
        out.set(canonicalKey(table, keyOf(table, values)), stored)
      }
    }
    const mine = this.pending.get(table.name)
    if (mine) {
      for (const k of keys) {
        const ck = canonicalKey(table, k)
        const row = mine.get(ck)
        if (row) out.set(ck, row)
      }
    }
    return out
  }

  async writeRows(table: Table, rows: readonly RowWrite[]): Promise<void> {
    if (rows.length === 0) return
    const plan = planFor(this.plans, table)
    let mine = this.pending.get(table.name)
    if (!mine) {
      mine = new Map()
      this.pending.set(table.name, mine)
    }
    for (const w of rows) mine.set(canonicalKey(table, w.key), w.row)
    const encode = (w: RowWrite): unknown[] => [
      ...table.columns.map((c) =>
        encodeJsonValue(c, Object.hasOwn(w.row.values, c.name) ? w.row.values[c.name] : w.key[c.name]),
      ),
      w.row.hlc,
      w.row.deleted ? 1 : 0,
      w.clientId,
      ...(plan.merge ? [w.row.columnHlcs === undefined ? null : JSON.stringify(w.row.columnHlcs)] : []),
    ]
    for (const json of chunked(rows, encode)) {
      const count = (JSON.parse(json) as unknown[]).length
      this.queued.push(this.db.prepare(plan.upsert).bind(json))
      this.queued.push(
        this.db.prepare(`UPDATE _eddy_meta SET value = value + ?1 WHERE key = 'version'`).bind(count),
      )
    }
  }

  async addConflicts(conflicts: readonly NewConflict[]): Promise<void> {
    if (conflicts.length === 0) return
    const detectedAt = new Date(this.now()).toISOString()
    const cells = CONFLICT_COLUMNS.split(', ').map((_, i) => `json_extract(j.value, '$[${i}]')`)
    for (const json of chunked(conflicts, conflictValues)) {
      this.queued.push(
        this.db
          .prepare(
            `INSERT INTO _eddy_conflicts (${CONFLICT_COLUMNS}, detected_at)
             SELECT ${cells.join(', ')}, ?2 FROM json_each(?1) AS j ORDER BY j.key`,
          )
          .bind(json, detectedAt),
      )
    }
  }

  async deleteConflict(id: string): Promise<boolean> {
    const n = conflictIdOf(id)
    if (n === undefined || this.deletedConflicts.has(n)) return false
    // read now, removed by the batch: the generation guard fails the batch if it was removed meanwhile
    const found = await read(() =>
      this.db.prepare('SELECT id FROM _eddy_conflicts WHERE id = ?1').bind(n).first(),
    )
    if (found === null) return false
    this.deletedConflicts.add(n)
    this.queued.push(this.db.prepare('DELETE FROM _eddy_conflicts WHERE id = ?1').bind(n))
    return true
  }

  async addEvent(e: NewEvent): Promise<void> {
    this.queued.push(
      this.db
        .prepare(
          `INSERT INTO _eddy_sync_events (${EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)`,
        )
        .bind(...eventValues(e)),
    )
  }
}
