import { canonicalKey } from '../../shared/digest.ts'
import { EddyError, isEddyError, toEddyError } from '../../shared/errors.ts'
import { createHlc } from '../../shared/hlc.ts'
import type { NewMutation, PushResult } from '../../shared/protocol.ts'
import type { Row, Schema, Table } from '../../shared/schema.ts'
import { validateWrite } from '../../shared/validators.ts'
import type { CachedRow, LocalCache, LocalWrite } from '../cache/cache.ts'
import { openOutbox } from '../outbox/outbox.ts'
import { replayOutbox, withPending } from '../outbox/outbox-replay.ts'
import { freshClientId, openClientMeta } from '../sync/client-meta.ts'
import { createSyncEngine, MAX_BATCH } from '../sync/sync-engine.ts'
import { createTransport, retryable } from '../sync/transport.ts'
import { type ChannelMessage, createMutex, electLeader, openChannel } from '../tabs/leader.ts'
import type { ChangeEvent, RejectedWrite, Status, SyncReport, TransactionWriter } from '../types.ts'
import { createStatusStore, initialStatus } from './status.ts'

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

/** How often the background loop looks at its schedules (hybrid pushes, refresh pulls, retries). */
const TICK_MS = 1000
/** First and longest wait before retrying a failed repair of the cache from the outbox. */
const REPAIR_FIRST_MS = 500
const REPAIR_MAX_MS = 30_000
/** Pull interval when no table sets `refresh`. */
const DEFAULT_PULL_MS = 30_000

interface PlannedWrite {
  table: Table
  op: 'upsert' | 'delete'
  key: Row
  values: Row | undefined
}

/** Schema tables the SQL names (as whole words): what a live query or a lazy reload depends on. */
function mentionedTables(schema: Schema, sql: string): string[] {
  const words = new Set(sql.toLowerCase().match(/[a-z_][a-z0-9_]*/g) ?? [])
  return [...schema.tables.keys()].filter((t) => words.has(t))
}

function isQuotaError(e: unknown): boolean {
  for (let x: unknown = e, i = 0; x !== undefined && x !== null && i < 5; i++) {
    if (typeof x !== 'object') return false
    const o = x as { name?: unknown; inner?: unknown; cause?: unknown }
    if (o.name === 'QuotaExceededError') return true
    x = o.inner ?? o.cause
  }
  return false
}

function browserOnline(): boolean {
  const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator
  return nav?.onLine !== false
}

/** The full row an upsert leaves over `base` (columns neither sets are null). */
function overlay(table: Table, base: Row | undefined, key: Row, values: Row): Row {
  const row: Row = {}
  for (const c of table.columns) {
    const v = Object.hasOwn(key, c.name)
      ? key[c.name]
      : Object.hasOwn(values, c.name)
        ? values[c.name]
        : base !== undefined && Object.hasOwn(base, c.name)
          ? base[c.name]
          : null
    row[c.name] = v ?? null
  }
  return row
}

/** Whether an upsert names every column of its table (then no stored row is needed under it). */
function coversAllColumns(p: PlannedWrite): boolean {
  const values = p.values ?? {}
  return p.table.columns.every((c) => Object.hasOwn(p.key, c.name) || Object.hasOwn(values, c.name))
}

function splitRow(table: Table, row: Row): { key: Row; values: Row } {
  const key: Row = {}
  const values: Row = {}
  for (const [k, v] of Object.entries(row)) {
    if (table.primaryKey.includes(k)) key[k] = v
    else values[k] = v
  }
  return { key, values }
}

/**
 * Validates one write. A delete takes the primary-key columns of what it is given, so a row read
 * back from `query` (with its other columns) can be passed as is.
 */
