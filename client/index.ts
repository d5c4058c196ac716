import { proxy, type Remote, wrap } from 'comlink'
import { EddyError } from '../shared/errors.ts'
import type { Row, Schema } from '../shared/schema.ts'
import type { CacheReset, Persistence, ResolvedPersistence } from './cache/persistence.ts'
import type { Engine } from './engine/engine.ts'
import type { ChangeEvent, RejectedWrite, Status, SyncReport, TransactionWriter } from './types.ts'
import { installErrorTransfer } from './worker/comlink-errors.ts'
import type { Stamped, TxOp, WorkerApi } from './worker/db.worker.ts'

/**
 * `eddy/client`: the page side of Eddy. `createEddy()` starts the worker (DuckDB-WASM cache,
 * outbox, sync engine) and returns a thin proxy to it. Every method crosses the worker boundary
 * and is async, except `status()`, which the page mirrors from the worker's status events.
 */
export { EddyError, isEddyError } from '../shared/errors.ts'
export type {
  CacheReset,
  ChangeEvent,
  Engine,
  Persistence,
  RejectedWrite,
  ResolvedPersistence,
  Row,
  Status,
  SyncReport,
  TransactionWriter,
}

export interface EddyOptions {
  /** Sync API base: `/sync` (same origin) or an absolute URL. */
  url: string
  schema: Schema
  /** Bearer token provider, called before each request. */
  token?: () => Promise<string | undefined>
  /** Where the cache lives between sessions (default `auto`: OPFS, else an IndexedDB snapshot). */
  persistence?: Persistence
  /** Prefix of the profile's IndexedDB databases and OPFS file (default `eddy`). */
  name?: string
  /** Background push/pull loop (default true). */
  autoSync?: boolean
  /**
   * The edge's `limits.maxMutations` (default 1,000): the largest push, and so the largest
   * `transaction` (a larger one is refused with `too_large`: see docs/embedding.md).
   */
  maxMutations?: number
}

/** The page-side client: the engine's API (DESIGN.md "The client API"), across the worker boundary. */
export interface Eddy extends Omit<Engine, 'instanceId'> {
  readonly persistence: ResolvedPersistence
  /**
   * Not null when this start found the OPFS cache file unreadable (corrupt, truncated, a storage
   * version this DuckDB-WASM cannot read) and replaced it with an empty one: pending writes are
   * back from the outbox, and the next sync pulls everything again. docs/reliability.md.
   */
  readonly cacheReset: CacheReset | null
  /** Makes the local cache durable now (it is flushed on a debounce anyway). */
  flush(): Promise<void>
}

export async function createEddy(opts: EddyOptions): Promise<Eddy> {
  installErrorTransfer()
  const worker = new Worker(new URL('./worker/db.worker.ts', import.meta.url), {
    type: 'module',
    name: 'eddy',
  })
  const remote: Remote<WorkerApi> = wrap<WorkerApi>(worker)
  const statusListeners = new Set<(s: Status) => void>()
  const changeListeners = new Set<(e: ChangeEvent) => void>()
  let current: Status | undefined
  let currentSeq = 0
  let closed = false
  let nextSub = 1

  // a persisted origin keeps its IndexedDB and OPFS data under storage pressure
  void navigator.storage?.persist?.().catch(() => false)

  // a worker that fails to load or crashes during start would otherwise leave `open` pending forever
  let onFail: (e: Event) => void = () => {}
  const failed = new Promise<never>((_, reject) => {
    onFail = (e: Event) =>
      reject(new EddyError('internal', `the Eddy worker failed: ${(e as ErrorEvent).message ?? e.type}`))
    worker.addEventListener('error', onFail)
  })
  let opened: Awaited<ReturnType<WorkerApi['open']>>
  try {
    opened = await Promise.race([
      failed,
      remote.open(
        {
          url: new URL(opts.url, location.href).href,
          spec: opts.schema.spec,
          name: opts.name ?? 'eddy',
          persistence: opts.persistence ?? 'auto',
          autoSync: opts.autoSync ?? true,
          ...(opts.maxMutations === undefined ? {} : { maxMutations: opts.maxMutations }),
        },
        proxy((s: Status, seq: number) => {
          if (seq <= currentSeq) return
          currentSeq = seq
          current = s
          for (const l of [...statusListeners]) l(s)
        }),
        proxy((e: ChangeEvent) => {
          for (const l of [...changeListeners]) l(e)
        }),
        opts.token === undefined ? undefined : proxy(opts.token),
      ),
    ])
  } catch (e) {
    worker.terminate()
    throw e
  } finally {
    worker.removeEventListener('error', onFail)
  }
  if (opened.seq >= currentSeq) {
    current = opened.status
    currentSeq = opened.seq
  }
  /** Takes the status a reply carries unless a newer event already arrived; returns the value. */
  const settle = async <T>(p: Promise<Stamped<T>>): Promise<T> => {
    const r = await p
    if (r.seq >= currentSeq && JSON.stringify(r.status) !== JSON.stringify(current)) {
      currentSeq = r.seq
      current = r.status
      for (const l of [...statusListeners]) l(r.status)
    }
    return r.value
  }

  const open = (): Remote<WorkerApi> => {
    if (closed) throw new EddyError('closed', 'this Eddy instance is closed')
    return remote
  }

  function on(event: 'status', listener: (s: Status) => void): () => void
  function on(event: 'change', listener: (e: ChangeEvent) => void): () => void
  function on(
    event: 'status' | 'change',
    listener: ((s: Status) => void) | ((e: ChangeEvent) => void),
  ): () => void {
    if (event === 'status') {
      const l = listener as (s: Status) => void
      statusListeners.add(l)
      return () => statusListeners.delete(l)
    }
    if (event === 'change') {
      const l = listener as (e: ChangeEvent) => void
      changeListeners.add(l)
      return () => changeListeners.delete(l)
    }
    throw new EddyError('invalid_config', `unknown event '${String(event)}'`)
  }

  return {
    clientId: opened.clientId,
    persistence: opened.persistence,
    cacheReset: opened.cacheReset,
    put: (table, row) => settle(open().put(table, row)),
    delete: (table, key) => settle(open().delete(table, key)),
    async transaction(fn) {
      // the function runs here; its writes cross to the worker as one list, applied as one tx group
      const ops: TxOp[] = []
      await fn({
        put: (table, row) => void ops.push({ op: 'put', table, row }),
        delete: (table, key) => void ops.push({ op: 'delete', table, key }),
      })
      await settle(open().transaction(ops))
    },
    query: (sql, params) => open().query(sql, params),
    sync: () => settle(open().sync()),
    status: () => {
      if (current === undefined) throw new EddyError('internal', 'no status yet')
      return current
    },
    on,
    subscribe(sql, params, cb) {
      const id = nextSub++
      const started = open().subscribe(id, sql, params, proxy(cb))
      return () => {
        void started.then(() => (closed ? undefined : remote.unsubscribe(id))).catch(() => undefined)
      }
    },
    divergence: (table) => open().divergence(table),
    rejected: () => open().rejected(),
    clearRejected: () => settle(open().clearRejected()),
    setOnline(online) {
      // the reply (and the status events) report the outcome
      settle(open().setOnline(online)).catch(() => undefined)
    },
    flush: () => open().flush(),
    async close() {
      if (closed) return
      closed = true
      try {
        await remote.close()
      } finally {
        worker.terminate()
      }
    },
  }
}
