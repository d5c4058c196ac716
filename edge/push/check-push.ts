/**
 * Checking a push: the checks of each mutation that need no stored row (its table, envelope,
 * values, clock drift and tenant), made once per push, before it queues for the warehouse.
 */
import { canonicalKey } from '../../shared/digest.ts'
import { EddyError, isEddyError, must } from '../../shared/errors.ts'
import { checkDrift, wallOf } from '../../shared/hlc.ts'
import type { Mutation, PushBody, PushResult } from '../../shared/protocol.ts'
import type { IncomingWrite } from '../../shared/reconcile.ts'
import type { Row, Schema, Table } from '../../shared/schema.ts'
import { type FieldError, validateWrite } from '../../shared/validators.ts'

/** How the edge applies pushes: the sync app's options, the same for every push. */
export interface PushTuning {
  /**
   * The streamed path's chunk (default 1000): a push of more mutations than this, on a warehouse
   * that `writesElsewhere`, may be written while it is checked (`streamOne`), its first write as
   * soon as `streamChunk` mutations are checked, then all those checked meanwhile each time the
   * store is done with the write before. Tests lower it so that small pushes take that path.
   */
  readonly streamChunk?: number | undefined
  /**
   * Whether pushes that arrive while another is being written wait and then commit together in one
   * transaction (default true; see `group-commit.ts`). Cloudflare Workers tie every promise to the
   * request that created it: one request may not finish another's push (the runtime cancels the
   * waiting request as hung), so `createWorker` turns it off and there each push commits on its own.
   */
  readonly groupCommit?: boolean | undefined
}

/** One push's clock and caller, with the app's push tuning. */
export interface PushContext extends PushTuning {
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

export interface Prepared {
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
export type Checked = Prepared | FieldError | { readonly refuse: unknown }

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
export function mayGoDirect(table: Table, w: IncomingWrite): boolean {
  if (table.conflict !== 'lww' || table.returnsData || w.op !== 'upsert') return false
  const values = w.values ?? {}
  for (const c of table.columns) {
    if (!Object.hasOwn(w.key, c.name) && !Object.hasOwn(values, c.name)) return false
  }
  return true
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
export function freshInSeqOrder(
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

export function rejected(seq: number, error: FieldError): PushResult {
  return { seq, status: 'rejected', error: { code: error.code, message: error.message, field: error.field } }
}

export function forbidden(message: string): EddyError {
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

/** An HLC's wall time: its first digits, in ms, before the first colon (`shared/hlc.ts`). */
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
export function prepareOrRefuse(
  schema: Schema,
  m: Mutation,
  index: number,
  now: number,
  ctx: PushContext,
): Checked {
  try {
    return prepare(schema, m, index, now, ctx)
  } catch (e) {
    return { refuse: e }
  }
}

/** A push that arrived, its checks not made yet. */
export function arrived(schema: Schema, body: PushBody, ctx: PushContext): CheckedPush {
  const started = performance.now()
  const now = ctx.now()
  return { schema, body, ctx, checks: undefined, now, started, receivedAt: new Date(now).toISOString() }
}

/** A push's checks (see `prepare`), made once. */
export function checksOf(push: CheckedPush): readonly Checked[] {
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
