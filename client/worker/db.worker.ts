/// <reference lib="webworker" />
import { expose, type ProxyMarked } from 'comlink'
import { EddyError, isEddyError } from '../../shared/errors.ts'
import { defineSchema, type Row, type Schema, type SchemaSpec } from '../../shared/schema.ts'
import type { LocalCache } from '../cache/cache.ts'
import { prestartDuckDb } from '../cache/duckdb-bundle.ts'
import {
  type CacheReset,
  type OpenedCache,
  openPersistentCache,
  type Persistence,
  type ResolvedPersistence,
} from '../cache/persistence.ts'
import { createEngine, type Engine } from '../engine/engine.ts'
import { dropOrphanWrites } from '../outbox/orphan-writes.ts'
import { openOutbox } from '../outbox/outbox.ts'
import { replayOutbox } from '../outbox/outbox-replay.ts'
import { forgetCursorIfSchemaChanged, openClientMeta } from '../sync/client-meta.ts'
import { openCursorOwner } from '../tabs/cursor-owner.ts'
import type { ChangeEvent, Status } from '../types.ts'
import { installErrorTransfer } from './comlink-errors.ts'

/**
 * client/worker/: the Web Worker the page talks to (db.worker.ts) and comlink-errors.ts, which
 * carries an `EddyError`'s code across the worker boundary. `client/index.ts` is the page side.
 *
 * The worker behind `createEddy()`: DuckDB-WASM (the cache), the engine (outbox, sync loop) and
 * persistence, exposed to the page with Comlink. The page sends the schema as its plain spec and
 * the worker rebuilds it with `defineSchema`, so the worker checks it the same way.
 */
export type TxOp = { op: 'put'; table: string; row: Row } | { op: 'delete'; table: string; key: Row }

export interface WorkerOpenOptions {
  url: string
  spec: SchemaSpec
  name: string
  persistence: Persistence
  autoSync: boolean
  maxMutations?: number
}

/** Callbacks into the page; Comlink proxies them only as top-level arguments. */
type TokenFn = (() => Promise<string | undefined>) & ProxyMarked
type StatusFn = ((s: Status, seq: number) => void) & ProxyMarked
type ChangeFn = ((e: ChangeEvent) => void) & ProxyMarked

export interface WorkerOpened {
  clientId: string
  status: Status
  seq: number
  persistence: ResolvedPersistence
  /** This open replaced an unreadable OPFS cache file (`persistence.ts`). */
  cacheReset: CacheReset | null
}

// DuckDB starts (its worker, the wasm compile) as soon as this worker loads, before `open` says
// which file to open: on a reload that is most of the time to the first query.
prestartDuckDb()

let engine: Engine | undefined
let opened: OpenedCache | undefined
interface Subscription {
  sql: string
  params: unknown[]
  cb: (rows: Row[]) => void
  off: () => void
}
const subscriptions = new Map<number, Subscription>()
let stopFollowing: () => void = () => {}

/**
 * Another tab's local writes reach this tab's cache through the shared outbox: the engines
 * announce each write on the profile's channel (`<name>:changes`, `{ type: 'write' }`), and this
 * worker re-applies queued outbox entries its cache lacks, then tells the page and re-runs live
 * queries. Online, the leader's push and the pull that follows would bring them too; offline this
 * is the only way. Hybrid writes parked for their schedule are replayed too (`Outbox.pendingMutations`).
 */
