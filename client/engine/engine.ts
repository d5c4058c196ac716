/**
 * client/engine/: the client's core, the same in the browser worker and in Node tests. engine.ts
 * wires the parts and holds the public `Engine`: write-plan.ts (validation), write-path.ts (the
 * outbox commit, then the cache write), write-through.ts, cache-repair.ts (the cache rebuilt from
 * the outbox after a refused write), scheduler.ts (the background loop), connectivity.ts,
 * live-queries.ts ('change' events, `subscribe`), stale-tables.ts (invalidate-on-write), status.ts.
 */
import { EddyError } from '../../shared/errors.ts'
import { createHlc } from '../../shared/hlc.ts'
import { DEFAULT_LIMITS } from '../../shared/protocol.ts'
import type { Row, Schema } from '../../shared/schema.ts'
import type { LocalCache } from '../cache/cache.ts'
import { openOutbox } from '../outbox/outbox.ts'
import { freshClientId, openClientMeta } from '../sync/client-meta.ts'
import { createSyncEngine } from '../sync/sync-engine.ts'
import { createTransport } from '../sync/transport.ts'
import { createMutex, electLeader, openChannel } from '../tabs/leader.ts'
import { createLeaderCursor } from '../tabs/leader-cursor.ts'
import { followTabs } from '../tabs/tab-follow.ts'
import type { ChangeEvent, RejectedWrite, Status, SyncReport, TransactionWriter } from '../types.ts'
import { createCacheRepair } from './cache-repair.ts'
import { createConnectivity } from './connectivity.ts'
import { createLiveQueries } from './live-queries.ts'
import { createScheduler } from './scheduler.ts'
import { createStaleTables } from './stale-tables.ts'
import { createStatusStore, initialStatus, noteError as noteStatusError } from './status.ts'
import { createWritePath } from './write-path.ts'

/**
 * The environment-agnostic core of the client: write path, outbox, sync loop, status. The browser
 * worker (`client/worker/db.worker.ts`) runs it over DuckDB-WASM; Node tests run it over a Map-based cache
 * and fake-indexeddb.
 */
export interface EngineOptions {
  /** Sync API base: '/sync' or 'http://127.0.0.1:8787/sync'. */
  url: string
  schema: Schema
  cache: LocalCache
  /** Bearer token provider. */
  token?: () => Promise<string | undefined>
  /** Injected for tests; default globalThis.fetch. */
  fetch?: typeof fetch
  /** Injected clock (HLC, schedules). */
  now?: () => number
  /** Injected jitter source. */
  random?: () => number
  /** IndexedDB name prefix (default 'eddy'); tests use unique names. */
  dbName?: string
  /** Background push/pull loop (default true). */
  autoSync?: boolean
  /**
   * First loads go through the edge's Arrow bulk pull into `cache.loadArrow` (default true);
   * false keeps every pull JSON.
   */
  bulkLoad?: boolean
  /**
   * The edge's `limits.maxMutations` (default 1,000, the protocol's default): the most mutations
   * one push carries, and so the largest `transaction`. The edge applies a tx group all-or-nothing
   * only within one push, so a larger transaction is refused (`too_large`) instead of being split.
   */
  maxMutations?: number
}

export interface Engine {
  readonly clientId: string
  /** This engine alone (tabs of a profile share the clientId): the `from` of its channel messages. */
  readonly instanceId: string
  /** write-back/hybrid/invalidate: resolves once durable in the outbox; write-through: pushes at once and resolves with the warehouse row. */
  put(table: string, row: Row): Promise<Row>
  delete(table: string, key: Row): Promise<void>
  /** One tx group: every write is validated first; all of them are durable together or none is. */
  transaction(fn: (tx: TransactionWriter) => void | Promise<void>): Promise<void>
  /** Pulls first for invalidate-on-write tables the SQL mentions that are stale. */
  query(sql: string, params?: unknown[]): Promise<Row[]>
  /** Push, then pull, now. */
  sync(): Promise<SyncReport>
  status(): Status
  on(event: 'status', listener: (s: Status) => void): () => void
  on(event: 'change', listener: (e: ChangeEvent) => void): () => void
  /** A live query: runs now and again on every 'change' of a table the SQL mentions. */
  subscribe(sql: string, params: unknown[], cb: (rows: Row[]) => void): () => void
  divergence(table: string): Promise<{ diverged: number }>
  rejected(): Promise<RejectedWrite[]>
  clearRejected(): Promise<void>
  /** The app's "go offline" switch; browser online/offline events feed it too. */
  setOnline(online: boolean): void
  close(): Promise<void>
}

/**
 * Builds an engine over a cache. Opens the profile's outbox and meta (IndexedDB), resumes the HLC
 * after the highest persisted stamp, joins the leader election, and (with `autoSync`) starts the
 * background loop: the leader pushes soon after every write, pulls on `refresh`/after pushes, and
 * backs off with jitter after failures.
 */
