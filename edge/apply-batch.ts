import { canonicalKey } from '../shared/digest.ts'
import { EddyError, isEddyError, must } from '../shared/errors.ts'
import { checkDrift } from '../shared/hlc.ts'
import type { Mutation, PushBody, PushResponse, PushResult } from '../shared/protocol.ts'
import { type IncomingWrite, type Outcome, reconcile, type StoredRow } from '../shared/reconcile.ts'
import type { Row, Schema, Table } from '../shared/schema.ts'
import { type FieldError, validateWrite } from '../shared/validators.ts'
import type { NewConflict, RowWrite, Warehouse, WarehouseTx } from './warehouse.ts'

export interface PushContext {
  /** The server clock (ms), for clock-drift checks and the audit trail. */
  readonly now: () => number
  /** The verified token's subject: it owns every clientId it pushes. Undefined without auth. */
  readonly subject?: string | undefined
  /**
   * The token's tenant claim: scopes tables that have a tenant column. Undefined: no scoping (no
   * auth, or an admin without a tenant). Null: a caller without a tenant, kept out of those tables.
   */
  readonly tenant?: string | null | undefined
}

interface Prepared {
  readonly index: number
  readonly seq: number
  readonly tx: string | undefined
  readonly table: Table
  readonly keyText: string
  readonly write: IncomingWrite
}

/**
 * Whether a write's outcome can be left to the store's hlc guard (`WarehouseTx.writeNewer`)
 * without reading the stored row: an lww upsert that sets every column decides `applied` vs
 * `stale` on the stamps alone, and the row it writes (and its `required` check) does not depend on
 * what is stored. Deletes keep the stored values in the tombstone, partial upserts keep the
 * columns they omit, and `returns-data` answers with the stored row: those read it first. (Tenant
 * scope needs no read: the tenant column is part of the key, checked by `scopeToTenant`.) So do
 * keys written more than once in a batch
 * (`mayGoDirect` is only the per-write half; the caller checks that).
 */
function mayGoDirect(table: Table, w: IncomingWrite): boolean {
  if (table.conflict !== 'lww' || table.returnsData || w.op !== 'upsert') return false
  const values = w.values ?? {}
  for (const c of table.columns) {
    if (!Object.hasOwn(w.key, c.name) && !Object.hasOwn(values, c.name)) return false
  }
  return true
}

/** What a result shows of a stored row: its values, or null for none or a tombstone. */
function shown(r: StoredRow | undefined): Row | null {
  return r === undefined || r.deleted ? null : r.values
}

/** The mutations' positions in seq order (stable for equal seqs; no sort when already in order). */
function seqOrder(mutations: readonly Mutation[]): number[] {
  const order = new Array<number>(mutations.length)
  let sorted = true
  let last = Number.NEGATIVE_INFINITY
  for (let i = 0; i < mutations.length; i++) {
    order[i] = i
    const seq = mutations[i]?.seq ?? 0
    if (seq < last) sorted = false
    last = seq
  }
  if (!sorted) order.sort((a, b) => (mutations[a]?.seq ?? 0) - (mutations[b]?.seq ?? 0))
  return order
}

function rejected(seq: number, error: FieldError): PushResult {
  return { seq, status: 'rejected', error: { code: error.code, message: error.message, field: error.field } }
}

function forbidden(message: string): EddyError {
  return new EddyError('forbidden', message, { status: 403 })
}

/**
 * Refuses a write that names another tenant than the caller's. The tenant column is part of the key
 * (the schema insists), so the answer depends on the request alone, never on what is stored.
 */
function scopeToTenant(table: Table, key: Row, values: Row, tenant: string): void {
  const colName = table.tenantColumn
  if (colName === undefined) return
  for (const source of [key, values]) {
    if (Object.hasOwn(source, colName) && String(source[colName]) !== tenant)
      throw forbidden(`${table.name}: ${colName} must be the caller's tenant`)
  }
}