function followOtherTabs(
  name: string,
  cache: LocalCache,
  schema: Schema,
  onChange: ChangeFn,
  ownId: string,
): () => void {
  const outbox = openOutbox(name)
  const channel = new BroadcastChannel(`${name}:changes`)
  let running: Promise<void> | undefined
  let again = false
  const tables = new Set<string>()
  const follow = async (): Promise<void> => {
    do {
      again = false
      const n = await replayOutbox(cache, schema, await outbox.pendingMutations())
      if (n > 0) {
        for (const table of tables) void onChange({ table, source: 'local' })
        for (const sub of subscriptions.values()) {
          const rows = await live().query(sub.sql, sub.params)
          sub.cb(rows)
        }
      }
      tables.clear()
    } while (again)
  }
  channel.onmessage = (ev: MessageEvent<{ type?: string; tables?: string[]; from?: string }>) => {
    // This tab's own writes are in its cache already: replaying the whole outbox for each of them
    // made every put cost a replay of every pending write.
    if (ev.data.type !== 'write' || ev.data.from === ownId) return
    for (const t of ev.data.tables ?? []) tables.add(t)
    if (running !== undefined) {
      again = true
      return
    }
    running = follow()
      .catch(() => undefined) // a failed catch-up is retried by the next announced write
      .finally(() => {
        running = undefined
      })
  }
  return () => {
    channel.close()
    outbox.close()
  }
}

/**
 * Status events travel on their own port, so they may arrive after the reply to the call that
 * caused them. Each snapshot carries a sequence number, and a mutating call's reply carries the
 * status as it stood when it resolved: the page's synchronous `status()` already shows the write
 * (pending + 1) when `put` resolves, and never goes back to an older snapshot.
 */
let statusSeq = 0
export interface Stamped<T> {
  value: T
  status: Status
  seq: number
}
async function withStatus<T>(p: Promise<T>): Promise<Stamped<T>> {
  const value = await p
  return { value, status: live().status(), seq: statusSeq }
}

/**
 * Events for the page leave after the current task: the reply to the call that caused them goes
 * first (a write's acknowledgement does not queue behind its own notifications on the way to the
 * page), and a burst of them costs one message per kind and tick. `latest` keeps only the newest
 * (status snapshots: the seq is taken when it leaves, and the page drops anything older than the
 * reply it already has); `all` keeps every event, in order.
 */
function toPageLater<E>(send: (e: E) => void, keep: 'latest' | 'all'): (e: E) => void {
  let waiting: E[] = []
  return (e) => {
    if (keep === 'latest' && waiting.length > 0) {
      waiting[0] = e
      return
    }
    waiting.push(e)
    if (waiting.length > 1) return
    setTimeout(() => {
      const out = waiting
      waiting = []
      for (const x of out) send(x)
    }, 0)
  }
}

function live(): Engine {
  if (engine === undefined) throw new EddyError('closed', 'the Eddy worker is not open')
  return engine
}

