import { canonicalKey } from '../../shared/digest.ts'
import { EddyError, isEddyError } from '../../shared/errors.ts'
import type { Change, Mutation, NewMutation, PushResult } from '../../shared/protocol.ts'
import type { Row } from '../../shared/schema.ts'
import type { RejectedWrite } from '../types.ts'
import { PULL_LIMIT } from './pull.ts'
import type { PushTally, SyncDeps } from './sync-deps.ts'

/** True when `batch` is a single write or a single tx group (the outbox never splits a group). */
function oneGroup(batch: readonly Mutation[]): boolean {
  const tx = batch[0]?.tx
  return batch.length <= 1 || (tx !== undefined && batch.every((m) => m.tx === tx))
}

const emptyTally = (): PushTally => ({
  pushed: 0,
  applied: 0,
  stale: 0,
  duplicate: 0,
  conflict: 0,
  rejected: 0,
})

export interface Pusher {
  /** Pushes the queue until it is empty (after moving parked writes of `promote` tables into it; all when 'all'). */
  push(promote: ReadonlySet<string> | 'all' | 'none'): Promise<PushTally>
  /** Write-through: sends `muts` right after everything queued before them; answers the edge's results in order. */
  pushDirect(muts: readonly NewMutation[]): Promise<PushResult[]>
}

/**
 * The outbox's way to the edge. Every push, from any engine of the profile, holds `pushLock`; the
 * queue goes out oldest first, in batches the edge accepts; each batch's results are settled
 * (acked, rejected and restored, marked synced in the cache) before the next goes out.
 */
