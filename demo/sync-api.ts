import * as v from 'valibot'
import { EddyError, isErrorCode } from '../shared/errors.ts'
import {
  type ConflictRecord,
  conflictsResponse,
  errorBody,
  eventsResponse,
  type ResolveBody,
  type SyncEvent,
} from '../shared/protocol.ts'

/**
 * The admin routes of PROTOCOL.md the client library does not wrap: the audit trail and the
 * manual-conflict queue. Answers are checked against the shared wire schemas; an error body
 * becomes an `EddyError` with its code.
 */
export interface SyncApi {
  events(limit: number): Promise<SyncEvent[]>
  conflicts(): Promise<ConflictRecord[]>
  resolve(id: ConflictRecord['id'], body: ResolveBody): Promise<void>
}

export function createSyncApi(base: string, fetchFn: typeof fetch = fetch.bind(globalThis)): SyncApi {
  async function call(path: string, init?: RequestInit): Promise<unknown> {
    let res: Response
    try {
      res = await fetchFn(`${base}${path}`, { ...init, cache: 'no-store' })
    } catch (cause) {
      throw new EddyError('offline', `${base}${path} is unreachable`, { cause })
    }
    const body: unknown = await res.json().catch(() => null)
    if (!res.ok) {
      const err = v.safeParse(errorBody, body)
      if (err.success) {
        const code = isErrorCode(err.output.error.code) ? err.output.error.code : 'internal'
        throw new EddyError(code, err.output.error.message, { status: res.status })
      }
      throw new EddyError('protocol', `${path} answered ${res.status}`, { status: res.status })
    }
    return body
  }
  return {
    async events(limit) {
      return v.parse(eventsResponse, await call(`/events?limit=${limit}`)).events
    },
    async conflicts() {
      return v.parse(conflictsResponse, await call('/conflicts')).conflicts
    },
    async resolve(id, body) {
      await call(`/conflicts/${encodeURIComponent(String(id))}/resolve`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    },
  }
}
