import { bucketHashes, bucketOf, canonicalKey, DEFAULT_BUCKETS } from '../../shared/digest.ts'
import { EddyError, isEddyError, toEddyError } from '../../shared/errors.ts'
import type { Hlc } from '../../shared/hlc.ts'
import {
  type Change,
  DEFAULT_LIMITS,
  type Mutation,
  type NewMutation,
  type PushResult,
} from '../../shared/protocol.ts'
import type { Row, Schema, Table } from '../../shared/schema.ts'
import type { LocalCache } from '../cache/cache.ts'
import type { StatusStore } from '../engine/status.ts'
import type { Outbox } from '../outbox/outbox.ts'
import type { Mutex } from '../tabs/leader.ts'
import type { RejectedWrite, SyncReport } from '../types.ts'
import type { ClientMeta } from './client-meta.ts'
import type { ArrowPage, Transport } from './transport.ts'

/** Largest batch one push carries (the edge's default limit). */
export const MAX_BATCH = DEFAULT_LIMITS.maxMutations
/**
 * Changes asked for per pull request: the edge's maximum (it caps `limit` at 10,000). Each
 * page costs a round trip, a cache transaction and a cursor write, so fewer, larger pages hydrate
 * faster (bench: 20,000 rows in 2.5 s instead of 5.6 s).
 */
const PULL_LIMIT = 10_000
/**
 * Rows per Arrow page of a first load: one bulk load (one cache transaction) per page. Pages of
 * 25,000 let the edge read and encode page k+1 while the cache loads page k, which a single
 * 100,000-row page left waiting (the edge's part was a third of a 100k hydrate, in series).
 */
const ARROW_PULL_LIMIT = 25_000
/** Backoff after failures: base doubling up to the cap, times a jitter in [0.5, 1). */
const BACKOFF_BASE_MS = 1000
const BACKOFF_MAX_MS = 60_000

/** True when `batch` is a single write or a single tx group (the outbox never splits a group). */
function oneGroup(batch: readonly Mutation[]): boolean {
  const tx = batch[0]?.tx
  return batch.length <= 1 || (tx !== undefined && batch.every((m) => m.tx === tx))
}

/** Exponential backoff with jitter: base × 2^(failures−1), capped, times a factor in [0.5, 1). */
export function backoffDelay(failures: number, random: () => number): number {
  const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1))
  return Math.round(exp * (0.5 + random() / 2))
}

export interface SyncDeps {
  schema: Schema
  cache: LocalCache
  outbox: Outbox
  transport: Transport
  meta: ClientMeta
  hlc: Hlc
  clientId: string
  status: StatusStore
  now: () => number
  random: () => number
  /** Exclusive across every engine of the profile: pushes never overlap, so seqs reach the edge in order. */
  pushLock: Mutex
  /**
   * First loads (no cursor yet) hydrate each table through the Arrow bulk pull and
   * `cache.loadArrow`, then continue with JSON pulls. Off: every pull is JSON.
   */
  bulkLoad: boolean
  /** The most mutations one push carries (the edge's `limits.maxMutations`). */
  maxBatch: number
  /** The pull cursor of this engine's cache. */
  cursor: { get(): Promise<string | undefined>; set(c: string): Promise<void> }
  emitChange(tables: Iterable<string>, source: 'local' | 'remote'): void
  /** Re-reads pending and rejected counts into the status. */
  refreshCounts(): Promise<void>
  /** Resolves once local writes already under way in this engine have reached both the cache and the outbox. */
  settledWrites(): Promise<void>
  /** After a batch is settled: what was marked synced and what was restored, for other tabs' caches. */
  onSettled(settled: SettledBatch): void
}

export interface SettledBatch {
  synced: Array<{ table: string; rows: Array<{ key: Row; hlc: string }> }>
  restored: Change[]
}

export interface PushTally {
  pushed: number
  applied: number
  stale: number
  duplicate: number
  conflict: number
  rejected: number
}

