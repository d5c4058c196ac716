import { toEddyError } from '../../shared/errors.ts'
import type { Status } from '../types.ts'

/**
 * The engine's observable status. `update` merges a patch and notifies listeners only when
 * something changed, so a busy sync loop does not flood the page with identical events.
 */
export interface StatusStore {
  get(): Status
  update(patch: Partial<Status>): void
  /** Drops `progress` (a sync finished). */
  clearProgress(): void
  on(listener: (s: Status) => void): () => void
}

export function initialStatus(online: boolean): Status {
  return {
    online,
    pending: 0,
    syncing: false,
    lastSyncAt: null,
    lastError: null,
    rejected: 0,
    conflicts: 0,
    leader: false,
  }
}

function same(a: Status, b: Status): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

export function createStatusStore(initial: Status): StatusStore {
  let current: Status = initial
  const listeners = new Set<(s: Status) => void>()
  const set = (next: Status): void => {
    if (same(current, next)) return
    current = next
    for (const l of [...listeners]) l(current)
  }
  return {
    get: () => current,
    update(patch) {
      set({ ...current, ...patch })
    },
    clearProgress() {
      if (current.progress === undefined) return
      const { progress: _drop, ...rest } = current
      set(rest)
    },
    on(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}

/** Shows a failure as the status's `lastError` (as an EddyError's code and message). */
export function noteError(status: StatusStore, e: unknown): void {
  const err = toEddyError(e)
  status.update({ lastError: { code: err.code, message: err.message } })
}
