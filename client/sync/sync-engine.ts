/**
 * client/sync/: the client's conversation with the edge. `sync-engine.ts` puts the parts
 * together: `push.ts` (the outbox to the edge, settling each batch), `pull.ts` (changes into the
 * cache, from the cursor), `arrow-first-load.ts` (a first load through the Arrow bulk pull),
 * `divergence.ts` (digest comparison), `transport.ts` (HTTP), `client-meta.ts` (the profile's
 * clientId, cursor and last stamp).
 */
import type { NewMutation, PushResult } from '../../shared/protocol.ts'
import type { Table } from '../../shared/schema.ts'
import { noteError } from '../engine/status.ts'
import type { SyncReport } from '../types.ts'
import { divergence } from './divergence.ts'
import { createPuller } from './pull.ts'
import { createPusher } from './push.ts'
import type { PushTally, SyncDeps } from './sync-deps.ts'

/** Backoff after failures: base doubling up to the cap, times a jitter in [0.5, 1). */
const BACKOFF_BASE_MS = 1000
const BACKOFF_MAX_MS = 60_000

/** Exponential backoff with jitter: base × 2^(failures−1), capped, times a factor in [0.5, 1). */
export function backoffDelay(failures: number, random: () => number): number {
  const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1))
  return Math.round(exp * (0.5 + random() / 2))
}

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
  const { push, pushDirect } = createPusher(d)
  const pull = createPuller(d)

  return {
    push,
    pull,

    async sync() {
      const started = d.now()
      try {
        const tally = await push('all')
        const pulled = await pull()
        d.status.update({ lastSyncAt: new Date(d.now()).toISOString(), lastError: null })
        return { ...tally, pulled, durationMs: d.now() - started }
      } catch (e) {
        noteError(d.status, e)
        throw e
      }
    },

    pushDirect,
    divergence: (table) => divergence(d, table),
    backoffMs: (failures) => backoffDelay(failures, d.random),
  }
}