const emptyTally = (): PushTally => ({
  pushed: 0,
  applied: 0,
  stale: 0,
  duplicate: 0,
  conflict: 0,
  rejected: 0,
})

export interface SyncEngine {
  /** Pushes the queue until it is empty (after moving parked writes of `promote` tables into it; all when 'all'). */
  push(promote: ReadonlySet<string> | 'all' | 'none'): Promise<PushTally>
  /** Pulls every table until `hasMore` is false; returns the number of changes applied. */
  pull(): Promise<number>
  /** Push everything (hybrid included), then pull. */
  sync(): Promise<SyncReport>
  /** Write-through: sends `muts` right after everything queued before them; answers the edge's results in order. */
  pushDirect(muts: readonly NewMutation[]): Promise<PushResult[]>
  divergence(table: Table): Promise<number>
  /** The delay before the next background attempt after `failures` consecutive failures. */
  backoffMs(failures: number): number
}

function noteError(status: StatusStore, e: unknown): void {
  const err = toEddyError(e)
  status.update({ lastError: { code: err.code, message: err.message } })
}

/**
 * Push and pull over the outbox and the cache.
 *
 * Order is the invariant everything rests on: the edge answers `duplicate` to any seq at or below
 * the highest it has processed for the client, so a seq must never reach it after a higher one.
 * Hence every push, from any engine of the profile, holds `pushLock`; the queue goes out oldest
 * first; hybrid writes get their seq only when promoted into the queue; and a write-through write
 * takes its seq only once nothing older is queued (allocated in the same IndexedDB transaction that
 * checks the queue). A push answered by nobody (network, crash) leaves the queue as it was, so the
 * same seqs go out again and the edge answers `duplicate` to what it already applied.
 */
