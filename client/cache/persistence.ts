import type { AsyncDuckDB } from '@duckdb/duckdb-wasm'
import type { Table } from '../../shared/schema.ts'
import { openClientMeta } from '../sync/client-meta.ts'
import type { LocalCache } from './cache.ts'
import { copyFromOwner, serveCacheCopies } from './cache-copy.ts'
import { claimCacheFile } from './cache-file-lock.ts'
import { isUnreadableCacheFile } from './cache-file-unreadable.ts'
import { opfsAvailable, startDuckDb } from './duckdb-bundle.ts'
import { createDuckDbCache, type DuckDbCache } from './duckdb-cache.ts'
import { openSnapshotStore } from './idb-snapshot.ts'

/** Defaults of `flushDelayMs` and `maxFlushDelayMs`. */
const FLUSH_QUIET_MS = 250
const FLUSH_MAX_MS = 2000
/** How often, and how far apart, removing an OPFS file is retried while the browser still holds it. */
const REMOVE_ATTEMPTS = 50
const REMOVE_RETRY_MS = 100

/**
 * Where the worker's DuckDB cache lives between sessions.
 *
 * - `opfs`: the database file `opfs://<name>.duckdb`, made durable by `CHECKPOINT`.
 * - `idb`: an in-memory database saved to IndexedDB as Arrow snapshots (browsers without OPFS).
 * - `memory`: nothing survives a reload (the outbox still does; it is re-applied on start).
 * - `auto` (default): `opfs` where the worker can use it, else `idb`.
 *
 * Local writes are flushed on a debounce, never per write: a write is durable once its outbox entry
 * is, and on start pending outbox entries are re-applied over the cache. Pulled changes and settled
 * writes are flushed before `applyRemote` / `markSynced` resolve, so the engine never saves a pull
 * cursor, or drops an outbox entry, ahead of the durable cache. Bulk loads (`loadArrow`) are the
 * pages of a first load: the engine flushes once after the last page, before it saves the cursor.
 */
export type Persistence = 'auto' | 'opfs' | 'idb' | 'memory'
export type ResolvedPersistence = Exclude<Persistence, 'auto'>

/**
 * The OPFS cache file could not be read (corrupt, truncated, a WAL that does not replay, a storage
 * version this DuckDB cannot read) and was replaced by an empty one at open: the pull cursor was
 * forgotten, so the next sync pulls everything again, and pending writes came back from the outbox.
 */
export interface CacheReset {
  /** DuckDB's error for the file that was removed. */
  message: string
}

export interface OpenedCache {
  cache: LocalCache
  persistence: ResolvedPersistence
  /** Set when this open replaced an unreadable cache file (see `CacheReset`). */
  reset: CacheReset | null
  /** Runs the flush now (checkpoint or snapshot); resolves once it is durable. */
  flush(): Promise<void>
}

export interface OpenCacheOptions {
  name: string
  persistence: Persistence
  tables: readonly Table[]
  /** Quiet time after the last write before flushing (default `FLUSH_QUIET_MS`); a busy stream flushes every `maxFlushDelayMs` (default `FLUSH_MAX_MS`). */
  flushDelayMs?: number
  maxFlushDelayMs?: number
}

export function resolvePersistence(p: Persistence): ResolvedPersistence {
  if (p !== 'auto') return p
  if (opfsAvailable()) return 'opfs'
  return typeof indexedDB === 'object' ? 'idb' : 'memory'
}

