import type { D1Database, D1PreparedStatement } from '@cloudflare/workers-types'
import { canonicalKey } from '../../../shared/digest.ts'
import { EddyError, isEddyError } from '../../../shared/errors.ts'
import type { ConflictRecord, SyncEvent } from '../../../shared/protocol.ts'
import type { StoredRow } from '../../../shared/reconcile.ts'
import type { Column, Row, Schema, Table } from '../../../shared/schema.ts'
import { createSerialQueue } from '../../../shared/serial-queue.ts'
import { sqlType } from '../../../shared/sql-types.ts'
import { conflictInTenant } from '../../conflicts/tenant.ts'
import {
  clientFromRow,
  conflictFromRow,
  EVENT_COLUMNS,
  eventValues,
  pushedByOf,
  syncEventFromRow,
} from '../bookkeeping-rows.ts'
import type {
  NewConflict,
  NewEvent,
  PulledChange,
  PullRequest,
  RowWrite,
  Warehouse,
  WarehouseTx,
} from '../warehouse.ts'

/**
 * The `Warehouse` on a Cloudflare D1 binding (SQLite).
 *
 * D1 has no interactive transactions, only `db.batch([...])`, which runs its statements as one atomic
 * transaction. So `write(fn)` runs `fn` against a recording transaction: its reads
 * (`client`, `readRows`) go to D1 at once, its writes are queued as statements, and when `fn`
 * returns the queue runs as ONE batch. If `fn` throws, nothing is sent.
 *
 * Isolation. Writes on one adapter (one isolate) are serialised by a promise chain. Another isolate
 * may still commit between our reads and our batch, which would make the outcomes `fn` computed from
 * those reads wrong (a lost lastSeq, an lww decision against a row that has since changed). Every
 * write batch therefore bumps a `generation` counter in `_eddy_meta`, and each attempt reads the
 * generation BEFORE its first read. The batch's first statement inserts into `_eddy_guard` whether
 * the stored generation still equals the one read; a CHECK constraint on that table refuses a false,
 * which aborts the whole batch (plain SQLite, no trigger needed). D1 runs batches one at a time, so a
 * batch that passes the guard ran with nothing committed since its reads; a batch that fails it
 * changed nothing, and `write` re-runs `fn` on fresh reads (a few times, then `warehouse_unavailable`,
 * which the client retries). So `fn` may run more than once: it must act only through `tx`.
 *
 * Versions. `_version` comes from the `version` counter row in `_eddy_meta`, read and bumped inside the
 * same batch, so versions commit in counter order and a puller following `_version` never skips a
 * change (a batch is invisible until it commits, and no later batch can take a smaller version).
 *
 * Set-based statements: rows travel as one JSON parameter read with `json_each`, which avoids SQLite's
 * bound-parameter limit (100 on D1); large loads are split into chunks inside the same batch.
 *
 * Storage types: integer/bigint/boolean as INTEGER, double as REAL, everything else (decimal included,
 * to keep its exact text) as TEXT; json as its JSON text. Reads convert back to the wire forms of
 * PROTOCOL.md (bigint past 2^53 as a string, booleans as booleans).
 */

/** Options for `createD1Warehouse`. */
export interface D1WarehouseOptions {
  /** Clock for `detectedAt` stamps; injectable for tests. */
  readonly now?: () => number
  /** How many times a write re-runs after another isolate moved the generation (default 8). */
  readonly maxAttempts?: number
}

/** Rows per JSON parameter; keeps each statement's parameter well under D1's per-value size limit. */
const CHUNK_ROWS = 500
const CHUNK_BYTES = 512 * 1024
/** SQLite's default limit on function arguments is 127; stay clear of it in json_array. */
const JSON_ARRAY_ARGS = 100
const CONCURRENT_WRITE = 'eddy_concurrent_write'

const q = (ident: string): string => `"${ident}"`

/** A column as SELECT reads it: bigint as text so values past 2^53 survive the trip to JS. */
function readExpr(col: Column, alias = ''): string {
  const ref = `${alias}${q(col.name)}`
  return col.type === 'bigint' ? `CAST(${ref} AS TEXT)` : ref
}