export function createSyncEngine(d: SyncDeps): SyncEngine {
  const allTables = [...d.schema.tables.keys()]
  let batchLimit: number = d.maxBatch

  const syncedAt = (): string => new Date(d.now()).toISOString()

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
    const at = syncedAt()
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

  async function push(promote: ReadonlySet<string> | 'all' | 'none'): Promise<PushTally> {
    d.status.update({ syncing: true })
    try {
      return await d.pushLock.run(() => pushLocked(promote))
    } finally {
      d.status.update({ syncing: false })
      d.status.clearProgress()
    }
  }

  /** One pull at a time per engine: two overlapping pulls would fetch the same pages twice. */
  let pulling: Promise<number> | undefined
  function pull(): Promise<number> {
    if (pulling !== undefined) return pulling.then(() => pull())
    const p = pullOnce().finally(() => {
      if (pulling === p) pulling = undefined
    })
    pulling = p
    return p
  }

  /**
   * A first load through the Arrow bulk pull: every table, page by page, into `cache.loadArrow`
   * (which never overwrites a pending local write). The first request asks for a resume cursor for
   * all tables at the edge's high-water mark, read before any page: every change at or below it is
   * in the pages that follow, so JSON pulls continue from it (re-applying a few changes at most,
   * which is harmless). Returns that cursor and the rows loaded, or undefined when the edge
   * answers no resume cursor (then the caller pulls as JSON from scratch; nothing was loaded).
   */
  async function hydrate(): Promise<{ cursor: string; rows: number } | undefined> {
    type Pending = { table: string; page: Promise<ArrowPage> }
    const fetchPage = (table: string, cursor: string | undefined, first: boolean): Pending => {
      const page = d.transport.pullArrow({
        table,
        cursor,
        limit: ARROW_PULL_LIMIT,
        ...(first ? { resume: allTables } : {}),
      })
      // awaited later; a failure while the previous page loads must not go unhandled meanwhile
      page.catch(() => undefined)
      return { table, page }
    }
    const first = allTables[0]
    if (first === undefined) return undefined
    let resume: string | undefined
    let done = 0
    let next: Pending | undefined = fetchPage(first, undefined, true)
    while (next !== undefined) {
      const current: Pending = next
      const name: string = current.table
      const page: ArrowPage = await current.page
      if (resume === undefined) {
        if (page.resumeCursor === undefined) return undefined
        resume = page.resumeCursor
      }
      // The edge prepares the next page while the cache loads this one.
      const following: string | undefined = page.hasMore ? name : allTables[allTables.indexOf(name) + 1]
      next =
        following === undefined
          ? undefined
          : fetchPage(following, following === name ? page.cursor : undefined, false)
      if (page.maxHlc !== undefined) d.hlc.receive(page.maxHlc)
      if (page.rows > 0) {
        await d.cache.loadArrow(d.schema.table(name), page.ipc)
        d.emitChange([name], 'remote')
        done += page.rows
        // the total is not known up front: it grows with each page that says more follow
        d.status.update({ progress: { done, total: page.hasMore ? done + ARROW_PULL_LIMIT : done } })
      }
    }
    // The pages are committed but not yet checkpointed: durable before the caller saves the cursor.
    if (done > 0) await d.cache.checkpoint()
    return resume === undefined ? undefined : { cursor: resume, rows: done }
  }

  async function pullOnce(): Promise<number> {
    d.status.update({ syncing: true })
    try {
      let applied = 0
      let cursor = await d.cursor.get()
      if (cursor === undefined && d.bulkLoad) {
        const loaded = await hydrate()
        if (loaded !== undefined) {
          applied += loaded.rows
          cursor = loaded.cursor
          await d.cursor.set(cursor)
        }
      }
      for (;;) {
        const page = await d.transport.pull({ tables: allTables, cursor, limit: PULL_LIMIT })
        for (const c of page.changes) if (c.hlc !== '') d.hlc.receive(c.hlc)
        const changed = await d.cache.applyRemote(page.changes, d.schema.tables)
        applied += page.changes.length
        cursor = page.cursor
        await d.cursor.set(cursor)
        d.emitChange(changed, 'remote')
        if (!page.hasMore) break
      }
      const last = d.hlc.last()
      if (last !== undefined) await d.meta.saveHlc(last)
      return applied
    } finally {
      d.status.update({ syncing: false })
      d.status.clearProgress()
    }
  }

  return {
    push,
    pull,

    async sync() {
      const started = d.now()
      try {
        const tally = await push('all')
        const pulled = await pull()
        d.status.update({ lastSyncAt: syncedAt(), lastError: null })
        return { ...tally, pulled, durationMs: d.now() - started }
      } catch (e) {
        noteError(d.status, e)
        throw e
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

    async divergence(table) {
      const remote = await d.transport.digest({ table: table.name, buckets: DEFAULT_BUCKETS })
      if (!('buckets' in remote) || remote.buckets.length !== DEFAULT_BUCKETS)
        throw new EddyError('protocol', 'digest answer has no buckets')
      const entries = await d.cache.digestEntries(table)
      const local = bucketHashes(entries, DEFAULT_BUCKETS)
      let diverged = 0
      for (let i = 0; i < DEFAULT_BUCKETS; i++) {
        if (remote.buckets[i] === local[i]) continue
        const detail = await d.transport.digest({ table: table.name, bucket: i, buckets: DEFAULT_BUCKETS })
        if (!('entries' in detail)) throw new EddyError('protocol', 'digest answer has no entries')
        const theirs = new Map(detail.entries.map((e) => [canonicalKey(table, e.key), e.hlc]))
        const mine = new Map(
          entries.filter((e) => bucketOf(e.keyText, DEFAULT_BUCKETS) === i).map((e) => [e.keyText, e.hlc]),
        )
        for (const [k, h] of mine) if (theirs.get(k) !== h) diverged += 1
        for (const k of theirs.keys()) if (!mine.has(k)) diverged += 1
      }
      return diverged
    },

    backoffMs: (failures) => backoffDelay(failures, d.random),
  }
}