export async function openPersistentCache(opts: OpenCacheOptions): Promise<OpenedCache> {
  let persistence = resolvePersistence(opts.persistence)
  // One worker per profile owns the file (`cache-file-lock.ts`). Another tab of the profile gets an
  // in-memory cache of its own, starting from a copy of the owner's rows (`cache-copy.ts`, so it
  // shows the data offline too); its engine then keeps it up to date by pulling, as it does for
  // every non-leader tab.
  const release = persistence === 'memory' ? undefined : await claimCacheFile(opts.name)
  /** Another tab's worker owns the file: this one starts from that tab's copy. */
  const secondary = persistence !== 'memory' && release === undefined
  if (release === undefined) persistence = 'memory'
  let reset: CacheReset | null = null
  const db: AsyncDuckDB = await (persistence === 'opfs'
    ? startDuckDb(`opfs://${opts.name}.duckdb`, async (e) => {
        if (!(await removeUnreadableCacheFile(opts.name, e))) return false
        reset = { message: e instanceof Error ? e.message : String(e) }
        return true
      })
    : startDuckDb(':memory:')
  ).catch((e: unknown) => {
    release?.()
    throw e
  })
  const inner: DuckDbCache = await createDuckDbCache({ db, persistent: persistence === 'opfs' })
  await inner.init(opts.tables)
  const snapshots = persistence === 'idb' ? openSnapshotStore(opts.name) : undefined
  if (snapshots) await snapshots.restore(inner, opts.tables)
  if (secondary) await copyFromOwner(opts.name, inner, opts.tables)
  const stopServing = release === undefined ? () => {} : serveCacheCopies(opts.name, inner, opts.tables)

  const flushNow = async (): Promise<void> => {
    if (persistence === 'opfs') await inner.checkpoint()
    else if (snapshots) await snapshots.save(inner, opts.tables)
  }
  const flusher = debounced(
    flushNow,
    opts.flushDelayMs ?? FLUSH_QUIET_MS,
    opts.maxFlushDelayMs ?? FLUSH_MAX_MS,
  )

  const written = async <T>(p: Promise<T>): Promise<T> => {
    const out = await p
    flusher.schedule()
    return out
  }
  /**
   * Pulled rows and settled writes have no other local copy once this resolves: the engine then
   * saves its pull cursor or drops the outbox entry. So they are made durable (checkpoint or
   * snapshot) before resolving. DuckDB-WASM's WAL on OPFS is not enough: a reload has been seen to
   * reopen the file at its last checkpoint, losing later commits the cursor had already passed.
   */
  const settled = async <T>(p: Promise<T>): Promise<T> => {
    if (persistence === 'memory') return written(p)
    const out = await p
    await flusher.now()
    return out
  }

  let closed = false
  const cache: LocalCache = {
    init: (tables) => inner.init(tables),
    getRows: (t, keys) => inner.getRows(t, keys),
    applyLocal: (writes) => written(inner.applyLocal(writes)),
    revertLocal: (previous) => written(inner.revertLocal(previous)),
    applyRemote: (changes, tables) => settled(inner.applyRemote(changes, tables)),
    markSynced: (t, rows, at) => settled(inner.markSynced(t, rows, at)),
    // A bulk load is one page of a first load: the caller makes the whole load durable with
    // `checkpoint()` after its last page, before it saves a cursor past it (the engine does). A
    // checkpoint per page (or a debounced one between pages) cost as much as the page's insert.
    // DuckDB still checkpoints by itself once its WAL passes 16 MB, so pages of 25,000 rows never
    // leave more than ~20 MB of WAL to replay.
    loadArrow: (t, ipc) => inner.loadArrow(t, ipc),
    query: (sql, params) => inner.query(sql, params),
    digestEntries: (t) => inner.digestEntries(t),
    checkpoint: () => flusher.now(),
    async close() {
      if (closed) return
      closed = true
      stopServing()
      await flusher.now().catch(() => undefined)
      flusher.cancel()
      await inner.close()
      await db.terminate()
      release?.()
    },
  }
  return { cache, persistence, reset, flush: () => flusher.now() }
}

/**
 * Removes the profile's OPFS cache file and its WAL when `error` (from opening it) says the file is
 * unreadable; resolves whether it did. They are removed, not renamed aside: nothing in them is lost
 * (pending writes are in the outbox until the cache durably holds their settled state, everything
 * else is pulled again), and a kept copy would hold on to quota the fresh hydration needs, with
 * nothing in Eddy ever reading it. The pull cursor is forgotten first: it describes rows the new
 * file lacks, and a crash between the two steps must not leave a cursor past an empty file.
 */
async function removeUnreadableCacheFile(name: string, error: unknown): Promise<boolean> {
  if (!isUnreadableCacheFile(error)) return false
  const message = error instanceof Error ? error.message : String(error)
  console.warn(`eddy: the cache file opfs://${name}.duckdb is unreadable; starting a fresh one (${message})`)
  try {
    await openClientMeta(name).setCursor(undefined)
    const root = await navigator.storage.getDirectory()
    // the WAL first: a crash in between leaves the unreadable file, removed again on the next open
    await removeOpfsFile(root, `${name}.duckdb.wal`)
    await removeOpfsFile(root, `${name}.duckdb`)
    return true
  } catch (e) {
    console.warn(`eddy: could not remove the unreadable cache file opfs://${name}.duckdb`, e)
    return false
  }
}

/**
 * Removes one OPFS file (absent is fine). The failed DuckDB's worker was just terminated; the
 * browser closes its access handles shortly after, and until then removing the file is refused.
 */
async function removeOpfsFile(root: FileSystemDirectoryHandle, file: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await root.removeEntry(file)
      return
    } catch (e) {
      const name = (e as { name?: unknown }).name
      if (name === 'NotFoundError') return
      if (
        attempt >= REMOVE_ATTEMPTS ||
        (name !== 'NoModificationAllowedError' && name !== 'InvalidModificationError')
      )
        throw e
      await new Promise((r) => setTimeout(r, REMOVE_RETRY_MS))
    }
  }
}

/** Runs `fn` after `delay` ms of quiet, or `maxDelay` ms after the first request; never two at once. */
function debounced(
  fn: () => Promise<void>,
  delay: number,
  maxDelay: number,
): { schedule(): void; now(): Promise<void>; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined
  let firstAt: number | undefined
  let running: Promise<void> = Promise.resolve()
  const fire = (): Promise<void> => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    firstAt = undefined
    running = running.then(fn, fn)
    return running
  }
  return {
    schedule() {
      const now = Date.now()
      firstAt ??= now
      if (timer !== undefined) clearTimeout(timer)
      const wait = Math.max(0, Math.min(delay, firstAt + maxDelay - now))
      timer = setTimeout(() => {
        // a failed background flush is retried by the next write or by close(); the outbox still holds the writes
        fire().catch(() => undefined)
      }, wait)
    },
    now: fire,
    cancel() {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
    },
  }
}
