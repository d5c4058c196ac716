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
  /** `mayGoDirect` for this write alone (the batch may still repeat its key). */
  readonly direct: boolean
}

/**
 * What one mutation's checks that need no stored row concluded: its write, why it is rejected, or
 * what refuses the whole push (a 403, or an unexpected failure of the checks) once the mutation is
 * reached as a new one: a duplicate is never checked, so nothing about it can refuse the push.
 */
type Checked = Prepared | FieldError | { readonly refuse: unknown }

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
 * The 403 for a write that names another tenant than the caller's, if it does. The tenant column is
 * part of the key (the schema insists), so the answer depends on the request alone, never on what
 * is stored.
 */
function scopeToTenant(table: Table, key: Row, values: Row, tenant: string): EddyError | undefined {
  const colName = table.tenantColumn
  if (colName === undefined) return undefined
  for (const source of [key, values]) {
    if (Object.hasOwn(source, colName) && String(source[colName]) !== tenant)
      return forbidden(`${table.name}: ${colName} must be the caller's tenant`)
  }
  return undefined
}

/**
 * The wall time of a stamp that starts with 15 digits and a colon (the envelope check has already
 * held every stamp to the hlc pattern), or undefined for anything else.
 */
function wallOf(hlc: string): number | undefined {
  if (hlc.length < 17 || hlc.charCodeAt(15) !== 58) return undefined
  let wall = 0
  for (let i = 0; i < 15; i++) {
    const d = hlc.charCodeAt(i) - 48
    if (d < 0 || d > 9) return undefined
    wall = wall * 10 + d
  }
  return wall
}

/** `checkDrift` as a field error; stamps well within the limit skip its parse. */
function driftError(hlc: string, now: number, maxDriftMs: number): FieldError | undefined {
  const wall = wallOf(hlc)
  if (wall !== undefined && wall - now <= maxDriftMs) return undefined
  try {
    checkDrift(hlc, now, maxDriftMs)
  } catch (e) {
    if (isEddyError(e)) return { code: e.code, field: 'hlc', message: e.message }
    throw e
  }
  return undefined
}

/**
 * The checks of one mutation that need no stored row: its write in canonical form, why it is
 * rejected, or the error that refuses the whole push (thrown when the mutation is reached as a
 * new one: a duplicate is never checked against the caller's tenant).
 */
function prepare(schema: Schema, m: Mutation, index: number, now: number, ctx: PushContext): Checked {
  const table = schema.tables.get(m.table)
  if (table === undefined)
    return { code: 'unknown_table', field: 'table', message: `unknown table '${m.table}'` }
  const checked = validateWrite(table, m.op, m.key, m.values)
  const first = checked.errors[0]
  if (first !== undefined) return first
  const skew = driftError(m.hlc, now, schema.maxClockDriftMs)
  if (skew !== undefined) return skew
  if (ctx.tenant === null && table.tenantColumn !== undefined)
    return { refuse: forbidden(`${table.name} is scoped by tenant, and the caller has none`) }
  if (typeof ctx.tenant === 'string') {
    const refused = scopeToTenant(table, checked.key, checked.values, ctx.tenant)
    if (refused !== undefined) return { refuse: refused }
  }
  const write: IncomingWrite =
    m.op === 'delete'
      ? { op: 'delete', key: checked.key, hlc: m.hlc }
      : { op: 'upsert', key: checked.key, values: checked.values, hlc: m.hlc }
  return {
    index,
    seq: m.seq,
    tx: m.tx,
    table,
    keyText: canonicalKey(table, checked.key),
    write,
    direct: mayGoDirect(table, write),
  }
}

/**
 * Applies one push in one warehouse transaction: duplicates, validation, clock drift, tx groups,
 * per-table reconciliation, the set-based writes, conflicts, lastSeq and the audit event all take
 * effect together or not at all. A whole-request failure (403, 503) throws and nothing is applied.
 */
export function applyBatch(warehouse: Warehouse, body: PushBody, ctx: PushContext): Promise<PushResponse> {
  const started = performance.now()
  const now = ctx.now()
  const receivedAt = new Date(now).toISOString()
  // The checks that need no stored row run before the push queues for the warehouse, so under load
  // they overlap the writes of the pushes ahead of it instead of holding the write lock.
  const { schema } = warehouse
  const checks = new Array<Checked>(body.mutations.length)
  body.mutations.forEach((m, i) => {
    try {
      checks[i] = prepare(schema, m, i, now, ctx)
    } catch (e) {
      checks[i] = { refuse: e }
    }
  })
  const run = (tx: WarehouseTx): Promise<PushResponse> => applyIn(tx, body, checks, ctx, started, receivedAt)
  // Workers tie every promise to the request that created it: one request may not finish another's
  // push (the runtime cancels the waiting request as hung), so there each push commits on its own.
  if (IN_WORKERS) return warehouse.write(run)
  let queue = queues.get(warehouse)
  if (queue === undefined) {
    queue = new PushQueue(warehouse)
    queues.set(warehouse, queue)
  }
  return queue.submit(body.mutations.length, body.clientId, run)
}

