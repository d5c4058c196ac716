import type { Eddy } from '../client/index.ts'
import type { ChangeEvent, RejectedWrite, Status, SyncReport } from '../client/types.ts'

export type { ChangeEvent, RejectedWrite, Status, SyncReport }

/**
 * The part of the client API (DESIGN.md "The client API" plus the engine's extras) the demo uses:
 * `createEddy`'s instance, narrowed to what the demo calls, so the demo's components state exactly
 * what they need.
 */
export type DemoEddy = Pick<
  Eddy,
  | 'clientId'
  | 'put'
  | 'query'
  | 'sync'
  | 'status'
  | 'on'
  | 'subscribe'
  | 'divergence'
  | 'rejected'
  | 'clearRejected'
  | 'setOnline'
>

declare global {
  interface Window {
    /** The demo's client, for devtools and tests. */
    eddy?: DemoEddy
  }
}
