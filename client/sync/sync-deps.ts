import type { Hlc } from '../../shared/hlc.ts'
import type { Change } from '../../shared/protocol.ts'
import type { Row, Schema } from '../../shared/schema.ts'
import type { LocalCache } from '../cache/cache.ts'
import type { StatusStore } from '../engine/status.ts'
import type { Outbox } from '../outbox/outbox.ts'
import type { Mutex } from '../tabs/leader.ts'
import type { SyncReport } from '../types.ts'
import type { ClientMeta } from './client-meta.ts'
import type { Transport } from './transport.ts'

/** What the sync engine's parts (push, pull, first load, divergence) are given by the engine. */
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

/** What pushes did: a sync report's counts before the pull. */
export type PushTally = Omit<SyncReport, 'pulled' | 'durationMs'>
