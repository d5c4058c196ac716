import type { SyncEvent } from '../shared/protocol.ts'

/**
 * One `_eddy_sync_events` row as the wire's audit event. Every adapter selects the same columns;
 * only the timestamp's stored form differs, so the caller passes `receivedAt` already as ISO 8601.
 */
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
