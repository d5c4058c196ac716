/**
 * client/outbox/: the durable record of acknowledged, unsynced writes (IndexedDB, shared by the
 * profile's tabs). outbox.ts is the queue itself; outbox-replay.ts lays pending writes over a cache
 * that lost them; orphan-writes.ts drops cache rows marked pending that no outbox write accounts
 * for; storage-space.ts refuses a large write that would not fit before anything is written.
 */
import { Dexie } from 'dexie'
import { must } from '../../shared/errors.ts'
import type { Mutation, NewMutation } from '../../shared/protocol.ts'
import type { RejectedWrite } from '../types.ts'
import { createSpaceGuard, type SpaceGuard } from './storage-space.ts'

/**
 * One IndexedDB record per write or per transaction group: a 10,000-row `transaction` is one
 * record, not 10,000. `id` is the first seq of the group; its mutations hold consecutive seqs.
 */
interface QueuedGroup {
  id: number
  hlc: string
  muts: Mutation[]
}

/** Writes to hybrid tables wait here, without a seq, until their table's schedule (or `sync()`) is due. */
interface ParkedGroup {
  id?: number
  tables: string[]
  hlc: string
  tx?: string
  muts: NewMutation[]
}

/** Where `add` put a group: its record id, and its seqs (empty while parked). */
export interface StoredGroup {
  readonly id: number
  readonly parked: boolean
  readonly seqs: readonly number[]
}

interface MetaRow {
  k: 'seq' | 'pending'
  v: number
}

interface OwnerRow {
  k: 'owner'
  v: string
}

/**
 * The durable record of every acknowledged, unsynced write; shared by all tabs of a profile.
 *
 * Seqs come from a counter read and bumped in the same IndexedDB transaction that stores the
 * group, so seqs are strictly increasing per profile and every seq below a newly allocated one is
 * either already in the queue or was never used (a gap). Every transaction is opened with
 * `durability: 'strict'`: a resolved `add` has reached the disk.
 */
export interface Outbox {
  /** Stores one group (one record); `park` holds it back for a hybrid schedule. */
  add(muts: readonly NewMutation[], opts: { park: boolean }): Promise<StoredGroup>
  /** `n` fresh consecutive seqs (from `first`) for writes that bypass the queue (write-through); `queued` tells whether older queued mutations exist. */
  allocate(n: number): Promise<{ first: number; queued: boolean }>
  /** The oldest queued mutations, at most `limit` of them, never splitting a group: a group larger than `limit` comes alone. */
  peek(limit: number): Promise<Mutation[]>
  /** Removes the given seqs from the queue and files the rejected ones, in one transaction. */
  ack(seqs: readonly number[], rejected: readonly RejectedWrite[]): Promise<void>
  /** Moves parked groups touching any of `tables` (all when undefined) into the queue with fresh seqs. */
  promote(tables?: ReadonlySet<string>): Promise<number>
  /** Every pending mutation, queued (with its seq) and parked (without one yet), oldest first per store. */
  pendingMutations(): Promise<NewMutation[]>
  /** Queued plus parked mutations. */
  pending(): Promise<number>
  /** The highest stamp held by a pending write. */
  lastHlc(): Promise<string | undefined>
  /**
   * The clientId whose seqs this outbox numbers: the stored one, or `candidate` when none is stored
   * yet (then it is stored). Seqs are only meaningful per clientId, so an outbox keeps its owner.
   */
  claimOwner(candidate: string): Promise<string>
  rejected(): Promise<RejectedWrite[]>
  rejectedCount(): Promise<number>
  clearRejected(): Promise<void>
  close(): void
}

/** The outbox's IndexedDB database: its stores, opened with strict durability. */
function openDb(name: string) {
  const dexie = new Dexie(name, {
    chromeTransactionDurability: 'strict',
    indexedDB: globalThis.indexedDB,
    IDBKeyRange: globalThis.IDBKeyRange,
  })
  dexie.version(1).stores({ queue: 'id', parked: '++id', rejected: 'seq', meta: 'k', owner: 'k' })
  return {
    transaction: dexie.transaction.bind(dexie),
    /** The native connection, opened if need be (the add fast path speaks IndexedDB directly). */
    async native(): Promise<IDBDatabase> {
      if (!dexie.isOpen()) await dexie.open()
      return dexie.backendDB()
    },
    close: () => dexie.close(),
    queue: dexie.table<QueuedGroup, number>('queue'),
    parked: dexie.table<ParkedGroup, number>('parked'),
    rejected: dexie.table<RejectedWrite, number>('rejected'),
    meta: dexie.table<MetaRow, string>('meta'),
    owner: dexie.table<OwnerRow, string>('owner'),
  }
}