/** `json_array(...)` over many expressions, nested in chunks so no call passes SQLite's argument limit. */
function jsonArray(exprs: readonly string[]): string {
  const chunks: string[] = []
  for (let i = 0; i < exprs.length; i += JSON_ARRAY_ARGS)
    chunks.push(`json_array(${exprs.slice(i, i + JSON_ARRAY_ARGS).join(', ')})`)
  return `json_array(${chunks.join(', ')})`
}

function flatten(text: unknown): unknown[] {
  const nested = JSON.parse(String(text)) as unknown[][]
  return nested.flat()
}

/** A stored value back to its wire form. */
function fromSql(col: Column, v: unknown): unknown {
  if (v === null || v === undefined) return null
  switch (col.type) {
    case 'bigint': {
      const text = String(v)
      const n = Number(text)
      return Number.isSafeInteger(n) ? n : text
    }
    case 'boolean':
      return v === 1 || v === true || v === '1'
    case 'json':
      return typeof v === 'string' ? (JSON.parse(v) as unknown) : v
    case 'decimal':
    case 'text':
    case 'date':
    case 'timestamp':
    case 'uuid':
      return typeof v === 'string' ? v : String(v)
    default:
      return v
  }
}

/** A value to its JSON-parameter form (what `json_extract` turns into the stored value). */
function toSql(col: Column, v: unknown): unknown {
  if (v === null || v === undefined) return null
  if (typeof v === 'bigint') return v.toString()
  if (col.type === 'json') return JSON.stringify(v)
  if (col.type === 'boolean') return v === true ? 1 : 0
  return v
}

/** Splits items into chunks by count and by the size of their JSON text. */
function chunked<T>(items: readonly T[], encode: (item: T) => unknown): string[] {
  const out: string[] = []
  let parts: string[] = []
  let bytes = 0
  for (const item of items) {
    const text = JSON.stringify(encode(item))
    if (parts.length > 0 && (parts.length >= CHUNK_ROWS || bytes + text.length > CHUNK_BYTES)) {
      out.push(`[${parts.join(',')}]`)
      parts = []
      bytes = 0
    }
    parts.push(text)
    bytes += text.length + 1
  }
  if (parts.length > 0) out.push(`[${parts.join(',')}]`)
  return out
}

function unavailable(e: unknown): EddyError {
  if (isEddyError(e)) return e
  // The cause keeps D1's message for logs; the wire only ever sees this message.
  return new EddyError('warehouse_unavailable', 'the D1 warehouse is unavailable', { cause: e })
}

function isConcurrentWrite(e: unknown): boolean {
  let cur: unknown = e
  for (let depth = 0; cur instanceof Error && depth < 4; depth++) {
    if (cur.message.includes(CONCURRENT_WRITE)) return true
    cur = cur.cause
  }
  return false
}

/** The statements and SQL text per table, built once. */
interface TablePlan {
  readonly table: Table
  readonly create: string
  readonly upsert: string
  readonly readByKeys: string
  readonly merge: boolean
}