/** Whether this runs in Cloudflare's Workers runtime (its documented `navigator.userAgent`). */
const IN_WORKERS =
  (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent === 'Cloudflare-Workers'

/** Pushes in one group transaction together hold at most this many mutations (one larger push runs alone). */
const MAX_GROUP_MUTATIONS = 2000

interface Waiting {
  readonly size: number
  readonly clientId: string
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

  submit(
    size: number,
    clientId: string,
    run: (tx: WarehouseTx) => Promise<PushResponse>,
  ): Promise<PushResponse> {
    return new Promise<PushResponse>((resolve, reject) => {
      this.waiting.push({ size, clientId, run, resolve, reject })
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
        // every push of the group starts with its client's bookkeeping: one read for all of them
        await tx.preloadClients?.([...new Set(group.map((w) => w.clientId))])
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

/** One push against an open write transaction (see `applyBatch`), its mutations already checked. */
async function applyIn(
  tx: WarehouseTx,
  body: PushBody,
  checks: readonly Checked[],
  ctx: PushContext,
  started: number,
  receivedAt: string,
): Promise<PushResponse> {
  const { clientId, mutations } = body
  const { lastSeq, owner } = await tx.client(clientId)
  if (ctx.subject !== undefined && owner !== undefined && owner !== ctx.subject) {
    throw forbidden(`clientId ${clientId} belongs to another user`)
  }
  const results: Array<PushResult | undefined> = new Array(mutations.length)

  // 1. Duplicates by seq; the new mutations' checks, in seq order.
  let high = lastSeq
  const prepared: Prepared[] = []
  const aborted = new Set<string>()
  for (const index of seqOrder(mutations)) {
    const m = must(mutations[index], 'mutation')
    if (m.seq <= high) {
      results[index] = { seq: m.seq, status: 'duplicate' }
      continue
    }
    high = m.seq
    const checked = must(checks[index], 'checked mutation')
    if ('refuse' in checked) throw checked.refuse
    if ('write' in checked) {
      prepared.push(checked)
    } else {
      results[index] = rejected(m.seq, checked)
      if (m.tx !== undefined) aborted.add(m.tx)
    }
  }

  // 2. One read per table for every key whose outcome needs its stored row; the rest (see
  // `mayGoDirect`: written once in the batch) are decided by the store's hlc guard when written.
  const firstByTable = new Map<Table, Map<string, Prepared>>()
  const repeated = new Set<Prepared>()
  let lastTable: Table | undefined
  let firsts = new Map<string, Prepared>()
  for (const p of prepared) {
    if (p.table !== lastTable) {
      lastTable = p.table
      firsts = firstByTable.get(p.table) ?? new Map<string, Prepared>()
      firstByTable.set(p.table, firsts)
    }
    const first = firsts.get(p.keyText)
    if (first === undefined) firsts.set(p.keyText, p)
    else {
      repeated.add(first)
      repeated.add(p)
    }
  }
  const canDirect = tx.writeNewer !== undefined
  const isDirect = (p: Prepared): boolean => canDirect && p.direct && !repeated.has(p)
  const stored = new Map<string, Map<string, StoredRow>>()
  for (const [table, keys] of firstByTable) {
    const toRead: Row[] = []
    for (const p of keys.values()) if (!isDirect(p)) toRead.push(p.write.key)
    const found = toRead.length === 0 ? new Map<string, StoredRow>() : await tx.readRows(table, toRead)
    stored.set(table.name, found)
  }

  // 3. Reconcile in seq order against an in-memory image, folding repeated keys. When a tx
  // group turns out to be rejected, start over without it: the others must not see its writes.
  let outcomes: Array<Outcome | undefined> = []
  let befores: Array<StoredRow | undefined> = []
  const causes = new Map<number, FieldError>()
  let image = new Map<string, Map<string, StoredRow>>()
  for (;;) {
    outcomes = new Array(mutations.length)
    befores = new Array(mutations.length)
    image = new Map([...stored].map(([t, rows]) => [t, new Map(rows)]))
    let restart = false
    for (const p of prepared) {
      if (p.tx !== undefined && aborted.has(p.tx)) continue
      const direct = isDirect(p)
      // a direct key is written once in the batch and was not read: nothing is stored for it here
      const rows = direct ? undefined : image.get(p.table.name)
      const before = rows?.get(p.keyText)
      const outcome = reconcile(p.table, before, p.write)
      if (outcome.status === 'rejected' && p.tx !== undefined) {
        causes.set(p.index, outcome.error)
        aborted.add(p.tx)
        restart = true
        break
      }
      if (outcome.status === 'applied' && rows !== undefined) rows.set(p.keyText, outcome.row)
      outcomes[p.index] = outcome
      befores[p.index] = before
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
    const outcome = outcomes[index]
    if (outcome === undefined) throw new EddyError('internal', `no outcome for seq ${seq}`)
    switch (outcome.status) {
      case 'applied': {
        if (isDirect(p)) {
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
          ? { seq, status: 'stale', row: shown(befores[index]) }
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

  const final = new Array<PushResult>(results.length)
  const counts = { applied: 0, stale: 0, duplicate: 0, conflict: 0, rejected: 0 }
  for (let i = 0; i < results.length; i++) {
    const result = must(results[i], 'push result')
    final[i] = result
    counts[result.status] += 1
  }
  await tx.addEvent({
    clientId,
    receivedAt,
    mutations: final.length,
    ...counts,
    durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    tenant: typeof ctx.tenant === 'string' ? ctx.tenant : undefined,
  })
  return { lastSeq: high, results: final }
}