/** `space` refuses a large group that would not fit in the storage quota (default: the OPFS probe, see storage-space.ts). */
export function openOutbox(dbName: string, space: SpaceGuard = createSpaceGuard()): Outbox {
  const db = openDb(`${dbName}-outbox`)

  /**
   * The counters as this outbox last wrote them. An add trusts them: it reads the stored counters
   * and writes the group and the new counters in one round trip to IndexedDB, then aborts (nothing
   * written) if the stored counters differ, because another tab wrote meanwhile, and takes the
   * read-then-write path. Every other change of the counters forgets them.
   */
  let known: { seq: number; pending: number } | undefined

  const readMeta = async (k: MetaRow['k']): Promise<number> => (await db.meta.get(k))?.v ?? 0
  const bump = async (k: MetaRow['k'], by: number): Promise<number> => {
    known = undefined
    const v = (await readMeta(k)) + by
    await db.meta.put({ k, v })
    return v
  }
  const maxHlc = (muts: readonly NewMutation[]): string => muts.reduce((m, x) => (x.hlc > m ? x.hlc : m), '')

  /** Allocates `n` consecutive seqs; call inside a transaction over `meta`. */
  const allocateRange = async (n: number): Promise<number> => {
    const last = await bump('seq', n)
    return last - n + 1
  }

  /** The trusting add, in native IndexedDB: requests run in the order they are made. */
  async function addTrusting(
    k: { seq: number; pending: number },
    muts: readonly NewMutation[],
    hlc: string,
    tables: readonly string[],
    park: boolean,
  ): Promise<StoredGroup | 'stale'> {
    const idb = await db.native()
    return new Promise((resolve, reject) => {
      const tx = idb.transaction(['queue', 'parked', 'meta'], 'readwrite', { durability: 'strict' })
      let stale = false
      let group: StoredGroup | undefined
      const counters = { seq: k.seq, pending: k.pending + muts.length }
      tx.oncomplete = () => {
        known = counters
        resolve(group ?? 'stale')
      }
      tx.onabort = () =>
        stale ? resolve('stale') : reject(tx.error ?? new DOMException('aborted', 'AbortError'))
      try {
        const meta = tx.objectStore('meta')
        const reads = [meta.get('seq'), meta.get('pending')] as const
        const check = (): void => {
          if (reads.some((r) => r.readyState !== 'done')) return
          const [seq, pending] = reads.map((r) => (r.result as MetaRow | undefined)?.v ?? 0)
          if (seq !== k.seq || pending !== k.pending) {
            stale = true
            tx.abort()
          }
        }
        for (const r of reads) r.onsuccess = check
        if (park) {
          const req = tx.objectStore('parked').add({ tables: [...tables], hlc, muts: [...muts] })
          req.onsuccess = () => {
            group = { id: Number(req.result), parked: true, seqs: [] }
          }
        } else {
          const first = k.seq + 1
          const seqd = muts.map((m, i) => ({ ...m, seq: first + i }))
          tx.objectStore('queue').add({ id: first, hlc, muts: seqd })
          counters.seq = first + muts.length - 1
          meta.put({ k: 'seq', v: counters.seq })
          group = { id: first, parked: false, seqs: seqd.map((m) => m.seq) }
        }
        meta.put({ k: 'pending', v: counters.pending })
      } catch (e) {
        tx.abort()
        reject(e)
      }
    })
  }

  return {
    async add(muts, { park }) {
      if (muts.length === 0) return { id: 0, parked: park, seqs: [] }
      await space.admit(muts)
      const hlc = maxHlc(muts)
      const tables = [...new Set(muts.map((m) => m.table))]
      if (known !== undefined) {
        const fast = await addTrusting(known, muts, hlc, tables, park).catch(() => 'stale' as const)
        if (fast !== 'stale') return fast
      }
      const out = await db.transaction('rw', [db.queue, db.parked, db.meta], async () => {
        const [seqRow, pendingRow] = await db.meta.bulkGet(['seq', 'pending'])
        const pending = (pendingRow?.v ?? 0) + muts.length
        let seq = seqRow?.v ?? 0
        let group: StoredGroup
        if (park) {
          const id = await db.parked.add({ tables, hlc, muts: [...muts] })
          group = { id, parked: true, seqs: [] }
        } else {
          const first = seq + 1
          const seqd = muts.map((m, i) => ({ ...m, seq: first + i }))
          await db.queue.add({ id: first, hlc, muts: seqd })
          seq = first + muts.length - 1
          await db.meta.put({ k: 'seq', v: seq })
          group = { id: first, parked: false, seqs: seqd.map((m) => m.seq) }
        }
        await db.meta.put({ k: 'pending', v: pending })
        return { group, counters: { seq, pending } }
      })
      known = out.counters
      return out.group
    },

    allocate(n) {
      return db.transaction('rw', [db.queue, db.meta], async () => {
        const first = await allocateRange(n)
        const queued = (await db.queue.count()) > 0
        return { first, queued }
      })
    },

    async peek(limit) {
      return db.transaction('r', [db.queue], async () => {
        const out: Mutation[] = []
        let full = false
        await db.queue
          .orderBy('id')
          .until(() => full)
          .each((g) => {
            if (out.length === 0 && g.muts.length > limit) {
              // A tx group is all-or-nothing only within one push: it goes whole, alone (the engine
              // refuses transactions over the edge's limit; the sync engine files one the edge refuses).
              out.push(...g.muts)
              full = true
            } else if (out.length + g.muts.length > limit) {
              full = true // the next batch starts with this whole group
            } else {
              out.push(...g.muts)
              full = out.length >= limit
            }
          })
        return out
      })
    },

    async ack(seqs, rejected) {
      if (seqs.length === 0 && rejected.length === 0) return
      const done = new Set(seqs)
      for (const r of rejected) done.add(r.seq)
      const min = Math.min(...done)
      const max = Math.max(...done)
      await db.transaction('rw', [db.queue, db.rejected, db.meta], async () => {
        let removed = 0
        // A group's id is its first seq, so the groups holding [min, max] start at or before max.
        const groups = await db.queue.where('id').belowOrEqual(max).toArray()
        for (const g of groups) {
          const lastSeq = g.muts[g.muts.length - 1]?.seq ?? g.id
          if (lastSeq < min) continue
          const keep = g.muts.filter((m) => !done.has(m.seq))
          removed += g.muts.length - keep.length
          if (keep.length === 0) await db.queue.delete(g.id)
          else if (keep.length !== g.muts.length) await db.queue.put({ ...g, muts: keep })
        }
        if (rejected.length > 0) await db.rejected.bulkPut([...rejected])
        if (removed > 0) await bump('pending', -removed)
      })
    },

    async promote(tables) {
      return db.transaction('rw', [db.queue, db.parked, db.meta], async () => {
        const groups = await db.parked.orderBy('id').toArray()
        let moved = 0
        for (const g of groups) {
          if (tables !== undefined && !g.tables.some((t) => tables.has(t))) continue
          const first = await allocateRange(g.muts.length)
          const seqd = g.muts.map((m, i) => ({ ...m, seq: first + i }))
          await db.queue.add({ id: first, hlc: g.hlc, muts: seqd })
          await db.parked.delete(must(g.id, 'parked group id'))
          moved += seqd.length
        }
        return moved
      })
    },

    pendingMutations() {
      return db.transaction('r', [db.queue, db.parked], async () => {
        const queued = await db.queue.orderBy('id').toArray()
        const parked = await db.parked.orderBy('id').toArray()
        return [...queued.flatMap((g) => g.muts), ...parked.flatMap((g) => g.muts)]
      })
    },

    pending: () => readMeta('pending'),

    async lastHlc() {
      return db.transaction('r', [db.queue, db.parked], async () => {
        const q = await db.queue.orderBy('id').last()
        const p = await db.parked.orderBy('id').last()
        const stamps = [q?.hlc, p?.hlc].filter((s): s is string => s !== undefined && s !== '')
        return stamps.sort().at(-1)
      })
    },

    claimOwner(candidate) {
      return db.transaction('rw', [db.owner], async () => {
        const stored = await db.owner.get('owner')
        if (stored !== undefined) return stored.v
        await db.owner.put({ k: 'owner', v: candidate })
        return candidate
      })
    },

    rejected: () => db.rejected.orderBy('seq').toArray(),
    rejectedCount: () => db.rejected.count(),
    async clearRejected() {
      await db.rejected.clear()
    },
    close() {
      db.close()
    },
  }
}