function planTable(table: Table): TablePlan {
  const merge = table.conflict === 'merge'
  const cols = table.columns
  const systemCols = ['_hlc', '_deleted', '_version', '_client_id', ...(merge ? ['_col_hlcs'] : [])]
  const create = [
    `CREATE TABLE IF NOT EXISTS ${q(table.name)} (`,
    [
      ...cols.map((c) => `${q(c.name)} ${sqlType(c, 'sqlite')}`),
      '_hlc TEXT NOT NULL',
      '_deleted INTEGER NOT NULL DEFAULT 0',
      '_version INTEGER NOT NULL',
      '_client_id TEXT',
      ...(merge ? ['_col_hlcs TEXT'] : []),
      `PRIMARY KEY (${table.primaryKey.map(q).join(', ')})`,
    ].join(', '),
    ')',
  ].join('')
  // Each JSON element is [col values..., hlc, deleted, clientId, colHlcs?]; its array index gives the
  // version offset from the counter as it stands when this statement runs inside the batch.
  const n = cols.length
  const extract = (i: number): string => `json_extract(j.value, '$[${i}]')`
  const insertCols = [...cols.map((c) => q(c.name)), ...systemCols]
  const selectExprs = [
    ...cols.map((_, i) => extract(i)),
    extract(n),
    extract(n + 1),
    `(SELECT value FROM _eddy_meta WHERE key = 'version') + j.key + 1`,
    extract(n + 2),
    ...(merge ? [extract(n + 3)] : []),
  ]
  const updates = [...cols.filter((c) => !c.primaryKey).map((c) => q(c.name)), ...systemCols].map(
    (c) => `${c} = excluded.${c}`,
  )
  // The lww guard in SQL repeats what `reconcile` decided. Merge results may keep the stored stamp (an
  // older write that raised a `max` column) and a manual resolution may store an older write, so those
  // tables store what they are given (the generation guard already rules out a row changed meanwhile).
  const guard = table.conflict === 'lww' ? ` WHERE excluded._hlc > ${q(table.name)}._hlc` : ''
  const upsert = [
    `INSERT INTO ${q(table.name)} (${insertCols.join(', ')})`,
    `SELECT ${selectExprs.join(', ')} FROM json_each(?1) AS j WHERE true`,
    `ON CONFLICT (${table.primaryKey.map(q).join(', ')}) DO UPDATE SET ${updates.join(', ')}${guard}`,
  ].join(' ')
  const on = table.primaryKey.map((k, i) => `t.${q(k)} = json_extract(j.value, '$[${i}]')`).join(' AND ')
  const readByKeys = [
    `SELECT ${jsonArray(cols.map((c) => readExpr(c, 't.')))} AS vals, t._hlc AS hlc, t._deleted AS deleted`,
    merge ? ', t._col_hlcs AS col_hlcs' : '',
    ` FROM json_each(?1) AS j JOIN ${q(table.name)} AS t ON ${on}`,
  ].join('')
  return { table, create, upsert, readByKeys, merge }
}

function decodeValues(table: Table, vals: unknown): Row {
  const raw = flatten(vals)
  const row: Row = {}
  table.columns.forEach((c, i) => {
    Object.defineProperty(row, c.name, {
      value: fromSql(c, raw[i]),
      enumerable: true,
      writable: true,
      configurable: true,
    })
  })
  return row
}

function keyOf(table: Table, values: Row): Row {
  const key: Row = {}
  for (const k of table.primaryKey)
    Object.defineProperty(key, k, { value: values[k] ?? null, enumerable: true, writable: true })
  return key
}

const BOOKKEEPING = [
  'CREATE TABLE IF NOT EXISTS _eddy_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)',
  `INSERT OR IGNORE INTO _eddy_meta (key, value) VALUES ('version', 0), ('generation', 0)`,
  'CREATE TABLE IF NOT EXISTS _eddy_clients (client_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, owner TEXT)',
  `CREATE TABLE IF NOT EXISTS _eddy_sync_events (id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL,
    received_at TEXT NOT NULL, mutations INTEGER NOT NULL, applied INTEGER NOT NULL, stale INTEGER NOT NULL,
    duplicate INTEGER NOT NULL, conflict INTEGER NOT NULL, rejected INTEGER NOT NULL, duration_ms REAL NOT NULL,
    tenant TEXT)`,
  'CREATE INDEX IF NOT EXISTS _eddy_sync_events_received ON _eddy_sync_events (received_at)',
  `CREATE TABLE IF NOT EXISTS _eddy_conflicts (id INTEGER PRIMARY KEY AUTOINCREMENT, table_name TEXT NOT NULL,
    key_json TEXT NOT NULL, stored_json TEXT, incoming_json TEXT, hlc TEXT NOT NULL, client_id TEXT NOT NULL,
    detected_at TEXT NOT NULL, tenant TEXT)`,
  // The optimistic-concurrency guard (see the file comment): a batch whose expected generation is no
  // longer the stored one inserts 0 here, the CHECK fails and the batch aborts.
  `CREATE TABLE IF NOT EXISTS _eddy_guard (ok INTEGER NOT NULL CONSTRAINT ${CONCURRENT_WRITE} CHECK (ok = 1))`,
]