export async function createEngine(opts: EngineOptions): Promise<Engine> {
  const { schema, cache } = opts
  const now = opts.now ?? Date.now
  const random = opts.random ?? Math.random
  const dbName = opts.dbName ?? 'eddy'
  const autoSync = opts.autoSync ?? true
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis)
  const maxMutations = opts.maxMutations ?? DEFAULT_LIMITS.maxMutations

  const meta = openClientMeta(dbName)
  const outbox = openOutbox(dbName)
  // The edge drops seqs at or below the last one it saw from a clientId, so a clientId must never
  // restart its seqs: the outbox (which numbers them) keeps its owner. An outbox created for a
  // clientId that existed before (the outbox was lost) gets a fresh clientId.
  const known = await meta.clientId()
  const clientId = await outbox.claimOwner(known.created ? known.id : freshClientId())
  if (clientId !== known.id) await meta.setClientId(clientId)
  const stamps = [await meta.lastHlc(), await outbox.lastHlc()].filter((s): s is string => s !== undefined)
  const after = stamps.sort().at(-1)
  const hlc = createHlc({ nodeId: clientId, now, ...(after === undefined ? {} : { after }) })
  await cache.init([...schema.tables.values()])

  let closed = false
  const isClosed = (): boolean => closed
  const live = (): void => {
    if (closed) throw new EddyError('closed', 'this Eddy instance is closed')
  }
  // Aborting it stops a request in flight and drops the browser event listeners.
  const aborter = new AbortController()
  const connectivity = createConnectivity({
    signal: aborter.signal,
    onChange() {
      status.update({ online: online() })
      if (online()) scheduler.resume()
    },
  })
  const online = connectivity.online
  const status = createStatusStore(initialStatus(online()))
  const noteError = (e: unknown): void => noteStatusError(status, e)
  const transport = createTransport({
    url: opts.url,
    fetch: doFetch,
    token: opts.token,
    signal: aborter.signal,
  })
  const leadership = electLeader(`${dbName}:leader`)
  const channel = openChannel(`${dbName}:changes`)
  const instanceId = freshClientId()
  const changes = createLiveQueries({ schema, cache, noteError })
  const emitChange = changes.emitChange
  const refreshCounts = async (): Promise<void> => {
    const [pending, rejected] = await Promise.all([outbox.pending(), outbox.rejectedCount()])
    status.update({ pending, rejected })
  }
  const announceSynced = (): void => channel.post({ type: 'synced', tables: [] })

  const sync = createSyncEngine({
    schema,
    cache,
    outbox,
    transport,
    meta,
    hlc,
    clientId,
    status,
    now,
    random,
    pushLock: createMutex(`${dbName}:push`),
    bulkLoad: opts.bulkLoad ?? true,
    maxBatch: maxMutations,
    cursor: createLeaderCursor({
      isLeader: leadership.isLeader,
      load: () => meta.cursor(),
      save: (c) => meta.setCursor(c),
    }),
    emitChange,
    refreshCounts,
    async settledWrites() {
      await Promise.allSettled(writes.inFlight())
    },
    onSettled(settled) {
      channel.post({ type: 'settled', ...settled })
    },
  })

  const scheduler = createScheduler({
    schema,
    sync,
    status,
    now,
    autoSync,
    isClosed,
    online,
    isLeader: leadership.isLeader,
    announceSynced,
    noteError,
  })
  const stopFollowing = followTabs({
    schema,
    cache,
    channel,
    leadership,
    now,
    inFlightWrites: () => writes.inFlight(),
    mayPull: () => autoSync && online() && !closed,
    pull: () => sync.pull(),
    kick: scheduler.kick,
    onLeader: (leader) => status.update({ leader }),
    refreshCounts,
    emitChange,
    noteError,
  })

  const repair = createCacheRepair({ schema, cache, outbox, emitChange, noteError, isClosed })
  const stale = createStaleTables({ schema, sync, online, noteError })
  const writes = createWritePath({
    schema,
    cache,
    outbox,
    hlc,
    status,
    sync,
    repair,
    stale,
    maxMutations,
    online,
    live,
    announceWrite: (tables) => channel.post({ type: 'write', tables, from: instanceId }),
    emitChange,
    noteError,
    kick: scheduler.kick,
  })

  await refreshCounts()

  scheduler.start()

  const engine: Engine = {
    clientId,
    instanceId,
    put: writes.put,
    delete: writes.delete,
    transaction: writes.transaction,
    async query(sql, params = []) {
      live()
      await stale.reloadFor(sql)
      return cache.query(sql, params)
    },
    async sync() {
      live()
      if (!online()) throw new EddyError('offline', 'offline: cannot sync now')
      scheduler.restartSchedules()
      const report = await sync.sync()
      stale.clear()
      scheduler.clearFailures()
      announceSynced()
      return report
    },
    status: () => status.get(),
    on(event: 'status' | 'change', listener: ((s: Status) => void) | ((e: ChangeEvent) => void)): () => void {
      if (event === 'status') return status.on(listener as (s: Status) => void)
      return changes.onChange(listener as (e: ChangeEvent) => void)
    },
    subscribe: changes.subscribe,
    async divergence(table) {
      live()
      return { diverged: await sync.divergence(schema.table(table)) }
    },
    rejected: () => outbox.rejected(),
    async clearRejected() {
      await outbox.clearRejected()
      await refreshCounts()
      announceSynced()
    },
    setOnline: connectivity.setOnline,
    async close() {
      if (closed) return
      closed = true
      scheduler.stop()
      repair.stop()
      stopFollowing()
      aborter.abort() // a request in flight must not keep close() waiting; drops the event listeners
      await scheduler.running()
      await Promise.allSettled(writes.inFlight())
      await Promise.allSettled(repair.pending())
      leadership.close()
      channel.close()
      const last = hlc.last()
      if (last !== undefined) await meta.saveHlc(last)
      outbox.close()
    },
  }
  return engine
}
