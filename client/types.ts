import type { Row } from '../shared/schema.ts'

/**
 * The client's public value types: what `createEddy`'s instance hands the app, and what the
 * engine's parts (outbox, sync, status) pass between them. They live apart from the modules that
 * produce them so those modules can share them without importing each other.
 */

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
  error: { code: string; message: string; field?: string | undefined }
}

export interface TransactionWriter {
  put(table: string, row: Row): void
  delete(table: string, key: Row): void
}

export type ChangeEvent = { table: string; source: 'local' | 'remote' }
