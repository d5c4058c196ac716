/**
 * The pull cursor of one engine's cache. The persisted cursor belongs to the leader's cache;
 * another tab's cache starts from scratch in memory and only persists its cursor once it leads.
 */
export interface LeaderCursor {
  get(): Promise<string | undefined>
  set(cursor: string): Promise<void>
}

export interface LeaderCursorDeps {
  isLeader(): boolean
  /** The persisted cursor. */
  load(): Promise<string | undefined>
  save(cursor: string): Promise<void>
}

export function createLeaderCursor(d: LeaderCursorDeps): LeaderCursor {
  let cursorValue: string | undefined
  let cursorPulled = false
  return {
    async get() {
      if (d.isLeader() && !cursorPulled) cursorValue = await d.load()
      return cursorValue
    },
    async set(c) {
      cursorValue = c
      cursorPulled = true
      if (d.isLeader()) await d.save(c)
    },
  }
}
