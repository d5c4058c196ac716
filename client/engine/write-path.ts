import { canonicalKey } from '../../shared/digest.ts'
import { EddyError, isEddyError } from '../../shared/errors.ts'
import type { Hlc } from '../../shared/hlc.ts'
import type { NewMutation } from '../../shared/protocol.ts'
import type { Row, Schema, Table } from '../../shared/schema.ts'
import type { CachedRow, LocalCache, LocalWrite } from '../cache/cache.ts'
import type { Outbox } from '../outbox/outbox.ts'
import { withPending } from '../outbox/outbox-replay.ts'
import type { SyncEngine } from '../sync/sync-engine.ts'
import type { TransactionWriter } from '../types.ts'
import type { CacheRepair } from './cache-repair.ts'
import type { StaleTables } from './stale-tables.ts'
import type { StatusStore } from './status.ts'
import { coversAllColumns, overlay, type PlannedWrite, plan } from './write-plan.ts'
import { writeThrough } from './write-through.ts'

/** How deep `isQuotaError` follows `inner`/`cause` links. */
const MAX_CAUSE_DEPTH = 5

function isQuotaError(e: unknown): boolean {
  for (let x: unknown = e, i = 0; x !== undefined && x !== null && i < MAX_CAUSE_DEPTH; i++) {
    if (typeof x !== 'object') return false
    const o = x as { name?: unknown; inner?: unknown; cause?: unknown }
    if (o.name === 'QuotaExceededError') return true
    x = o.inner ?? o.cause
  }
  return false
}

export interface WritePathDeps {
  schema: Schema
  cache: LocalCache
  outbox: Pick<Outbox, 'add' | 'pendingMutations'>
  hlc: Hlc
  status: StatusStore
  sync: Pick<SyncEngine, 'push' | 'pull' | 'pushDirect'>
  repair: CacheRepair
  stale: StaleTables
  /** The edge's `limits.maxMutations`: the largest transaction. */
  maxMutations: number
  online(): boolean
  /** Throws when the engine is closed. */
  live(): void
  /** Tells the other tabs that this one wrote to `tables`. */
  announceWrite(tables: string[]): void
  emitChange(tables: Iterable<string>, source: 'local' | 'remote'): void
  noteError(e: unknown): void
  /** Asks the background loop for a pass soon. */
  kick(): void
}

/**
 * The engine's writes. Local modes: the outbox commit (strict durability) is the
 * acknowledgement; the cache write is queued right after it, before the caller hears back, so a
 * read started after the acknowledgement runs behind it (the cache applies calls in call order).
 * A failed outbox commit leaves the cache untouched; a failed cache write loses nothing (the
 * outbox holds the write) and is repaired from the outbox. Write-through: nothing local until the
 * edge answers.
 */
export interface WritePath {
  put(table: string, row: Row): Promise<Row>
  delete(table: string, key: Row): Promise<void>
  transaction(fn: (tx: TransactionWriter) => void | Promise<void>): Promise<void>
  /** Local writes between their start and the moment their cache write is queued. */
  inFlight(): Array<Promise<unknown>>
}

