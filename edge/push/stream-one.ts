/**
 * The streamed path: one large push of fresh full-row upserts, on a warehouse that
 * `writesElsewhere`, written while it is checked (`streamOne`), so the store's writes overlap the
 * checks instead of following them. It gives up (`NotStreamable`) on anything only `applyPushes`
 * decides.
 */
import { EddyError, must } from '../../shared/errors.ts'
import type { PushBody, PushResponse, PushResult } from '../../shared/protocol.ts'
import { reconcile } from '../../shared/reconcile.ts'
import type { Schema, Table } from '../../shared/schema.ts'
import type { RowWrite, WarehouseTx } from '../warehouse/warehouse.ts'
import { answer } from './apply-pushes.ts'
import {
  type CheckedPush,
  forbidden,
  freshInSeqOrder,
  type PushTuning,
  prepareOrRefuse,
  rejected,
} from './check-push.ts'

/** `PushTuning.streamChunk` when unset. */
const DEFAULT_STREAM_CHUNK = 1000

/**
 * At most this many mutations are checked between two breaths (`breathe`), so the store's answers
 * and the next write's send are not held up behind a whole chunk of checks.
 */
const CHECK_SLICE = 250

/** The streamed path's chunk of a push (see `PushTuning.streamChunk`). */
export function streamChunkOf(tuning: PushTuning): number {
  return tuning.streamChunk ?? DEFAULT_STREAM_CHUNK
}

/** `streamOne` met what only `applyPushes` decides: its transaction rolls back and the push runs there. */
export class NotStreamable extends Error {}

/**
 * Whether a push may take `streamOne`, judged on the raw body (a cheap pass, no checks): more than
 * one chunk, no `tx` groups (a rejected member aborts writes already made), and every write a
 * full-row upsert of an lww table without `returns-data` (`mayGoDirect`) under a key no other
 * mutation spells the same way. Keys spelled differently that mean the same key, and writes the
 * checks turn into something else, are caught by `streamOne`, which then gives up.
 */
export function streamable(schema: Schema, body: PushBody, chunk: number): boolean {
  const { mutations } = body
  if (mutations.length <= chunk) return false
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
 * `PushTuning.streamChunk`) while the next are checked. With no tx groups and every key new to the push and
 * written in full, each outcome depends on the mutation alone and the store's hlc guard, so the
 * answer, rows, lastSeq and event are those of `applyPushes`. Anything else throws `NotStreamable`
 * (after the writes in flight settle), and the caller rolls back and runs `applyPushes`. A refusal
 * throws as there: the transaction rolls back and nothing is applied.
 */
export async function streamOne(tx: WarehouseTx, push: CheckedPush): Promise<PushResponse> {
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
  const chunk = streamChunkOf(ctx)
  const slice = Math.max(1, Math.min(chunk, CHECK_SLICE))
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
    if (++inBatch >= chunk) send()
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