/** The checks of one mutation that need no stored row: its write in canonical form, or why it is rejected. */
function prepare(
  schema: Schema,
  m: Mutation,
  index: number,
  now: number,
  ctx: PushContext,
): FieldError | Prepared {
  const table = schema.tables.get(m.table)
  if (table === undefined)
    return { code: 'unknown_table', field: 'table', message: `unknown table '${m.table}'` }
  const checked = validateWrite(table, m.op, m.key, m.values)
  const first = checked.errors[0]
  if (first !== undefined) return first
  try {
    checkDrift(m.hlc, now, schema.maxClockDriftMs)
  } catch (e) {
    if (isEddyError(e)) return { code: e.code, field: 'hlc', message: e.message }
    throw e
  }
  if (ctx.tenant === null && table.tenantColumn !== undefined)
    throw forbidden(`${table.name} is scoped by tenant, and the caller has none`)
  if (typeof ctx.tenant === 'string') scopeToTenant(table, checked.key, checked.values, ctx.tenant)
  const write: IncomingWrite =
    m.op === 'delete'
      ? { op: 'delete', key: checked.key, hlc: m.hlc }
      : { op: 'upsert', key: checked.key, values: checked.values, hlc: m.hlc }
  return { index, seq: m.seq, tx: m.tx, table, keyText: canonicalKey(table, checked.key), write }
}

/**
 * Applies one push in one warehouse transaction: duplicates, validation, clock drift, tx groups,
 * per-table reconciliation, the set-based writes, conflicts, lastSeq and the audit event all take
 * effect together or not at all. A whole-request failure (403, 503) throws and nothing is applied.
 */
export function applyBatch(warehouse: Warehouse, body: PushBody, ctx: PushContext): Promise<PushResponse> {
  const started = performance.now()
  const receivedAt = new Date(ctx.now()).toISOString()
  const run = (tx: WarehouseTx): Promise<PushResponse> =>
    applyIn(tx, warehouse.schema, body, ctx, started, receivedAt)
  // Workers tie every promise to the request that created it: one request may not finish another's
  // push (the runtime cancels the waiting request as hung), so there each push commits on its own.
  if (IN_WORKERS) return warehouse.write(run)
  let queue = queues.get(warehouse)
  if (queue === undefined) {
    queue = new PushQueue(warehouse)
    queues.set(warehouse, queue)
  }
  return queue.submit(body.mutations.length, (tx) =>
    applyIn(tx, warehouse.schema, body, ctx, started, receivedAt),
  )
}