export function createWritePath(d: WritePathDeps): WritePath {
  const { schema, cache, outbox, hlc, status, sync, repair, stale, live } = d
  /** Local writes between their start and the moment their cache write is queued. */
  const inFlight = new Set<Promise<unknown>>()
  /** Settles once the latest local write's cache write is queued (or its outbox commit failed). */
  let cacheTail: Promise<unknown> = Promise.resolve()

  /** Applies planned writes as one group; returns the row each upsert leaves (null for deletes). */
  async function commit(planned: readonly PlannedWrite[]): Promise<Array<Row | null>> {
    live()
    if (planned.length === 0) return []
    // This write is in flight until its cache write is queued (or it failed); a partial upsert
    // waits for the writes started before it, so it lays its values over what they leave.
    const earlier = [...inFlight]
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      release = () => {
        inFlight.delete(gate)
        resolve()
      }
    })
    inFlight.add(gate)
    try {
      return await commitAfter(planned, earlier, () => release())
    } finally {
      release()
    }
  }

  async function commitAfter(
    planned: readonly PlannedWrite[],
    earlier: ReadonlyArray<Promise<unknown>>,
    release: () => void,
  ): Promise<Array<Row | null>> {
    // An upsert that names every column needs no stored row under it.
    const partial = planned.filter((p) => p.op === 'upsert' && !coversAllColumns(p))
    const base = new Map<string, CachedRow | undefined>()
    if (partial.length > 0) {
      await Promise.allSettled(earlier)
      const byTable = new Map<Table, Row[]>()
      for (const p of partial) {
        const keys = byTable.get(p.table)
        if (keys === undefined) byTable.set(p.table, [p.key])
        else keys.push(p.key)
      }
      const troubleBefore = repair.trouble()
      const got = new Map<Table, Map<string, CachedRow>>()
      for (const [t, keys] of byTable) got.set(t, await cache.getRows(t, keys))
      // After a failed cache write and until its repair, the outbox holds rows the cache lacks.
      const pending =
        repair.trouble() !== troubleBefore || repair.underway() ? await outbox.pendingMutations() : []
      for (const [t, keys] of byTable) {
        for (const key of keys) {
          const text = canonicalKey(t, key)
          const mine = pending.filter((m) => m.table === t.name && canonicalKey(t, m.key) === text)
          base.set(`${t.name}\u0000${text}`, withPending(got.get(t)?.get(text), mine))
        }
      }
    }
    const current = new Map<string, Row | null>()
    const fulls: Array<Row | null> = []
    for (const p of planned) {
      const id = partial.length > 0 ? `${p.table.name}\u0000${canonicalKey(p.table, p.key)}` : ''
      if (p.op === 'delete') {
        if (partial.length > 0) current.set(id, null)
        fulls.push(null)
        continue
      }
      let under: Row | undefined
      if (partial.length > 0) {
        const prev = base.get(id)
        under = current.has(id)
          ? (current.get(id) ?? undefined)
          : prev?.deleted === false
            ? prev.values
            : undefined
      }
      const full = overlay(p.table, under, p.key, p.values ?? {})
      const missing = p.table.columns.find((c) => c.required && full[c.name] === null)
      if (missing !== undefined)
        throw new EddyError('invalid_value', `${missing.name} is required`, { field: missing.name })
      if (partial.length > 0) current.set(id, full)
      fulls.push(full)
    }
    live()
    // Stamps and the outbox call stay in one synchronous step: seqs then follow stamp order.
    const stamps = planned.map(() => hlc.now())
    const tx = planned.length > 1 ? `tx-${stamps[0]}` : undefined
    const muts: NewMutation[] = planned.map((p, i) => ({
      table: p.table.name,
      op: p.op,
      key: p.key,
      ...(p.values === undefined ? {} : { values: p.values }),
      hlc: stamps[i] ?? hlc.now(),
      ...(tx === undefined ? {} : { tx }),
    }))
    const tables = [...new Set(planned.map((p) => p.table.name))]

    if (planned.some((p) => p.table.sync === 'write-through')) {
      // not a local write: a push waiting for local writes must not wait for this one
      release()
      return writeThrough(d, planned, muts, fulls)
    }

    const writes: LocalWrite[] = planned.map((p, i) => ({
      table: p.table,
      key: p.key,
      row: fulls[i] ?? null,
      hlc: muts[i]?.hlc ?? '',
    }))
    const park = planned.every((p) => p.table.sync === 'hybrid')
    const stored = outbox.add(muts, { park })
    // Cache writes are queued in the order of their outbox commits (IndexedDB commits overlapping
    // transactions in creation order; the chain makes the cache follow the same order).
    const before = cacheTail
    const queued = (async () => {
      await stored
      await before
      repair.queue(writes)
    })()
    cacheTail = queued.catch(() => undefined)
    try {
      await queued
    } catch (e) {
      // refused before the commit, for want of space (storage-space.ts)
      if (isEddyError(e, 'quota')) throw e
      if (isQuotaError(e))
        throw new EddyError('quota', 'storage quota exceeded: the write was not saved', { cause: e })
      throw new EddyError('internal', `the outbox could not store the write: ${String(e)}`, { cause: e })
    }
    release()
    status.update({ pending: status.get().pending + muts.length })
    for (const p of planned) if (p.table.invalidateOnWrite) stale.add(p.table.name)
    d.announceWrite(tables)
    d.emitChange(tables, 'local')
    if (planned.some((p) => p.table.refreshOnWrite) && d.online()) {
      sync
        .push('none')
        .then(() => sync.pull())
        .then(() => {
          for (const p of planned) if (p.table.refreshOnWrite) stale.delete(p.table.name)
        })
        .catch(d.noteError)
    }
    d.kick()
    return fulls
  }

  return {
    async put(table, row) {
      live()
      const [full] = await commit([plan(schema, table, 'upsert', row)])
      return full ?? {}
    },
    async delete(table, key) {
      live()
      await commit([plan(schema, table, 'delete', key)])
    },
    async transaction(fn) {
      live()
      const planned: PlannedWrite[] = []
      await fn({
        put: (table, row) => {
          planned.push(plan(schema, table, 'upsert', row))
        },
        delete: (table, key) => {
          planned.push(plan(schema, table, 'delete', key))
        },
      })
      if (planned.length > d.maxMutations)
        throw new EddyError(
          'too_large',
          `a transaction of ${planned.length} writes is larger than one push (${d.maxMutations}): the edge ` +
            "applies a transaction all-or-nothing only within one push. Split it, or raise the edge's " +
            "limits.maxMutations and the client's maxMutations together",
        )
      await commit(planned)
    },
    inFlight: () => [...inFlight],
  }
}