const api = {
  async open(
    o: WorkerOpenOptions,
    onStatus: StatusFn,
    onChange: ChangeFn,
    token: TokenFn | undefined,
  ): Promise<WorkerOpened> {
    if (engine !== undefined) throw new EddyError('invalid_config', 'the Eddy worker is already open')
    const schema = defineSchema(o.spec)
    // Start-up overlaps its two halves: the outbox's IndexedDB is read while DuckDB starts and
    // opens its file (the slow half). Writes acknowledged before a reload are in the outbox even
    // if the cache lost them.
    const outbox = openOutbox(o.name)
    const queued = outbox.pendingMutations()
    queued.catch(() => undefined) // awaited below, once the cache is open
    try {
      opened = await openPersistentCache({
        name: o.name,
        persistence: o.persistence,
        tables: [...schema.tables.values()],
      })
    } catch (e) {
      outbox.close()
      throw e
    }
    try {
      const cursorOwner = openCursorOwner(o.name)
      try {
        // A memory cache may start from the owner tab's copy (cache-copy.ts), taken after `queued`
        // was read: a write acknowledged in between is in the copy, so read the outbox again.
        const pending = opened.persistence === 'memory' ? await outbox.pendingMutations() : await queued
        // the persisted cursor was saved by a memory-cache leader: it runs ahead of this file
        if (opened.persistence !== 'memory' && (await cursorOwner.takeForeign()))
          await openClientMeta(o.name).setCursor(undefined)
        // and one saved under another schema: a table or column the app added since then has rows
        // at or below it that this cache never pulled, so the next sync loads every table afresh
        if (opened.persistence !== 'memory')
          await forgetCursorIfSchemaChanged(o.name, [...schema.tables.values()])
        // and a pending row the outbox does not hold was never acknowledged: drop it, pull afresh
        // (a memory cache has no cursor of its own: the persisted one describes the owner's file)
        const dropped = await dropOrphanWrites(opened.cache, schema, pending)
        if (dropped > 0 && opened.persistence !== 'memory') await openClientMeta(o.name).setCursor(undefined)
        // A cache too full to take them must not keep the app from opening: the outbox still holds
        // (and pushes) them, and the pull after the push brings them into the cache.
        await replayOutbox(opened.cache, schema, pending).catch((e: unknown) => {
          if (!isEddyError(e, 'quota')) throw e
        })
      } finally {
        outbox.close()
      }
      engine = await createEngine({
        url: o.url,
        schema,
        cache: opened.cache,
        dbName: o.name,
        autoSync: o.autoSync,
        ...(o.maxMutations === undefined ? {} : { maxMutations: o.maxMutations }),
        ...(token === undefined ? {} : { token: () => token() }),
      })
    } catch (e) {
      await opened.cache.close().catch(() => undefined)
      opened = undefined
      throw e
    }
    engine.on(
      'status',
      toPageLater((s: Status) => void onStatus(s, ++statusSeq), 'latest'),
    )
    if (opened.persistence === 'memory') {
      const owner = openCursorOwner(o.name)
      const mark = (s: Status): void => {
        if (s.leader) owner.markForeign().catch(() => undefined) // retried on the next status
      }
      mark(engine.status())
      engine.on('status', mark)
    }
    engine.on(
      'change',
      toPageLater((e: ChangeEvent) => void onChange(e), 'all'),
    )
    stopFollowing = followOtherTabs(o.name, opened.cache, schema, onChange, engine.instanceId)
    return {
      clientId: engine.clientId,
      status: engine.status(),
      seq: statusSeq,
      persistence: opened.persistence,
      cacheReset: opened.reset,
    }
  },
  put: (table: string, row: Row) => withStatus(live().put(table, row)),
  delete: (table: string, key: Row) => withStatus(live().delete(table, key)),
  transaction: (ops: readonly TxOp[]) =>
    withStatus(
      live().transaction((tx) => {
        for (const o of ops) {
          if (o.op === 'put') tx.put(o.table, o.row)
          else tx.delete(o.table, o.key)
        }
      }),
    ),
  query: (sql: string, params?: unknown[]) => live().query(sql, params),
  sync: () => withStatus(live().sync()),
  status: (): Stamped<Status> => ({ value: live().status(), status: live().status(), seq: statusSeq }),
  divergence: (table: string) => live().divergence(table),
  rejected: () => live().rejected(),
  clearRejected: () => withStatus(live().clearRejected()),
  setOnline: (online: boolean) => withStatus(Promise.resolve(live().setOnline(online))),
  subscribe(id: number, sql: string, params: unknown[], cb: ((rows: Row[]) => void) & ProxyMarked): void {
    const send = (rows: Row[]): void => void cb(rows)
    subscriptions.set(id, { sql, params, cb: send, off: live().subscribe(sql, params, send) })
  },
  unsubscribe(id: number): void {
    subscriptions.get(id)?.off()
    subscriptions.delete(id)
  },
  /** Makes the cache durable now (tests and `pagehide`); normally it flushes on a debounce. */
  async flush(): Promise<void> {
    await opened?.flush()
  },
  async close(): Promise<void> {
    for (const sub of subscriptions.values()) sub.off()
    subscriptions.clear()
    stopFollowing()
    stopFollowing = () => {}
    const e = engine
    engine = undefined
    if (e !== undefined) await e.close()
    // closing twice is harmless: the engine may already have closed the cache it was given
    await opened?.cache.close()
    opened = undefined
  },
}
export type WorkerApi = typeof api

installErrorTransfer()
expose(api)
