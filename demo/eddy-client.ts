import type { ChangeEvent, RejectedWrite, Status, SyncReport } from '../client/types.ts'
import type { Row } from '../shared/schema.ts'

export type { ChangeEvent, RejectedWrite, Status, SyncReport }

/**
 * The part of the client API (DESIGN.md "The client API" plus the engine's extras) the demo uses.
 * `createEddy`'s instance satisfies it structurally; the demo's components take this, not the
 * concrete class, so each one states exactly what it needs.
 */
export interface DemoEddy {
  /** This browser profile's client id (shared by its tabs), as the edge's audit trail names it. */
  readonly clientId: string
  put(table: string, row: Row): Promise<unknown>
  query(sql: string, params?: unknown[]): Promise<Row[]>
  sync(): Promise<SyncReport>
  status(): Status
  on(event: 'status', listener: (s: Status) => void): () => void
  on(event: 'change', listener: (e: ChangeEvent) => void): () => void
  subscribe(sql: string, params: unknown[], cb: (rows: Row[]) => void): () => void
  divergence(table: string): Promise<{ diverged: number }>
  rejected(): Promise<RejectedWrite[]>
  clearRejected(): Promise<void>
  setOnline(online: boolean): void
}

declare global {
  interface Window {
    /** The demo's client, for devtools and tests. */
    eddy?: DemoEddy
  }
}