function plan(schema: Schema, name: string, op: 'upsert' | 'delete', row: Row): PlannedWrite {
  const table = schema.table(name)
  const { key, values } =
    op === 'upsert' ? splitRow(table, row) : { key: splitRow(table, row).key, values: undefined }
  const checked = validateWrite(table, op, key, values)
  const first = checked.errors[0]
  if (first !== undefined) throw new EddyError(first.code, first.message, { field: first.field })
  return { table, op, key: checked.key, values: op === 'upsert' ? checked.values : undefined }
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
  const maxMutations = opts.maxMutations ?? MAX_BATCH

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

  let appOnline = true
  let netOnline = browserOnline()
  const status = createStatusStore(initialStatus(netOnline))
  const aborter = new AbortController()
  const transport = createTransport({
    url: opts.url,
    fetch: doFetch,
    token: opts.token,
    signal: aborter.signal,
  })
  const leadership = electLeader(`${dbName}:leader`)
  const channel = openChannel(`${dbName}:changes`)
  const instanceId = freshClientId()
  const changeListeners = new Set<(e: ChangeEvent) => void>()
  /** invalidate-on-write tables written since their last reload */
  const stale = new Set<string>()
  let closed = false
  /** Local writes between their start and the moment their cache write is queued. */
  const inFlight = new Set<Promise<unknown>>()
  /** Settles once the latest local write's cache write is queued (or its outbox commit failed). */
  let cacheTail: Promise<unknown> = Promise.resolve()
  /** Cache writes (and repairs) queued but not yet done. */
  const applying = new Set<Promise<unknown>>()
  let repairTimer: ReturnType<typeof setTimeout> | undefined
  let repairing = false
  /** Counts cache write failures and repairs: a read that spans one may have missed pending rows. */
  let cacheTrouble = 0

  // The persisted cursor belongs to the leader's cache; another tab's cache starts from scratch
  // in memory and only persists its cursor once it leads.
  let cursorValue: string | undefined
  let cursorPulled = false
  const cursor = {
    async get() {
      if (leadership.isLeader() && !cursorPulled) cursorValue = await meta.cursor()
      return cursorValue
    },
    async set(c: string) {
      cursorValue = c
      cursorPulled = true
      if (leadership.isLeader()) await meta.setCursor(c)
    },
  }

  const emitChange = (tables: Iterable<string>, source: 'local' | 'remote'): void => {
    for (const table of tables) for (const l of [...changeListeners]) l({ table, source })
  }
  const refreshCounts = async (): Promise<void> => {
    const [pending, rejected] = await Promise.all([outbox.pending(), outbox.rejectedCount()])
    status.update({ pending, rejected })
  }
  const noteError = (e: unknown): void => {
    const err = toEddyError(e)
    status.update({ lastError: { code: err.code, message: err.message } })
  }

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
    cursor,
    emitChange,
    refreshCounts,
    async settledWrites() {
      await Promise.allSettled([...inFlight])
    },
    onSettled(settled) {
      channel.post({ type: 'settled', ...settled })
    },
  })

  // ---- background loop ---------------------------------------------------------------------
  const hybridTables = [...schema.tables.values()].filter((t) => t.sync === 'hybrid')
  const hybridDue = new Map(hybridTables.map((t) => [t.name, now() + (t.scheduleMs ?? 0)]))
  const refreshes = [...schema.tables.values()].flatMap((t) =>
    t.refreshMs === undefined ? [] : [t.refreshMs],
  )
  const pullEveryMs = refreshes.length > 0 ? Math.min(...refreshes) : DEFAULT_PULL_MS
  let nextPullAt = now()
  let failures = 0
  let retryAt = 0
  let loop: Promise<void> | undefined
  let again = false
  let kickTimer: ReturnType<typeof setTimeout> | undefined

  const online = (): boolean => appOnline && netOnline
  const canRun = (): boolean => autoSync && !closed && online() && leadership.isLeader()

  async function runLoop(): Promise<void> {
    do {
      again = false
      const t = now()
      const due = new Set<string>()
      for (const [name, at] of hybridDue) {
        if (t >= at) {
          due.add(name)
          hybridDue.set(name, t + (schema.table(name).scheduleMs ?? 0))
        }
      }
      try {
        const tally = await sync.push(due.size > 0 ? due : 'none')
        let pulled = 0
        const pulledNow = tally.pushed > 0 || t >= nextPullAt
        if (pulledNow) {
          nextPullAt = t + pullEveryMs
          pulled = await sync.pull()
        }
        failures = 0
        retryAt = 0
        if (tally.pushed > 0 || pulledNow)
          status.update({ lastSyncAt: new Date(now()).toISOString(), lastError: null })
        if (tally.pushed > 0 || pulled > 0) channel.post({ type: 'synced', tables: [] })
      } catch (e) {
        noteError(e)
        failures += 1
        // 4xx answers wait too: retrying at once would repeat the same refusal.
        retryAt = now() + sync.backoffMs(retryable(e) ? failures : failures + 3)
        return
      }
    } while (again && canRun())
  }

  function run(): void {
    if (!canRun()) return
    if (loop !== undefined) {
      again = true
      return
    }
    loop = runLoop().finally(() => {
      loop = undefined
    })
  }

  /** Schedules a background pass soon; bursts of writes coalesce into one push. */
  function kick(): void {
    if (!canRun() || now() < retryAt || kickTimer !== undefined) return
    kickTimer = setTimeout(() => {
      kickTimer = undefined
      run()
    }, 0)
  }

  const ticker = autoSync
    ? setInterval(() => {
        if (!canRun() || now() < retryAt) return
        const t = now()
        const hybridDueNow = [...hybridDue.values()].some((at) => t >= at)
        if (hybridDueNow || t >= nextPullAt || failures > 0) run()
      }, TICK_MS)
    : undefined

  const offLeader = leadership.onChange((leader) => {
    status.update({ leader })
    if (leader) kick()
  })
  /** Another tab's leader settled a batch: this tab's cache follows. */
  async function followSettled(msg: Extract<ChannelMessage, { type: 'settled' }>): Promise<void> {
    // This tab's own writes in the batch may still be reaching its cache.
    await Promise.allSettled([...inFlight])
    const at = new Date(now()).toISOString()
    for (const s of msg.synced) {
      const t = schema.tables.get(s.table)
      if (t !== undefined) await cache.markSynced(t, s.rows, at)
    }
    if (msg.restored.length > 0) emitChange(await cache.applyRemote(msg.restored, schema.tables), 'remote')
  }

  const offChannel = channel.on((msg) => {
    if (msg.type === 'settled') {
      followSettled(msg).catch(noteError)
      return
    }
    refreshCounts().catch(noteError)
    if (msg.type === 'write' && leadership.isLeader()) kick()
    if (msg.type === 'synced' && !leadership.isLeader() && autoSync && online() && !closed) {
      sync.pull().catch(noteError)
    }
  })

  const onBrowserOnline = (): void => setNet(true)
  const onBrowserOffline = (): void => setNet(false)
  // A window or worker scope tells us about the network; `close()` aborts these listeners.
  if (typeof (globalThis as { addEventListener?: unknown }).addEventListener === 'function') {
    globalThis.addEventListener('online', onBrowserOnline, { signal: aborter.signal })
    globalThis.addEventListener('offline', onBrowserOffline, { signal: aborter.signal })
  }
  function setNet(v: boolean): void {
    netOnline = v
    onlineChanged()
  }
  function onlineChanged(): void {
    status.update({ online: online() })
    if (online()) {
      retryAt = 0
      kick()
    }
  }

  await refreshCounts()

  // ---- write path --------------------------------------------------------------------------
  function live(): void {
    if (closed) throw new EddyError('closed', 'this Eddy instance is closed')
  }

  /**
   * Applies planned writes as one group. Local modes: the outbox commit (strict durability) is the
   * acknowledgement; the cache write is queued right after it, before the caller hears back, so a
   * read started after the acknowledgement runs behind it (the cache applies calls in call order).
   * A failed outbox commit leaves the cache untouched; a failed cache write loses nothing (the
   * outbox holds the write) and is repaired from the outbox. Write-through: nothing local until the
   * edge answers. Returns the row each upsert leaves (null for deletes).
   */
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
      const troubleBefore = cacheTrouble
      const got = new Map<Table, Map<string, CachedRow>>()
      for (const [t, keys] of byTable) got.set(t, await cache.getRows(t, keys))
      // After a failed cache write and until its repair, the outbox holds rows the cache lacks.
      const pending =
        cacheTrouble !== troubleBefore || repairTimer !== undefined || repairing
          ? await outbox.pendingMutations()
          : []
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
      return writeThrough(planned, muts, fulls)
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
      queueCacheWrite(writes)
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
    channel.post({ type: 'write', tables, from: instanceId })
    emitChange(tables, 'local')
    if (planned.some((p) => p.table.refreshOnWrite) && online()) {
      sync
        .push('none')
        .then(() => sync.pull())
        .then(() => {
          for (const p of planned) if (p.table.refreshOnWrite) stale.delete(p.table.name)
        })
        .catch(noteError)
    }
    kick()
    return fulls
  }

  /**
   * Hands acknowledged writes to the cache without waiting for them. If the cache refuses them
   * (full storage, a broken file), the error goes to `status().lastError` and the cache is rebuilt
   * from the outbox, which still holds every pending write.
   */
  function queueCacheWrite(writes: readonly LocalWrite[]): void {
    const applied = cache.applyLocal(writes).catch((e: unknown) => {
      cacheTrouble += 1
      noteError(e)
      repairCache()
    })
    applying.add(applied)
    void applied.finally(() => applying.delete(applied))
  }

  /** Replays the pending outbox into the cache; retried with a growing delay until it succeeds. */
  function repairCache(delayMs = 0): void {
    if (closed || repairTimer !== undefined) return
    repairTimer = setTimeout(() => {
      repairTimer = undefined
      repairing = true
      const run = (async () => {
        const muts = await outbox.pendingMutations()
        const n = await replayOutbox(cache, schema, muts)
        if (n > 0) emitChange(new Set(muts.map((m) => m.table)), 'local')
      })()
      applying.add(run)
      run
        .then(
          () => {
            repairing = false
            cacheTrouble += 1
          },
          (e: unknown) => {
            repairing = false
            noteError(e)
            repairCache(Math.min(Math.max(delayMs * 2, REPAIR_FIRST_MS), REPAIR_MAX_MS))
          },
        )
        .finally(() => applying.delete(run))
    }, delayMs)
  }

  async function writeThrough(
    planned: readonly PlannedWrite[],
    muts: readonly NewMutation[],
    fulls: ReadonlyArray<Row | null>,
  ): Promise<Array<Row | null>> {
    if (!online()) throw new EddyError('offline', 'offline: a write-through write needs the edge')
    let results: PushResult[]
    try {
      results = await sync.pushDirect(muts)
    } catch (e) {
      if (retryable(e)) {
        const err = toEddyError(e)
        throw new EddyError('offline', `the edge is unreachable: ${err.message}`, { cause: e })
      }
      throw e
    }
    const bad = results.find((r) => r.status === 'rejected')
    if (bad !== undefined) {
      const err = bad.error ?? { code: 'rejected', message: 'rejected by the edge' }
      throw new EddyError(
        'rejected',
        `${err.code}: ${err.message}`,
        err.field === undefined ? {} : { field: err.field },
      )
    }
    if (results.some((r) => r.status === 'conflict')) {
      status.update({
        conflicts: status.get().conflicts + results.filter((r) => r.status === 'conflict').length,
      })
      throw new EddyError(
        'rejected',
        'conflict: the write was recorded for manual review, the row is unchanged',
      )
    }
    if (results.some((r) => r.status === 'duplicate'))
      throw new EddyError('internal', 'the edge answered duplicate to a fresh write-through seq')
    const out: Array<Row | null> = []
    const changes = planned.map((p, i) => {
      const r = results[i]
      const row = p.op === 'delete' ? null : (r?.row ?? fulls[i] ?? null)
      out.push(row)
      return { table: p.table.name, key: p.key, row, hlc: muts[i]?.hlc ?? '' }
    })
    const applied = changes.filter((_, i) => results[i]?.status === 'applied')
    const changed = await cache.applyRemote(applied, schema.tables)
    emitChange(changed, 'local')
    if (results.some((r) => r.status === 'stale')) {
      // A newer write holds the row: fetch the winner and answer with it.
      await sync.pull()
      for (const [i, p] of planned.entries()) {
        if (results[i]?.status !== 'stale' || p.op === 'delete') continue
        const got = (await cache.getRows(p.table, [p.key])).get(canonicalKey(p.table, p.key))
        out[i] = got === undefined || got.deleted ? null : got.values
      }
    }
    return out
  }

  async function reloadIfStale(sql: string): Promise<void> {
    const hit = mentionedTables(schema, sql).filter((t) => stale.has(t))
    if (hit.length === 0 || !online()) return
    try {
      await sync.push(new Set(hit))
      await sync.pull()
      for (const t of hit) stale.delete(t)
    } catch (e) {
      // Unreachable: serve what the cache has; the table stays stale for the next read.
      if (!retryable(e)) throw e
      noteError(e)
    }
  }

  // Start: a first pass once the leader election has (most likely) settled. A tab that does not
  // lead still fills its own cache once; later it pulls when the leader reports new data.
  const starter = autoSync
    ? setTimeout(() => {
        if (leadership.isLeader()) kick()
        else if (online() && !closed) sync.pull().catch(noteError)
      }, 0)
    : undefined

  const engine: Engine = {
    clientId,
    instanceId,
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
      if (planned.length > maxMutations)
        throw new EddyError(
          'too_large',
          `a transaction of ${planned.length} writes is larger than one push (${maxMutations}): the edge ` +
            "applies a transaction all-or-nothing only within one push. Split it, or raise the edge's " +
            "limits.maxMutations and the client's maxMutations together",
        )
      await commit(planned)
    },
    async query(sql, params = []) {
      live()
      await reloadIfStale(sql)
      return cache.query(sql, params)
    },
    async sync() {
      live()
      if (!online()) throw new EddyError('offline', 'offline: cannot sync now')
      for (const t of hybridTables) hybridDue.set(t.name, now() + (t.scheduleMs ?? 0))
      const report = await sync.sync()
      stale.clear()
      failures = 0
      retryAt = 0
      channel.post({ type: 'synced', tables: [] })
      return report
    },
    status: () => status.get(),
    on(event: 'status' | 'change', listener: ((s: Status) => void) | ((e: ChangeEvent) => void)): () => void {
      if (event === 'status') return status.on(listener as (s: Status) => void)
      const l = listener as (e: ChangeEvent) => void
      changeListeners.add(l)
      return () => {
        changeListeners.delete(l)
      }
    },
    subscribe(sql, params, cb) {
      const tables = new Set(mentionedTables(schema, sql))
      let running = false
      let dirty = false
      let stopped = false
      const rerun = async (): Promise<void> => {
        if (running) {
          dirty = true
          return
        }
        running = true
        try {
          do {
            dirty = false
            const rows = await cache.query(sql, params)
            if (!stopped) cb(rows)
          } while (dirty && !stopped)
        } catch (e) {
          noteError(e)
        } finally {
          running = false
        }
      }
      const l = (e: ChangeEvent): void => {
        if (tables.has(e.table)) void rerun()
      }
      changeListeners.add(l)
      void rerun()
      return () => {
        stopped = true
        changeListeners.delete(l)
      }
    },
    async divergence(table) {
      live()
      return { diverged: await sync.divergence(schema.table(table)) }
    },
    rejected: () => outbox.rejected(),
    async clearRejected() {
      await outbox.clearRejected()
      await refreshCounts()
      channel.post({ type: 'synced', tables: [] })
    },
    setOnline(v) {
      appOnline = v
      onlineChanged()
    },
    async close() {
      if (closed) return
      closed = true
      if (ticker !== undefined) clearInterval(ticker)
      if (kickTimer !== undefined) clearTimeout(kickTimer)
      if (starter !== undefined) clearTimeout(starter)
      if (repairTimer !== undefined) clearTimeout(repairTimer)
      offLeader()
      offChannel()
      aborter.abort() // a request in flight must not keep close() waiting; drops the event listeners
      await loop
      await Promise.allSettled([...inFlight])
      await Promise.allSettled([...applying])
      leadership.close()
      channel.close()
      const last = hlc.last()
      if (last !== undefined) await meta.saveHlc(last)
      outbox.close()
    },
  }
  return engine
}