/** A read inside a write: a D1 failure is `warehouse_unavailable`, like every other call. */
async function read<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op()
  } catch (e) {
    throw unavailable(e)
  }
}

/** Records one write attempt: reads go to D1 now, writes become statements of the final batch. */
class D1Tx implements WarehouseTx {
  readonly statements: D1PreparedStatement[] = []
  private readonly seqs = new Map<string, number>()
  private readonly owners = new Map<string, string>()
  /** Rows written earlier in this transaction, so later reads see them. */
  private readonly pending = new Map<string, Map<string, StoredRow>>()
  /** Conflict records this transaction removes. */
  private readonly deletedConflicts = new Set<string>()

  constructor(
    private readonly db: D1Database,
    private readonly plans: ReadonlyMap<string, TablePlan>,
    private readonly now: () => number,
  ) {}

  async client(clientId: string): Promise<{ lastSeq: number; owner: string | undefined }> {
    const stored = clientFromRow(
      await read(() =>
        this.db
          .prepare('SELECT last_seq, owner FROM _eddy_clients WHERE client_id = ?1')
          .bind(clientId)
          .first<Record<string, unknown>>(),
      ),
    )
    // what this transaction has queued but not yet committed counts too
    return {
      lastSeq: Math.max(this.seqs.get(clientId) ?? 0, stored.lastSeq),
      owner: stored.owner ?? this.owners.get(clientId),
    }
  }

  async setLastSeq(clientId: string, seq: number, owner: string | undefined): Promise<void> {
    this.seqs.set(clientId, Math.max(this.seqs.get(clientId) ?? 0, seq))
    if (owner !== undefined && !this.owners.has(clientId)) this.owners.set(clientId, owner)
    this.statements.push(
      this.db
        .prepare(
          `INSERT INTO _eddy_clients (client_id, last_seq, owner) VALUES (?1, ?2, ?3)
           ON CONFLICT (client_id) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq),
           owner = coalesce(owner, excluded.owner)`,
        )
        .bind(clientId, seq, owner ?? null),
    )
  }

  async readRows(table: Table, keys: readonly Row[]): Promise<Map<string, StoredRow>> {
    const plan = planFor(this.plans, table)
    const out = new Map<string, StoredRow>()
    const chunks = chunked(keys, (k) => table.primaryKey.map((c) => toSql(columnOf(table, c), k[c])))
    for (const json of chunks) {
      const res = await read(() => this.db.prepare(plan.readByKeys).bind(json).all<Record<string, unknown>>())
      for (const r of res.results) {
        const values = decodeValues(table, r.vals)
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
        toSql(c, Object.hasOwn(w.row.values, c.name) ? w.row.values[c.name] : w.key[c.name]),
      ),
      w.row.hlc,
      w.row.deleted ? 1 : 0,
      w.clientId,
      ...(plan.merge ? [w.row.columnHlcs === undefined ? null : JSON.stringify(w.row.columnHlcs)] : []),
    ]
    for (const json of chunked(rows, encode)) {
      const count = (JSON.parse(json) as unknown[]).length
      this.statements.push(this.db.prepare(plan.upsert).bind(json))
      this.statements.push(
        this.db.prepare(`UPDATE _eddy_meta SET value = value + ?1 WHERE key = 'version'`).bind(count),
      )
    }
  }

  async addConflicts(conflicts: readonly NewConflict[]): Promise<void> {
    if (conflicts.length === 0) return
    const detectedAt = new Date(this.now()).toISOString()
    const encode = (c: NewConflict): unknown[] => [
      c.table,
      JSON.stringify(c.key),
      c.stored === null ? null : JSON.stringify(c.stored),
      c.incoming === null ? null : JSON.stringify(c.incoming),
      c.hlc,
      c.clientId,
      c.tenant ?? null,
    ]
    for (const json of chunked(conflicts, encode)) {
      this.statements.push(
        this.db
          .prepare(
            `INSERT INTO _eddy_conflicts (table_name, key_json, stored_json, incoming_json, hlc, client_id, detected_at,
               tenant)
             SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]'),
               json_extract(j.value, '$[3]'), json_extract(j.value, '$[4]'), json_extract(j.value, '$[5]'), ?2,
               json_extract(j.value, '$[6]')
             FROM json_each(?1) AS j ORDER BY j.key`,
          )
          .bind(json, detectedAt),
      )
    }
  }