/** Whether this runs in Cloudflare's Workers runtime (its documented `navigator.userAgent`). */
const IN_WORKERS =
  (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent === 'Cloudflare-Workers'

/** Pushes in one group transaction together hold at most this many mutations (one larger push runs alone). */
const MAX_GROUP_MUTATIONS = 2000

interface Waiting {
  readonly size: number
  readonly run: (tx: WarehouseTx) => Promise<PushResponse>
  readonly resolve: (r: PushResponse) => void
  readonly reject: (e: unknown) => void
}

/**
 * Group commit for the pushes of one warehouse. A push that arrives while none is being written
 * starts at once; pushes that arrive meanwhile wait, and then run one after another inside ONE
 * warehouse transaction (one BEGIN/COMMIT, one lock, one durable flush for all of them). Each push
 * still runs its own `applyIn` against that transaction, so it sees the pushes before it exactly as
 * if they had committed first: per-push results, lastSeq and audit events are unchanged. If any push
 * of a group throws, the group's transaction rolls back and each of its pushes runs again in a
 * transaction of its own, so a failing push fails alone and takes nothing of the others with it.
 */
class PushQueue {
  private readonly waiting: Waiting[] = []
  private draining = false

  constructor(private readonly warehouse: Warehouse) {}

  submit(size: number, run: (tx: WarehouseTx) => Promise<PushResponse>): Promise<PushResponse> {
    return new Promise<PushResponse>((resolve, reject) => {
      this.waiting.push({ size, run, resolve, reject })
      if (!this.draining) void this.drain()
    })
  }

  private async drain(): Promise<void> {
    this.draining = true
    try {
      for (let next = this.take(); next.length > 0; next = this.take()) {
        if (next.length === 1) await this.alone(must(next[0], 'push'))
        else await this.together(next)
      }
    } finally {
      this.draining = false
    }
  }

  /** The waiting pushes of the next group: in arrival order, up to MAX_GROUP_MUTATIONS together. */
  private take(): Waiting[] {
    let total = 0
    let n = 0
    for (const w of this.waiting) {
      if (n > 0 && total + w.size > MAX_GROUP_MUTATIONS) break
      total += w.size
      n += 1
    }
    return this.waiting.splice(0, n)
  }

  private async alone(w: Waiting): Promise<void> {
    try {
      w.resolve(await this.warehouse.write((tx) => w.run(tx)))
    } catch (e) {
      w.reject(e)
    }
  }

  private async together(group: readonly Waiting[]): Promise<void> {
    let out: PushResponse[]
    try {
      out = await this.warehouse.write(async (tx) => {
        const results: PushResponse[] = []
        for (const w of group) results.push(await w.run(tx))
        return results
      })
    } catch {
      for (const w of group) await this.alone(w)
      return
    }
    group.forEach((w, i) => {
      w.resolve(must(out[i], 'push response'))
    })
  }
}

const queues = new WeakMap<Warehouse, PushQueue>()

/** One push against an open write transaction (see `applyBatch`). */
async function applyIn(
  tx: WarehouseTx,
  schema: Schema,
  body: PushBody,
  ctx: PushContext,
  started: number,
  receivedAt: string,
): Promise<PushResponse> {
  const { clientId } = body
  const { lastSeq, owner } = await tx.client(clientId)
  if (ctx.subject !== undefined && owner !== undefined && owner !== ctx.subject) {
    throw forbidden(`clientId ${clientId} belongs to another user`)
  }
  const results: Array<PushResult | undefined> = new Array(body.mutations.length)
  const { mutations } = body
  const order = seqOrder(mutations)

  // 1. Per-mutation checks that need no stored row.
  let high = lastSeq
  const prepared: Prepared[] = []
  const aborted = new Set<string>()
  const now = ctx.now()
  for (const index of order) {
    const m = must(mutations[index], 'mutation')
    if (m.seq <= high) {
      results[index] = { seq: m.seq, status: 'duplicate' }
      continue
    }
    high = m.seq
    const error = prepare(schema, m, index, now, ctx)
    if ('write' in error) {
      prepared.push(error)
    } else {
      results[index] = rejected(m.seq, error)
      if (m.tx !== undefined) aborted.add(m.tx)
    }
  }

  // 2. One read per table for every key whose outcome needs its stored row; the rest (see
  // `mayGoDirect`) are decided by the store's hlc guard when they are written.
  const stored = new Map<string, Map<string, StoredRow>>()
  const byTable = new Map<Table, Map<string, { key: Row; direct: boolean }>>()
  for (const p of prepared) {
    let keys = byTable.get(p.table)
    if (keys === undefined) {
      keys = new Map()
      byTable.set(p.table, keys)
    }
    const seen = keys.get(p.keyText)
    if (seen === undefined) {
      keys.set(p.keyText, {
        key: p.write.key,
        direct: tx.writeNewer !== undefined && mayGoDirect(p.table, p.write),
      })
    } else {
      seen.direct = false
    }
  }
  const direct = new Set<Prepared>()
  for (const p of prepared) if (byTable.get(p.table)?.get(p.keyText)?.direct === true) direct.add(p)
  for (const [table, keys] of byTable) {
    const toRead: Row[] = []
    for (const k of keys.values()) if (!k.direct) toRead.push(k.key)
    const found = toRead.length === 0 ? new Map<string, StoredRow>() : await tx.readRows(table, toRead)
    stored.set(table.name, found)
  }

  // 3. Reconcile in seq order against an in-memory image, folding repeated keys. When a tx
  // group turns out to be rejected, start over without it: the others must not see its writes.
  let outcomes: Array<{ outcome: Outcome; before: StoredRow | undefined } | undefined> = []
  const causes = new Map<number, FieldError>()
  let image = new Map<string, Map<string, StoredRow>>()
  for (;;) {
    outcomes = new Array(mutations.length)
    image = new Map([...stored].map(([t, rows]) => [t, new Map(rows)]))
    let restart = false
    for (const p of prepared) {
      if (p.tx !== undefined && aborted.has(p.tx)) continue
      const rows = image.get(p.table.name) ?? new Map<string, StoredRow>()
      image.set(p.table.name, rows)
      const before = rows.get(p.keyText)
      const outcome = reconcile(p.table, before, p.write)
      if (outcome.status === 'rejected' && p.tx !== undefined) {
        causes.set(p.index, outcome.error)
        aborted.add(p.tx)
        restart = true
        break
      }
      // a direct key is written once in the batch: nothing later reads its image
      if (outcome.status === 'applied' && !direct.has(p)) rows.set(p.keyText, outcome.row)
      outcomes[p.index] = { outcome, before }
    }
    if (!restart) break
  }

  // 4. Results, rows to write, conflicts.
  const writes = new Map<Table, Map<string, RowWrite>>()
  /** Direct writes per table, with the index of the result their guard settles. */
  const guarded = new Map<Table, { rows: RowWrite[]; indexes: number[] }>()
  const conflicts: NewConflict[] = []
  for (const p of prepared) {
    const { seq, index, table } = p
    if (p.tx !== undefined && aborted.has(p.tx)) {
      const cause = causes.get(index)
      results[index] = rejected(
        seq,
        cause ?? {
          code: 'tx_aborted',
          field: 'tx',
          message: `another mutation of tx ${p.tx} was rejected`,
        },
      )
      continue
    }
    const done = outcomes[index]
    if (done === undefined) throw new EddyError('internal', `no outcome for seq ${seq}`)
    const { outcome, before } = done
    switch (outcome.status) {
      case 'applied': {
        if (direct.has(p)) {
          let g = guarded.get(table)
          if (g === undefined) {
            g = { rows: [], indexes: [] }
            guarded.set(table, g)
          }
          g.rows.push({ key: p.write.key, row: outcome.row, clientId })
          g.indexes.push(index)
          // `mayGoDirect` excludes returns-data tables; the guard may still turn this into stale
          results[index] = { seq, status: 'applied' }
          break
        }
        let rows = writes.get(table)
        if (rows === undefined) {
          rows = new Map()
          writes.set(table, rows)
        }
        rows.set(p.keyText, { key: p.write.key, row: outcome.row, clientId })
        results[index] = table.returnsData
          ? { seq, status: 'applied', row: shown(outcome.row) }
          : { seq, status: 'applied' }
        break
      }
      case 'stale':
        results[index] = table.returnsData
          ? { seq, status: 'stale', row: shown(before) }
          : { seq, status: 'stale' }
        break
      case 'conflict':
        conflicts.push({
          table: table.name,
          key: p.write.key,
          stored: shown(outcome.stored),
          incoming: p.write.op === 'delete' ? null : { ...p.write.values, ...p.write.key },
          hlc: p.write.hlc,
          clientId,
          tenant: typeof ctx.tenant === 'string' ? ctx.tenant : undefined,
        })
        results[index] = table.returnsData
          ? { seq, status: 'conflict', row: shown(outcome.stored) }
          : { seq, status: 'conflict' }
        break
      case 'rejected':
        results[index] = rejected(seq, outcome.error)
        break
    }
  }
  // Only the final image of each key is written (the fold), in one set-based write per table.
  for (const [table, rows] of writes) {
    const latest = image.get(table.name)
    const finalRows = [...rows].map(([keyText, w]) => {
      const last = latest?.get(keyText)
      return last === undefined ? w : { ...w, row: last }
    })
    await tx.writeRows(table, finalRows)
  }
  for (const [table, g] of guarded) {
    const written = await must(tx.writeNewer, 'writeNewer').call(tx, table, g.rows)
    g.indexes.forEach((index, i) => {
      if (written[i] !== true)
        results[index] = { seq: must(results[index], 'push result').seq, status: 'stale' }
    })
  }
  if (conflicts.length > 0) await tx.addConflicts(conflicts)
  await tx.setLastSeq(clientId, high, ctx.subject)

  const final = results.map((r) => must(r, 'push result'))
  const count = (s: PushResult['status']): number => final.filter((r) => r.status === s).length
  await tx.addEvent({
    clientId,
    receivedAt,
    mutations: final.length,
    applied: count('applied'),
    stale: count('stale'),
    duplicate: count('duplicate'),
    conflict: count('conflict'),
    rejected: count('rejected'),
    durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    tenant: typeof ctx.tenant === 'string' ? ctx.tenant : undefined,
  })
  return { lastSeq: high, results: final }
}
