import { EddyError } from '../../shared/errors.ts'
import type { NewMutation } from '../../shared/protocol.ts'
import { createSerialQueue } from '../../shared/serial-queue.ts'

/**
 * Refuses a large write that would not fit in the origin's storage quota, before anything is written.
 *
 * The outbox commit is the acknowledgement, and the cache write follows it. Chromium compresses
 * IndexedDB values but not OPFS files, so the outbox may take a write the DuckDB-WASM file cache
 * then cannot: its commit fails on OPFS, and a DuckDB commit that failed on a full OPFS has been
 * seen to lose other, earlier rows of the session (docs/reliability.md, "Browser faults"). Web
 * content cannot read the real quota (Chromium's `navigator.storage.estimate()` reports usage +
 * 10 GiB whatever the limit), so the check asks the quota system itself: in a worker, it grows a
 * scratch OPFS file to the size the write needs (a sparse `truncate`: nothing is written, the
 * quota is checked) and removes it. About `factor` times the write's approximate size must fit
 * (the outbox record, the cache's WAL, the checkpointed table). Writes under `minBytes` are not
 * checked (most writes: no extra cost); they fail in the outbox commit itself when storage is full.
 * Checks run one at a time, in call order, so outbox commits keep the order of the calls.
 */
export interface SpaceGuard {
  /** Resolves when `muts` may be written; rejects with `EddyError('quota')` when they do not fit. */
  admit(muts: readonly NewMutation[]): Promise<void>
}

/** True when `bytes` more fit in the origin's quota now. */
export type SpaceProbe = (bytes: number) => Promise<boolean>

/** Room asked for per byte of a write: the outbox record, the cache's WAL, the checkpointed table. */
const SPACE_FACTOR = 2
/** Writes smaller than this are not checked (most writes); a full storage fails their outbox commit. */
const MIN_CHECKED_BYTES = 256 * 1024
/** A mutation's fixed fields (table, op, seq, record framing), guessed generously. */
const MUTATION_OVERHEAD_BYTES = 64

/** A cheap upper-bound guess of a value's stored size in bytes (UTF-16 text counts double). */
function sizeOf(v: unknown): number {
  if (typeof v === 'string') return 2 * v.length + 8
  if (v === null || typeof v !== 'object') return 8
  let n = 8
  for (const [k, x] of Object.entries(v)) n += 2 * k.length + sizeOf(x)
  return n
}

export function approxBytes(muts: readonly NewMutation[]): number {
  let n = 0
  for (const m of muts) n += MUTATION_OVERHEAD_BYTES + 2 * m.hlc.length + sizeOf(m.key) + sizeOf(m.values)
  return n
}

interface SyncHandle {
  truncate(size: number): void
  close(): void
}

/** The OPFS probe, where this scope can make sync access handles (dedicated workers); else none. */
export function opfsProbe(): SpaceProbe | undefined {
  const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage
  const fileProto = (globalThis as { FileSystemFileHandle?: { prototype: object } }).FileSystemFileHandle
    ?.prototype
  if (typeof storage?.getDirectory !== 'function' || fileProto === undefined) return undefined
  if (!('createSyncAccessHandle' in fileProto)) return undefined
  return async (bytes) => {
    const root = await storage.getDirectory()
    const name = `eddy-space-probe-${crypto.randomUUID()}`
    const file = await root.getFileHandle(name, { create: true })
    try {
      const handle = await (
        file as unknown as { createSyncAccessHandle(): Promise<SyncHandle> }
      ).createSyncAccessHandle()
      try {
        handle.truncate(bytes)
        handle.truncate(0)
        return true
      } catch (e) {
        if ((e as { name?: unknown }).name === 'QuotaExceededError') return false
        throw e
      } finally {
        handle.close()
      }
    } finally {
      await root.removeEntry(name).catch(() => undefined)
    }
  }
}

export function createSpaceGuard(
  probe: SpaceProbe | undefined = opfsProbe(),
  opts: { factor?: number; minBytes?: number } = {},
): SpaceGuard {
  const factor = opts.factor ?? SPACE_FACTOR
  const minBytes = opts.minBytes ?? MIN_CHECKED_BYTES
  // one probe at a time: two large writes probing at once would each see the other's space as free
  const queue = createSerialQueue()
  const check = async (muts: readonly NewMutation[]): Promise<void> => {
    if (probe === undefined) return
    const bytes = approxBytes(muts)
    if (bytes < minBytes) return
    // a probe that cannot run (no OPFS here after all) leaves the decision to the outbox commit
    const fits = await probe(factor * bytes).catch(() => true)
    if (!fits)
      throw new EddyError(
        'quota',
        `storage quota exceeded: the write needs about ${((factor * bytes) / 1e6).toFixed(1)} MB more; nothing was saved`,
      )
  }
  return {
    admit: (muts) => queue(() => check(muts)),
  }
}