  async deleteConflict(id: string): Promise<boolean> {
    if (!/^\d{1,15}$/.test(id) || this.deletedConflicts.has(id)) return false
    // read now, removed by the batch: the generation guard fails the batch if it was removed meanwhile
    const found = await read(() =>
      this.db.prepare('SELECT id FROM _eddy_conflicts WHERE id = ?1').bind(Number(id)).first(),
    )
    if (found === null) return false
    this.deletedConflicts.add(id)
    this.statements.push(this.db.prepare('DELETE FROM _eddy_conflicts WHERE id = ?1').bind(Number(id)))
    return true
  }

  async addEvent(e: NewEvent): Promise<void> {
    this.statements.push(
      this.db
        .prepare(
          `INSERT INTO _eddy_sync_events (${EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)`,
        )
        .bind(...eventValues(e)),
    )
  }
}

function columnOf(table: Table, column: string): Column {
  const c = table.columnsByName.get(column)
  if (!c) throw new EddyError('internal', `${table.name}.${column} is not a column`)
  return c
}

function planFor(plans: ReadonlyMap<string, TablePlan>, table: Table): TablePlan {
  const plan = plans.get(table.name)
  if (!plan) throw new EddyError('unknown_table', `unknown table '${table.name}'`)
  return plan
}

/** Opens the D1 warehouse for a schema. Call `migrate()` once before use. */
export function createD1Warehouse(
  db: D1Database,
  schema: Schema,
  options: D1WarehouseOptions = {},
): Warehouse {
  const now = options.now ?? Date.now
  const maxAttempts = options.maxAttempts ?? 8
  const plans = new Map([...schema.tables.values()].map((t) => [t.name, planTable(t)]))
  const serial = createSerialQueue()
  let closed = false

  const guarded = async <T>(op: () => Promise<T>): Promise<T> => {
    if (closed) throw new EddyError('warehouse_unavailable', 'the D1 warehouse is closed')
    try {
      return await op()
    } catch (e) {
      throw unavailable(e)
    }
  }

  /** Runs statements as one batch, guarded by the generation and bumping it. */
  const commit = async (generation: number, statements: D1PreparedStatement[]): Promise<void> => {
    await db.batch([
      db
        .prepare(
          `INSERT INTO _eddy_guard (ok) SELECT coalesce(max(value = ?1), 0) FROM _eddy_meta WHERE key = 'generation'`,
        )
        .bind(generation),
      ...statements,
      db.prepare(`UPDATE _eddy_meta SET value = value + 1 WHERE key = 'generation'`),
      db.prepare('DELETE FROM _eddy_guard'),
    ])
  }

  const generation = async (): Promise<number> => {
    const g = await db.prepare(`SELECT value FROM _eddy_meta WHERE key = 'generation'`).first<number>('value')
    if (g === null) throw new EddyError('internal', 'the D1 warehouse is not migrated (no generation)')
    return g
  }

  async function migrate(): Promise<void> {
    await db.batch([...BOOKKEEPING, ...[...plans.values()].map((p) => p.create)].map((s) => db.prepare(s)))
    const addMissing = async (): Promise<void> => {
      // `PRAGMA table_info` is one of the PRAGMAs D1 documents as supported.
      const tables = [...[...plans.values()].map((p) => p.table.name), '_eddy_sync_events', '_eddy_conflicts']
      const listings = await db.batch<{ name: string }>(
        tables.map((t) => db.prepare(`PRAGMA table_info(${q(t)})`)),
      )
      const have = new Set(
        listings.flatMap((res, i) => res.results.map((r) => `${tables[i] ?? ''}.${r.name}`)),
      )
      const alters: string[] = []
      for (const p of plans.values()) {
        for (const c of p.table.columns) {
          if (!have.has(`${p.table.name}.${c.name}`))
            alters.push(`ALTER TABLE ${q(p.table.name)} ADD COLUMN ${q(c.name)} ${sqlType(c, 'sqlite')}`)
        }
        if (p.merge && !have.has(`${p.table.name}._col_hlcs`))
          alters.push(`ALTER TABLE ${q(p.table.name)} ADD COLUMN _col_hlcs TEXT`)
      }
      // the pushing caller's tenant (null: none), for scoping the audit trail and conflicts
      for (const t of ['_eddy_sync_events', '_eddy_conflicts'])
        if (!have.has(`${t}.tenant`)) alters.push(`ALTER TABLE ${t} ADD COLUMN tenant TEXT`)
      const indexes = [...plans.values()].map(
        (p) => `CREATE INDEX IF NOT EXISTS ${q(`${p.table.name}__version`)} ON ${q(p.table.name)} (_version)`,
      )
      await db.batch([...alters, ...indexes].map((s) => db.prepare(s)))
    }
    try {
      await addMissing()
    } catch (e) {
      // Another isolate may have added the same column a moment ago: look again once.
      if (!(e instanceof Error && /duplicate column/i.test(`${e.message} ${String(e.cause)}`))) throw e
      await addMissing()
    }
  }

  async function write<T>(fn: (tx: WarehouseTx) => Promise<T>): Promise<T> {
    return serial(async () => {
      for (let attempt = 1; ; attempt++) {
        const gen = await guarded(generation)
        const tx = new D1Tx(db, plans, now)
        // Errors from `fn` itself (validation, 403s, bugs) pass through unchanged; its D1 reads map theirs.
        const result = await fn(tx)
        if (tx.statements.length === 0) return result
        try {
          await commit(gen, tx.statements)
          return result
        } catch (e) {
          if (isConcurrentWrite(e)) {
            if (attempt < maxAttempts) continue
            throw new EddyError('warehouse_unavailable', 'the D1 warehouse is busy; retry the batch', {
              cause: e,
            })
          }
          throw unavailable(e)
        }
      }
    })
  }

  async function pull(req: PullRequest): Promise<{ changes: PulledChange[]; hasMore: boolean }> {
    if (req.tables.length === 0) return { changes: [], hasMore: false }
    const parts = req.tables.map((t) => {
      const plan = planFor(plans, t)
      const tenant = req.tenant !== undefined && t.tenantColumn !== undefined
      return [
        `SELECT '${plan.table.name}' AS tbl, ${jsonArray(t.columns.map((c) => readExpr(c)))} AS vals,`,
        ` _hlc AS hlc, _deleted AS deleted, _version AS version FROM ${q(t.name)} WHERE _version > ?1`,
        tenant ? ` AND ${q(columnOf(t, t.tenantColumn ?? '').name)} = ?3` : '',
      ].join('')
    })
    const sql = `${parts.join(' UNION ALL ')} ORDER BY version LIMIT ?2`
    const params: unknown[] = [Number(req.afterVersion), req.limit + 1]
    if (sql.includes('?3')) params.push(req.tenant)
    const res = await guarded(() =>
      db
        .prepare(sql)
        .bind(...params)
        .all<Record<string, unknown>>(),
    )
    const rows = res.results
    const hasMore = rows.length > req.limit
    const changes = rows.slice(0, req.limit).map((r): PulledChange => {
      const table = schema.table(String(r.tbl))
      const values = decodeValues(table, r.vals)
      return {
        table: table.name,
        key: keyOf(table, values),
        row: r.deleted === 1 ? null : values,
        hlc: String(r.hlc),
        version: BigInt(Number(r.version)),
      }
    })
    return { changes, hasMore }
  }

  async function digestEntries(table: Table, tenant?: string): Promise<Array<{ key: Row; hlc: string }>> {
    planFor(plans, table)
    const keyCols = table.primaryKey.map((k) => columnOf(table, k))
    const scoped = tenant !== undefined && table.tenantColumn !== undefined
    const sql = [
      `SELECT ${jsonArray(keyCols.map((c) => readExpr(c)))} AS k, _hlc AS hlc FROM ${q(table.name)}`,
      ' WHERE _deleted = 0',
      scoped ? ` AND ${q(columnOf(table, table.tenantColumn ?? '').name)} = ?1` : '',
    ].join('')
    const stmt = scoped ? db.prepare(sql).bind(tenant) : db.prepare(sql)
    const res = await guarded(() => stmt.all<{ k: string; hlc: string }>())
    return res.results.map((r) => {
      const raw = flatten(r.k)
      const key: Row = {}
      keyCols.forEach((c, i) => {
        Object.defineProperty(key, c.name, { value: fromSql(c, raw[i]), enumerable: true, writable: true })
      })
      return { key, hlc: r.hlc }
    })
  }

  async function events(limit: number, tenant?: string): Promise<SyncEvent[]> {
    const res = await guarded(() =>
      db
        .prepare(
          `SELECT id, client_id, received_at, mutations, applied, stale, duplicate, conflict, rejected, duration_ms
           FROM _eddy_sync_events ${tenant === undefined ? '' : 'WHERE tenant = ?2'} ORDER BY id DESC LIMIT ?1`,
        )
        .bind(...(tenant === undefined ? [limit] : [limit, tenant]))
        .all<Record<string, unknown>>(),
    )
    return res.results.map((r) => syncEventFromRow(r, String(r.received_at)))
  }

  async function conflicts(tenant?: string | null): Promise<ConflictRecord[]> {
    const res = await guarded(() =>
      db.prepare('SELECT * FROM _eddy_conflicts ORDER BY id').all<Record<string, unknown>>(),
    )
    return res.results.flatMap((r) => {
      const c = conflictFromRow(r, String(r.detected_at))
      return conflictInTenant(schema, c, tenant, pushedByOf(r)) ? [c] : []
    })
  }

  async function highWater(): Promise<bigint> {
    const v = await guarded(() =>
      db.prepare(`SELECT value FROM _eddy_meta WHERE key = 'version'`).first<number>('value'),
    )
    return BigInt(v ?? 0)
  }

  async function health(): Promise<void> {
    await guarded(() => db.prepare('SELECT 1 AS ok').first('ok'))
  }

  async function prune(opts: {
    keepEvents?: number | undefined
    maxAgeMs?: number | undefined
    now: number
  }): Promise<void> {
    const statements: D1PreparedStatement[] = []
    if (opts.keepEvents !== undefined) {
      statements.push(
        db
          .prepare(
            `DELETE FROM _eddy_sync_events WHERE id <= (SELECT id FROM _eddy_sync_events ORDER BY id DESC LIMIT 1 OFFSET ?1)`,
          )
          .bind(opts.keepEvents),
      )
    }
    if (opts.maxAgeMs !== undefined) {
      const cutoff = opts.now - opts.maxAgeMs
      statements.push(
        db
          .prepare('DELETE FROM _eddy_sync_events WHERE received_at < ?1')
          .bind(new Date(cutoff).toISOString()),
      )
      // An HLC starts with its wall time in 15 zero-padded digits, so text order is time order.
      const stamp = String(Math.max(0, Math.floor(cutoff))).padStart(15, '0')
      for (const p of plans.values()) {
        statements.push(
          db
            .prepare(`DELETE FROM ${q(p.table.name)} WHERE _deleted = 1 AND substr(_hlc, 1, 15) < ?1`)
            .bind(stamp),
        )
      }
    }
    if (statements.length === 0) return
    // Dropping tombstones changes what a write would read, so pruning is a guarded write too.
    await serial(async () => {
      for (let attempt = 1; ; attempt++) {
        const gen = await guarded(generation)
        try {
          await commit(gen, statements)
          return
        } catch (e) {
          if (isConcurrentWrite(e) && attempt < maxAttempts) continue
          throw unavailable(e)
        }
      }
    })
  }

  async function close(): Promise<void> {
    // The binding belongs to the runtime; closing only stops this adapter from being used again.
    closed = true
  }

  return {
    kind: 'd1',
    schema,
    migrate: () => guarded(migrate),
    write,
    pull,
    highWater,
    digestEntries,
    events,
    conflicts,
    health,
    prune,
    close,
  }
}
