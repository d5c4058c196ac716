import type { ConflictRecord, SyncEvent } from '../../shared/protocol.ts'
import type { Row } from '../../shared/schema.ts'

/*
 * The bookkeeping tables' rows in their wire form. Every adapter selects the same columns; only the
 * timestamps' stored form differs, so callers pass them already as ISO 8601.
 */

/** One `_eddy_sync_events` row as an audit event. */
export function syncEventFromRow(r: Record<string, unknown>, receivedAt: string): SyncEvent {
  return {
    id: Number(r.id),
    clientId: String(r.client_id),
    receivedAt,
    mutations: Number(r.mutations),
    applied: Number(r.applied),
    stale: Number(r.stale),
    duplicate: Number(r.duplicate),
    conflict: Number(r.conflict),
    rejected: Number(r.rejected),
    durationMs: Number(r.duration_ms),
  }
}

function jsonRow(text: unknown): Row | null {
  return text === null || text === undefined ? null : (JSON.parse(String(text)) as Row)
}

/** One `_eddy_conflicts` row as a conflict record. */
export function conflictFromRow(r: Record<string, unknown>, detectedAt: string): ConflictRecord {
  return {
    id: Number(r.id),
    table: String(r.table_name),
    key: JSON.parse(String(r.key_json)) as Row,
    stored: jsonRow(r.stored_json),
    incoming: jsonRow(r.incoming_json),
    hlc: String(r.hlc),
    detectedAt,
  }
}

/** The `tenant` column of a bookkeeping row: the pushing caller's tenant claim, if it had one. */
export function pushedByOf(r: Record<string, unknown>): string | undefined {
  return r.tenant === null || r.tenant === undefined ? undefined : String(r.tenant)
}

/** One `_eddy_clients` row (or none, for a client never seen): its lastSeq and owner. */
export function clientFromRow(r: Record<string, unknown> | null | undefined): {
  lastSeq: number
  owner: string | undefined
} {
  if (r === null || r === undefined) return { lastSeq: 0, owner: undefined }
  return { lastSeq: Number(r.last_seq), owner: typeof r.owner === 'string' ? r.owner : undefined }
}
