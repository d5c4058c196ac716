/**
 * Applying checked pushes against one open write transaction, in four phases: admit each push,
 * read the stored rows the outcomes need, reconcile in order against one in-memory image, then
 * write the results, rows and conflicts. Then each push's answer and audit event (`answer`).
 */
import { EddyError, must } from '../../shared/errors.ts'
import type { PushResponse, PushResult } from '../../shared/protocol.ts'
import { type Outcome, reconcile, type StoredRow } from '../../shared/reconcile.ts'
import type { Row, Table } from '../../shared/schema.ts'
import type { FieldError } from '../../shared/validators.ts'
import type { NewConflict, RowWrite, WarehouseTx } from '../warehouse/warehouse.ts'
import {
  type CheckedPush,
  checksOf,
  forbidden,
  freshInSeqOrder,
  type Prepared,
  rejected,
} from './check-push.ts'

/** What became of one push of a group: its answer, or what refuses it (a 403), nothing of it applied. */
export type PushOutcome = { readonly response: PushResponse } | { readonly refused: unknown }

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

/** Whether a write is left to the store's hlc guard (`WarehouseTx.writeNewer`), its stored row unread. */
type IsDirect = (p: Prepared) => boolean

/** Per table name, stored rows by canonical key. */
type Image = Map<string, Map<string, StoredRow>>

/** What a result shows of a stored row: its values, or null for none or a tombstone. */
function shown(r: StoredRow | undefined): Row | null {
  return r === undefined || r.deleted ? null : r.values
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
  const admitted = await admit(tx, pushes, outcomes)
  const { stored, isDirect } = await readStored(tx, admitted)
  const { image, causes } = reconcileInOrder(admitted, stored, isDirect)
  await writeOutcomes(tx, admitted, image, causes, isDirect)
  for (const a of admitted) outcomes[a.slot] = { response: await answer(tx, a.push, a.results, a.high) }
  return outcomes
}

/**
 * Phase 1. Per push, in order: the owner check, duplicates by seq, the new mutations' checks in seq
 * order, and its new lastSeq. `client` answers with the lastSeqs the pushes before this one
 * recorded. A refused push gets its outcome in `outcomes` and is left out of what follows.
 */
async function admit(
  tx: WarehouseTx,
  pushes: readonly CheckedPush[],
  outcomes: PushOutcome[],
): Promise<Admitted[]> {
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
  return admitted
}

/**
 * Phase 2. One read per table for every key whose outcome needs its stored row; the rest (see
 * `mayGoDirect`: written once in the whole group) are decided by the store's hlc guard when written.
 */
async function readStored(
  tx: WarehouseTx,
  admitted: readonly Admitted[],
): Promise<{ stored: Image; isDirect: IsDirect }> {
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
  const stored: Image = new Map()
  for (const [table, keys] of firstByTable) {
    const toRead: Row[] = []
    for (const p of keys.values()) if (!isDirect(p)) toRead.push(p.write.key)
    const found = toRead.length === 0 ? new Map<string, StoredRow>() : await tx.readRows(table, toRead)
    stored.set(table.name, found)
  }
  return { stored, isDirect }
}

/**
 * Phase 3. Reconcile push after push, each in seq order, against one in-memory image, folding
 * repeated keys. When a tx group turns out to be rejected, start over without it: no write may see
 * its. Returns the final image and, per write that rejected its tx group, why.
 */
function reconcileInOrder(
  admitted: readonly Admitted[],
  stored: Image,
  isDirect: IsDirect,
): { image: Image; causes: Map<Prepared, FieldError> } {
  const causes = new Map<Prepared, FieldError>()
  let image: Image = new Map()
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
  return { image, causes }
}

/**
 * Phase 4. Every mutation's result, then the writes: only the final image of each key (the fold),
 * in one set-based write per table; the direct writes through the store's hlc guard, which may
 * turn their results into `stale`; the conflicts in one insert.
 */
async function writeOutcomes(
  tx: WarehouseTx,
  admitted: readonly Admitted[],
  image: Image,
  causes: ReadonlyMap<Prepared, FieldError>,
  isDirect: IsDirect,
): Promise<void> {
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
}

/** A push's answer once every mutation has its result, and its audit event (counts by status). */
export async function answer(
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
