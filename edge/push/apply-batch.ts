import { canonicalKey } from '../../shared/digest.ts'
import { EddyError, isEddyError, must } from '../../shared/errors.ts'
import { checkDrift } from '../../shared/hlc.ts'
import type { Mutation, PushBody, PushResponse, PushResult } from '../../shared/protocol.ts'
import { type IncomingWrite, type Outcome, reconcile, type StoredRow } from '../../shared/reconcile.ts'
import type { Row, Schema, Table } from '../../shared/schema.ts'
import { type FieldError, validateWrite } from '../../shared/validators.ts'
import type { NewConflict, RowWrite, Warehouse, WarehouseTx } from '../warehouse/warehouse.ts'

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

/**
 * The mutations of a push its client has not sent before, as indexes in seq order, and the client's
 * lastSeq after them. A seq at or below the stored lastSeq, or repeated within the push, is a
 * duplicate: marked so in `results` and never checked (a retried push must not be refused for it).
 */
function freshInSeqOrder(
  mutations: readonly Mutation[],
  lastSeq: number,
  results: Array<PushResult | undefined>,
): { fresh: number[]; high: number } {
  let high = lastSeq
  const fresh: number[] = []
  for (const index of seqOrder(mutations)) {
    const m = must(mutations[index], 'mutation')
    if (m.seq <= high) {
      results[index] = { seq: m.seq, status: 'duplicate' }
      continue
    }
    high = m.seq
    fresh.push(index)
  }
  return { fresh, high }
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

/** One push whose checks that need no stored row are made (or left to `streamOne`): what `applyPushes` applies. */
export interface CheckedPush {
  readonly schema: Schema
  readonly body: PushBody
  readonly ctx: PushContext
  /**
   * Per mutation, in body order. Undefined for a push `streamable` said may be checked while it is
   * written (`streamOne`); `checksOf` makes them when it is applied any other way.
   */
  checks: readonly Checked[] | undefined
  /** The server clock when the push arrived (ms), for its clock-drift checks. */
  readonly now: number
  /** `performance.now()` when the push arrived: its audit event's duration runs from there. */
  readonly started: number
  readonly receivedAt: string
}

/** `prepare`, with an unexpected failure of the checks turned into a refusal of the push. */
function prepareOrRefuse(schema: Schema, m: Mutation, index: number, now: number, ctx: PushContext): Checked {
  try {
    return prepare(schema, m, index, now, ctx)
  } catch (e) {
    return { refuse: e }
  }
}

/** A push that arrived, its checks not made yet. */
function arrived(schema: Schema, body: PushBody, ctx: PushContext): CheckedPush {
  const started = performance.now()
  const now = ctx.now()
  return { schema, body, ctx, checks: undefined, now, started, receivedAt: new Date(now).toISOString() }
}

/** A push's checks (see `prepare`), made once. */
function checksOf(push: CheckedPush): readonly Checked[] {
  if (push.checks !== undefined) return push.checks
  const { schema, body, ctx, now } = push
  const checks = new Array<Checked>(body.mutations.length)
  body.mutations.forEach((m, i) => {
    checks[i] = prepareOrRefuse(schema, m, i, now, ctx)
  })
  push.checks = checks
  return checks
}

/**
 * The checks of a push that need no stored row (see `prepare`). They run before the push queues
 * for the warehouse, so under load they overlap the writes of the pushes ahead of it instead of
 * holding the write lock.
 */
export function checkPush(schema: Schema, body: PushBody, ctx: PushContext): CheckedPush {
  const push = arrived(schema, body, ctx)
  checksOf(push)
  return push
}

/** What became of one push of a group: its answer, or what refuses it (a 403), nothing of it applied. */
export type PushOutcome = { readonly response: PushResponse } | { readonly refused: unknown }

/**
 * Applies one push in one warehouse transaction: duplicates, validation, clock drift, tx groups,
 * per-table reconciliation, the set-based writes, conflicts, lastSeq and the audit event all take
 * effect together or not at all. A whole-request failure (403, 503) throws and nothing is applied.
 */
export function applyBatch(warehouse: Warehouse, body: PushBody, ctx: PushContext): Promise<PushResponse> {
  const { schema } = warehouse
  const push =
    warehouse.writesElsewhere === true && streamable(schema, body)
      ? arrived(schema, body, ctx)
      : checkPush(schema, body, ctx)
  // Workers tie every promise to the request that created it: one request may not finish another's
  // push (the runtime cancels the waiting request as hung), so there each push commits on its own.
  if (IN_WORKERS) return writeAlone(warehouse, push)
  let queue = queues.get(warehouse)
  if (queue === undefined) {
    queue = new PushQueue(warehouse)
    queues.set(warehouse, queue)
  }
  return queue.submit(push)
}

/** Whether this runs in Cloudflare's Workers runtime (its documented `navigator.userAgent`). */
const IN_WORKERS =
  (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent === 'Cloudflare-Workers'

/** Pushes in one group transaction together hold at most this many mutations (one larger push runs alone). */
const MAX_GROUP_MUTATIONS = 2000

interface Waiting {
  readonly push: CheckedPush
  readonly resolve: (r: PushResponse) => void
  readonly reject: (e: unknown) => void
}

/**
 * Group commit for the pushes of one warehouse. A push that arrives while none is being written
 * starts at once; pushes that arrive meanwhile wait, and then are applied together by
 * `applyPushes` in ONE warehouse transaction (one reconcile, one read and one write per table, one
 * BEGIN/COMMIT and durable flush for all of them), with per-push results, lastSeq and audit events
 * exactly as if they had committed one after another. A push refused with a 403 is refused alone.
 * If the group's transaction throws, it rolls back and each of its pushes runs again in a
 * transaction of its own, so a failing push fails alone and takes nothing of the others with it.
 */
class PushQueue {
  private readonly waiting: Waiting[] = []
  private draining = false

  constructor(private readonly warehouse: Warehouse) {}

  submit(push: CheckedPush): Promise<PushResponse> {
    return new Promise<PushResponse>((resolve, reject) => {
      this.waiting.push({ push, resolve, reject })
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
      const size = w.push.body.mutations.length
      if (n > 0 && total + size > MAX_GROUP_MUTATIONS) break
      total += size
      n += 1
    }
    return this.waiting.splice(0, n)
  }

  private async alone(w: Waiting): Promise<void> {
    try {
      w.resolve(await writeAlone(this.warehouse, w.push))
    } catch (e) {
      w.reject(e)
    }
  }

  private async together(group: readonly Waiting[]): Promise<void> {
    let out: PushOutcome[]
    try {
      out = await this.warehouse.write((tx) =>
        applyPushes(
          tx,
          group.map((w) => w.push),
        ),
      )
    } catch {
      for (const w of group) await this.alone(w)
      return
    }
    group.forEach((w, i) => {
      const o = must(out[i], 'push outcome')
      if ('refused' in o) w.reject(o.refused)
      else w.resolve(o.response)
    })
  }
}

const queues = new WeakMap<Warehouse, PushQueue>()

/**
 * One push in a transaction of its own. A push left unchecked by `streamable` is first written by
 * `streamOne`; if that finds it needs more (a stored row, a key repeated in another spelling), the
 * transaction rolls back and the push runs again through `applyPushes`.
 */
async function writeAlone(warehouse: Warehouse, push: CheckedPush): Promise<PushResponse> {
  if (push.checks === undefined) {
    try {
      return await warehouse.write((tx) =>
        tx.writeNewer === undefined ? applyOne(tx, push) : streamOne(tx, push),
      )
    } catch (e) {
      if (!(e instanceof NotStreamable)) throw e
    }
  }
  return warehouse.write((tx) => applyOne(tx, push))
}

/** One push against an open write transaction; its refusal throws (the transaction rolls back). */
async function applyOne(tx: WarehouseTx, push: CheckedPush): Promise<PushResponse> {
  const o = must((await applyPushes(tx, [push]))[0], 'push outcome')
  if ('refused' in o) throw o.refused
  return o.response
}

/** A push of `applyPushes` that its checks let through, and what is being decided for it. */
interface Admitted {
  readonly push: CheckedPush
  /** Its position among the pushes (and its outcome's). */
  readonly slot: number
  /** Per mutation, in body order. */
  readonly results: Array<PushResult | undefined>
  /** The new mutations that passed their checks, in seq order. */
  readonly prepared: Prepared[]
  /** Its tx groups with a rejected member: none of their writes apply. */
  readonly aborted: Set<string>
  /** The push's new lastSeq. */
  readonly high: number
  outcomes: Array<Outcome | undefined>
  /** The stored row each outcome was decided against (for `returns-data` answers). */
  befores: Array<StoredRow | undefined>
}

/**
 * Applies pushes against one open write transaction, as if each had committed on its own, one
 * after another in the given order: each keeps its clientId and its duplicates by seq (a later
 * push of the same client sees the earlier one's lastSeq), its tx groups (a rejected group of one
 * push never touches another), its owner and tenant checks, and its own audit event; a key written
 * by several pushes is decided in order against the writes before it. But the group costs about
 * one push: one reconcile over all of them, one read per table of the stored rows it needs, one
 * set-based write per table (only a key's final image is written), one conflicts insert. A push
 * refused with a 403 is answered `refused` and leaves nothing behind; any other failure throws,
 * and the caller rolls the whole transaction back.
 */
export async function applyPushes(tx: WarehouseTx, pushes: readonly CheckedPush[]): Promise<PushOutcome[]> {
  const outcomes = new Array<PushOutcome>(pushes.length)
  // every push starts with its client's bookkeeping: one read for all of them
  if (pushes.length > 1) await tx.preloadClients?.([...new Set(pushes.map((p) => p.body.clientId))])

  // 1. Per push, in order: the owner check, duplicates by seq, the new mutations' checks in seq
  // order. `client` answers with the lastSeqs the pushes before this one recorded.
  const admitted: Admitted[] = []
  for (let at = 0; at < pushes.length; at++) {
    const push = must(pushes[at], 'push')
    const { clientId, mutations } = push.body
    const { subject } = push.ctx
    const { lastSeq, owner } = await tx.client(clientId)
    if (subject !== undefined && owner !== undefined && owner !== subject) {
      outcomes[at] = { refused: forbidden(`clientId ${clientId} belongs to another user`) }
      continue
    }
    const results: Array<PushResult | undefined> = new Array(mutations.length)
    const { fresh, high } = freshInSeqOrder(mutations, lastSeq, results)
    const prepared: Prepared[] = []
    const aborted = new Set<string>()
    let refused: { readonly refuse: unknown } | undefined
    const checks = checksOf(push)
    for (const index of fresh) {
      const m = must(mutations[index], 'mutation')
      const checked = must(checks[index], 'checked mutation')
      if ('refuse' in checked) {
        refused = checked
        break
      }
      if ('write' in checked) {
        prepared.push(checked)
      } else {
        results[index] = rejected(m.seq, checked)
        if (m.tx !== undefined) aborted.add(m.tx)
      }
    }
    if (refused !== undefined) {
      outcomes[at] = { refused: refused.refuse }
      continue
    }
    await tx.setLastSeq(clientId, high, subject)
    admitted.push({ push, slot: at, results, prepared, aborted, high, outcomes: [], befores: [] })
  }

  // 2. One read per table for every key whose outcome needs its stored row; the rest (see
  // `mayGoDirect`: written once in the whole group) are decided by the store's hlc guard when written.
  const firstByTable = new Map<Table, Map<string, Prepared>>()
  const repeated = new Set<Prepared>()
  for (const a of admitted) {
    let lastTable: Table | undefined
    let firsts = new Map<string, Prepared>()
    for (const p of a.prepared) {
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

  // 3. Reconcile push after push, each in seq order, against one in-memory image, folding repeated
  // keys. When a tx group turns out to be rejected, start over without it: no write may see its.
  const causes = new Map<Prepared, FieldError>()
  let image = new Map<string, Map<string, StoredRow>>()
  for (let restart = true; restart; ) {
    restart = false
    image = new Map([...stored].map(([t, rows]) => [t, new Map(rows)]))
    for (const a of admitted) {
      const n = a.push.body.mutations.length
      a.outcomes = new Array(n)
      a.befores = new Array(n)
      for (const p of a.prepared) {
        if (p.tx !== undefined && a.aborted.has(p.tx)) continue
        // a direct key is written once in the group and was not read: nothing is stored for it here
        const rows = isDirect(p) ? undefined : image.get(p.table.name)
        const before = rows?.get(p.keyText)
        const outcome = reconcile(p.table, before, p.write)
        if (outcome.status === 'rejected' && p.tx !== undefined) {
          causes.set(p, outcome.error)
          a.aborted.add(p.tx)
          restart = true
          break
        }
        if (outcome.status === 'applied' && rows !== undefined) rows.set(p.keyText, outcome.row)
        a.outcomes[p.index] = outcome
        a.befores[p.index] = before
      }
      if (restart) break
    }
  }

  // 4. Results, rows to write, conflicts.
  const writes = new Map<Table, Map<string, RowWrite>>()
  /** Direct writes per table, with the results their guard settles. */
  const guarded = new Map<
    Table,
    { rows: RowWrite[]; results: Array<Array<PushResult | undefined>>; indexes: number[] }
  >()
  const conflicts: NewConflict[] = []
  for (const a of admitted) {
    const { results } = a
    const { clientId } = a.push.body
    const tenant = typeof a.push.ctx.tenant === 'string' ? a.push.ctx.tenant : undefined
    for (const p of a.prepared) {
      const { seq, index, table } = p
      if (p.tx !== undefined && a.aborted.has(p.tx)) {
        results[index] = rejected(
          seq,
          causes.get(p) ?? {
            code: 'tx_aborted',
            field: 'tx',
            message: `another mutation of tx ${p.tx} was rejected`,
          },
        )
        continue
      }
      const outcome = a.outcomes[index]
      if (outcome === undefined) throw new EddyError('internal', `no outcome for seq ${seq}`)
      switch (outcome.status) {
        case 'applied': {
          if (isDirect(p)) {
            let g = guarded.get(table)
            if (g === undefined) {
              g = { rows: [], results: [], indexes: [] }
              guarded.set(table, g)
            }
            g.rows.push({ key: p.write.key, row: outcome.row, clientId })
            g.results.push(results)
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
          // a later push's write of the key replaces this one: the row is written by its last writer
          rows.set(p.keyText, { key: p.write.key, row: outcome.row, clientId })
          results[index] = table.returnsData
            ? { seq, status: 'applied', row: shown(outcome.row) }
            : { seq, status: 'applied' }
          break
        }
        case 'stale':
          results[index] = table.returnsData
            ? { seq, status: 'stale', row: shown(a.befores[index]) }
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
            tenant,
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
      if (written[i] === true) return
      const results = must(g.results[i], 'push results')
      results[index] = { seq: must(results[index], 'push result').seq, status: 'stale' }
    })
  }
  if (conflicts.length > 0) await tx.addConflicts(conflicts)

  // 5. Per push, in order: its answer and its audit event.
  for (const a of admitted) outcomes[a.slot] = { response: await answer(tx, a.push, a.results, a.high) }
  return outcomes
}

/** A push's answer once every mutation has its result, and its audit event (counts by status). */
async function answer(
  tx: WarehouseTx,
  push: CheckedPush,
  results: readonly (PushResult | undefined)[],
  lastSeq: number,
): Promise<PushResponse> {
  const final = new Array<PushResult>(results.length)
  const counts = { applied: 0, stale: 0, duplicate: 0, conflict: 0, rejected: 0 }
  for (let i = 0; i < results.length; i++) {
    const result = must(results[i], 'push result')
    final[i] = result
    counts[result.status] += 1
  }
  await tx.addEvent({
    clientId: push.body.clientId,
    receivedAt: push.receivedAt,
    mutations: final.length,
    ...counts,
    durationMs: Math.round((performance.now() - push.started) * 1000) / 1000,
    tenant: typeof push.ctx.tenant === 'string' ? push.ctx.tenant : undefined,
  })
  return { lastSeq, results: final }
}

/**
 * The streamed path's chunk: a push of more mutations than this, when `streamable`, is written
 * while it is checked, its first write as soon as `chunk` mutations are, then all those checked
 * meanwhile each time the store is done with the write before. Tests lower it, so that small
 * pushes take the path.
 */
export const streamTuning = { chunk: 1000 }

/** `streamOne` met what only `applyPushes` decides: its transaction rolls back and the push runs there. */
class NotStreamable extends Error {}

/**
 * Whether a push may take `streamOne`, judged on the raw body (a cheap pass, no checks): more than
 * one chunk, no `tx` groups (a rejected member aborts writes already made), and every write a
 * full-row upsert of an lww table without `returns-data` (`mayGoDirect`) under a key no other
 * mutation spells the same way. Keys spelled differently that mean the same key, and writes the
 * checks turn into something else, are caught by `streamOne`, which then gives up.
 */
function streamable(schema: Schema, body: PushBody): boolean {
  const { mutations } = body
  if (mutations.length <= streamTuning.chunk) return false
  // per table, the keys as sent: one column's value itself, or the columns' values joined
  const keys = new Map<Table, Set<unknown>>()
  for (const m of mutations) {
    if (m.tx !== undefined) return false
    const table = schema.tables.get(m.table)
    if (table === undefined) continue
    if (table.conflict !== 'lww' || table.returnsData || m.op !== 'upsert') return false
    const values = m.values ?? {}
    for (const c of table.columns) {
      if (!Object.hasOwn(m.key, c.name) && !Object.hasOwn(values, c.name)) return false
    }
    const pk = table.primaryKey
    let key: unknown = m.key[pk[0] ?? '']
    if (pk.length > 1) {
      let text = ''
      for (const k of pk) text += `\u0000${String(m.key[k])}`
      key = text
    }
    let seen = keys.get(table)
    if (seen === undefined) {
      seen = new Set()
      keys.set(table, seen)
    }
    if (seen.has(key)) return false
    seen.add(key)
  }
  return true
}

/** Lets pending I/O callbacks run (a store's answer, the next statement's send) between slices of checks. */
const breathe = (): Promise<void> =>
  new Promise((resolve) =>
    typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0),
  )

/**
 * `applyPushes` for one `streamable` push, overlapped with its writes: the mutations are checked
 * in seq order, and the rows checked so far go to `writeNewer` (one call at a time, in order; see
 * `streamTuning`) while the next are checked. With no tx groups and every key new to the push and
 * written in full, each outcome depends on the mutation alone and the store's hlc guard, so the
 * answer, rows, lastSeq and event are those of `applyPushes`. Anything else throws `NotStreamable`
 * (after the writes in flight settle), and the caller rolls back and runs `applyPushes`. A refusal
 * throws as there: the transaction rolls back and nothing is applied.
 */
async function streamOne(tx: WarehouseTx, push: CheckedPush): Promise<PushResponse> {
  const { schema, body, ctx, now } = push
  const { clientId, mutations } = body
  const { subject } = ctx
  const writeNewer = must(tx.writeNewer, 'writeNewer')
  const { lastSeq, owner } = await tx.client(clientId)
  if (subject !== undefined && owner !== undefined && owner !== subject)
    throw forbidden(`clientId ${clientId} belongs to another user`)
  const results = new Array<PushResult | undefined>(mutations.length)
  const seen = new Map<Table, Set<string>>()
  let writing: Promise<void> = Promise.resolve()
  let failed = false
  let batch = new Map<Table, { rows: RowWrite[]; indexes: number[] }>()
  let inBatch = 0
  let queued = false
  /**
   * Queues a write of the rows checked so far behind the one in flight. It takes every row checked
   * by the time it starts, so while the store is slower than the checks, the writes grow instead
   * of multiplying.
   */
  const send = (): void => {
    if (queued) return
    queued = true
    writing = writing.then(async () => {
      queued = false
      const tables = batch
      batch = new Map()
      inBatch = 0
      for (const [table, { rows, indexes }] of tables) {
        const written = await writeNewer.call(tx, table, rows)
        indexes.forEach((index, i) => {
          if (written[i] !== true)
            results[index] = { seq: must(mutations[index], 'mutation').seq, status: 'stale' }
        })
      }
    })
    writing.catch(() => {
      failed = true
    })
  }
  /** Settles the writes in flight before giving up (a failed one's error wins): the transaction then rolls back. */
  const giveUp = async (e: unknown): Promise<never> => {
    await writing
    throw e
  }
  const slice = Math.max(1, Math.min(streamTuning.chunk, 250))
  const { fresh, high } = freshInSeqOrder(mutations, lastSeq, results)
  let sinceBreath = 0
  for (const index of fresh) {
    const m = must(mutations[index], 'mutation')
    const checked = prepareOrRefuse(schema, m, index, now, ctx)
    if ('refuse' in checked) return giveUp(checked.refuse)
    if (!('write' in checked)) {
      results[index] = rejected(m.seq, checked)
      continue
    }
    const { table, keyText, write } = checked
    if (!checked.direct) return giveUp(new NotStreamable('a write that needs its stored row'))
    let keys = seen.get(table)
    if (keys === undefined) {
      keys = new Set()
      seen.set(table, keys)
    }
    if (keys.has(keyText)) return giveUp(new NotStreamable('a key written twice'))
    keys.add(keyText)
    const outcome = reconcile(table, undefined, write)
    if (outcome.status === 'rejected') {
      results[index] = rejected(m.seq, outcome.error)
      continue
    }
    if (outcome.status !== 'applied') return giveUp(new NotStreamable(`an outcome of ${outcome.status}`))
    let rows = batch.get(table)
    if (rows === undefined) {
      rows = { rows: [], indexes: [] }
      batch.set(table, rows)
    }
    rows.rows.push({ key: write.key, row: outcome.row, clientId })
    rows.indexes.push(index)
    results[index] = { seq: m.seq, status: 'applied' }
    if (++inBatch >= streamTuning.chunk) send()
    if (++sinceBreath >= slice) {
      sinceBreath = 0
      await breathe()
      if (failed) break
    }
  }
  if (inBatch > 0) send()
  await writing
  // rows checked while the last write was queued went with it; none can be left behind
  if (inBatch > 0) throw new EddyError('internal', 'a streamed push left rows unwritten')
  await tx.setLastSeq(clientId, high, subject)
  return answer(tx, push, results, high)
}
