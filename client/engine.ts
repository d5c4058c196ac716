import { EddyError } from '../shared/errors.ts'
import type { Row, Schema } from '../shared/schema.ts'
import type { LocalCache } from './cache.ts'

/**
 * The environment-agnostic core of the client: write path, outbox, sync loop, status. The browser
 * worker (`client/db.worker.ts`) runs it over DuckDB-WASM; Node tests run it over a Map-based cache
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
}

export interface SyncReport {
  pushed: number
  applied: number
  stale: number
  duplicate: number
  conflict: number
  rejected: number
  pulled: number
  durationMs: number
}

export interface Status {
  online: boolean
  pending: number
  syncing: boolean
  progress?: { done: number; total: number }
  lastSyncAt: string | null
  lastError: { code: string; message: string } | null
  rejected: number
  conflicts: number
  leader: boolean
}

/** A write the edge refused; kept until the app clears the list, never resent. */
export interface RejectedWrite {
  seq: number
  table: string
  op: 'upsert' | 'delete'
  key: Row
  values?: Row
  error: { code: string; message: string; field?: string }
}

export interface TransactionWriter {
  put(table: string, row: Row): void
  delete(table: string, key: Row): void
}

export type ChangeEvent = { table: string; source: 'local' | 'remote' }

export interface Engine {
  readonly clientId: string
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

export async function createEngine(_opts: EngineOptions): Promise<Engine> {
  throw new EddyError('internal', 'not implemented yet')
}