export function createPusher(d: SyncDeps): Pusher {
  let batchLimit: number = d.maxBatch

  /** Applies one batch's results: drops what the edge settled, files rejections, marks the cache. */
  async function settle(batch: readonly Mutation[], results: readonly PushResult[], tally: PushTally) {
    const bySeq = new Map(results.map((r) => [r.seq, r]))
    const acked: number[] = []
    const rejected: RejectedWrite[] = []
    const synced = new Map<string, Array<{ key: Row; hlc: string }>>()
    for (const m of batch) {
      const r = bySeq.get(m.seq)
      if (r === undefined) throw new EddyError('protocol', `push answer has no result for seq ${m.seq}`)
      tally[r.status] += 1
      if (r.status === 'rejected') {
        rejected.push({
          seq: m.seq,
          table: m.table,
          op: m.op,
          key: m.key,
          ...(m.values === undefined ? {} : { values: m.values }),
          error: r.error ?? { code: 'rejected', message: 'rejected by the edge' },
        })
      } else {
        acked.push(m.seq)
      }
      // Rejected rows are marked too: their local value is then replaced by the warehouse's (restore).
      const list = synced.get(m.table) ?? []
      list.push({ key: m.key, hlc: m.hlc })
      synced.set(m.table, list)
    }
    tally.pushed += batch.length
    const conflicts = results.filter((r) => r.status === 'conflict').length
    if (conflicts > 0) d.status.update({ conflicts: d.status.get().conflicts + conflicts })
    // The stamp must be durable before the writes that carried it leave the outbox.
    const last = d.hlc.last()
    if (last !== undefined) await d.meta.saveHlc(last)
    await d.outbox.ack(acked, rejected)
    const at = new Date(d.now()).toISOString()
    for (const [name, rows] of synced) await d.cache.markSynced(d.schema.table(name), rows, at)
    const restored = rejected.length > 0 ? await restore(rejected) : []
    d.onSettled({ synced: [...synced].map(([table, rows]) => ({ table, rows })), restored })
    await d.refreshCounts()
  }

  /**
   * Puts the warehouse's rows back for rejected writes: a full read of each affected table, keeping
   * only the rejected keys; a key the warehouse does not hold is removed locally.
   */
  async function restore(rejected: readonly RejectedWrite[]): Promise<Change[]> {
    const all: Change[] = []
    const byTable = new Map<string, Map<string, Row>>()
    for (const r of rejected) {
      const t = d.schema.tables.get(r.table)
      if (t === undefined) continue
      const keys = byTable.get(t.name) ?? new Map<string, Row>()
      keys.set(canonicalKey(t, r.key), r.key)
      byTable.set(t.name, keys)
    }
    for (const [name, keys] of byTable) {
      const t = d.schema.table(name)
      const found = new Map<string, { table: string; key: Row; row: Row | null; hlc: string }>()
      let cursor: string | undefined
      for (;;) {
        const page = await d.transport.pull({ tables: [name], cursor, limit: PULL_LIMIT })
        for (const c of page.changes)
          if (keys.has(canonicalKey(t, c.key))) found.set(canonicalKey(t, c.key), c)
        cursor = page.cursor
        if (!page.hasMore) break
      }
      const changes = [...keys].map(
        ([text, key]) => found.get(text) ?? { table: name, key, row: null, hlc: '' },
      )
      const changed = await d.cache.applyRemote(changes, d.schema.tables)
      d.emitChange(changed, 'remote')
      all.push(...changes)
    }
    return all
  }

  async function pushLocked(promote: ReadonlySet<string> | 'all' | 'none'): Promise<PushTally> {
    if (promote !== 'none') await d.outbox.promote(promote === 'all' ? undefined : promote)
    // A write whose outbox commit is done but whose cache write is not must not be marked synced
    // before the cache holds it.
    await d.settledWrites()
    const tally = emptyTally()
    const total = await d.outbox.pending()
    for (;;) {
      const batch = await d.outbox.peek(batchLimit)
      if (batch.length === 0) break
      d.status.update({
        progress: { done: tally.pushed, total: Math.max(total, tally.pushed + batch.length) },
      })
      let results: readonly PushResult[]
      try {
        results = (await d.transport.push({ clientId: d.clientId, mutations: batch })).results
      } catch (e) {
        if (!isEddyError(e, 'too_large')) throw e
        // A body over the edge's limits: halve the batch and try again. A batch that is one write or
        // one tx group cannot be split without breaking the group's all-or-nothing: the edge will
        // never take it, so all of it is filed as rejected (and the warehouse rows restored).
        if (!oneGroup(batch)) {
          batchLimit = Math.max(1, Math.min(batchLimit, batch.length) >> 1)
          continue
        }
        const error = { code: 'too_large', message: `refused by the edge: ${e.message}` }
        results = batch.map((m) => ({ seq: m.seq, status: 'rejected' as const, error }))
      }
      await settle(batch, results, tally)
    }
    d.status.update({ progress: { done: tally.pushed, total: Math.max(total, tally.pushed) } })
    return tally
  }

  return {
    async push(promote) {
      d.status.update({ syncing: true })
      try {
        return await d.pushLock.run(() => pushLocked(promote))
      } finally {
        d.status.update({ syncing: false })
        d.status.clearProgress()
      }
    },

    async pushDirect(muts) {
      return d.pushLock.run(async () => {
        // Everything queued before this write must reach the edge first: a higher seq sent earlier
        // would make the edge answer `duplicate` to the queued ones and they would be lost.
        for (;;) {
          await pushLocked('none')
          const { first, queued } = await d.outbox.allocate(muts.length)
          if (queued) continue // a write was queued meanwhile: send it first (its seq is lower)
          const withSeq = muts.map((m, i) => ({ ...m, seq: first + i }))
          const res = await d.transport.push({ clientId: d.clientId, mutations: withSeq })
          const bySeq = new Map(res.results.map((r) => [r.seq, r]))
          return withSeq.map((m) => {
            const r = bySeq.get(m.seq)
            if (r === undefined) throw new EddyError('protocol', `push answer has no result for seq ${m.seq}`)
            return r
          })
        }
      })
    },
  }
}
