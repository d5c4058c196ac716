import type { ConflictRecord, SyncEvent } from '../../shared/protocol.ts'
import type { Row } from '../../shared/schema.ts'
import type { NewConflict, NewEvent } from './warehouse.ts'

/*
 * The bookkeeping tables' rows, both ways: what a write stores (values in column order) and what a
 * read answers (the wire form). Every adapter uses the same columns; only the timestamps' stored
 * form differs, so callers pass them already as ISO 8601.
 */

/** The columns of `_eddy_sync_events`, in the order `eventValues` gives an event's values. */
export const EVENT_COLUMNS =
  'client_id, received_at, mutations, applied, stale, duplicate, conflict, rejected, duration_ms, tenant'

/** An event's values in `EVENT_COLUMNS` order, as statement parameters. */
export function eventValues(e: NewEvent): Array<string | number | null> {
  return [
    e.clientId,
    e.receivedAt,
    e.mutations,
    e.applied,
    e.stale,
    e.duplicate,
    e.conflict,
    e.rejected,
    e.durationMs,
    e.tenant ?? null,
  ]
}

/** The columns of `_eddy_conflicts` a write gives, in the order `conflictValues` gives them. */
export const CONFLICT_COLUMNS = 'table_name, key_json, stored_json, incoming_json, hlc, client_id, tenant'

/** A conflict's values in `CONFLICT_COLUMNS` order, as statement parameters. */
export function conflictValues(c: NewConflict): Array<string | null> {
  return [
    c.table,
    JSON.stringify(c.key),
    jsonText(c.stored),
    jsonText(c.incoming),
    c.hlc,
    c.clientId,
    c.tenant ?? null,
  ]
}

function jsonText(row: Row | null): string | null {
  return row === null ? null : JSON.stringify(row)
}

/**
 * A conflict id from a request path as the number stored, or undefined when it cannot name a record
 * (ids are positive integers, well within 2^53).
 */
export function conflictIdOf(id: string): number | undefined {
  return /^[0-9]{1,15}$/.test(id) ? Number(id) : undefined
}

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
