import type { Schema } from '../../shared/schema.ts'
import type { SyncEngine } from '../sync/sync-engine.ts'
import { retryable } from '../sync/transport.ts'
import type { StatusStore } from './status.ts'

/** How often the background loop looks at its schedules (hybrid pushes, refresh pulls, retries). */
const TICK_MS = 1000
/** Pull interval when no table sets `refresh`. */
const DEFAULT_PULL_MS = 30_000
/**
 * A refusal (4xx) waits as long as this many more failures would: retrying at once would repeat
 * the same refusal.
 */
const REFUSAL_EXTRA_FAILURES = 3

export interface SchedulerDeps {
  schema: Schema
  sync: Pick<SyncEngine, 'push' | 'pull' | 'backoffMs'>
  status: StatusStore
  now: () => number
  /** Background passes at all (off: only explicit syncs). */
  autoSync: boolean
  isClosed(): boolean
  online(): boolean
  isLeader(): boolean
  /** Tells the other tabs that this one pushed or pulled something. */
  announceSynced(): void
  noteError(e: unknown): void
}

/**
 * The background loop of the leading engine: it pushes soon after every write (bursts coalesce
 * into one pass), pushes hybrid tables on their schedules, pulls every `refresh` (the shortest of
 * the schema's) and after every push, and after a failure waits a growing, jittered delay.
 */
export interface Scheduler {
  /** Schedules a pass soon, unless one is scheduled, the loop may not run, or a retry is not due. */
  kick(): void
  /** The first pass, once the leader election has most likely settled. */
  start(): void
  /** Hybrid schedules restart from now (an explicit sync is about to push every table). */
  restartSchedules(): void
  /** A sync succeeded outside the loop: no failure to retry. */
  clearFailures(): void
  /** The network came back: retry at once. */
  resume(): void
  /** The pass under way, if any. */
  running(): Promise<void> | undefined
  /** Stops the timers (the engine is closing); a pass under way finishes. */
  stop(): void
}

export function createScheduler(d: SchedulerDeps): Scheduler {
  const { schema, sync, status, now } = d
  const hybridTables = [...schema.tables.values()].filter((t) => t.sync === 'hybrid')
  const hybridDue = new Map(hybridTables.map((t) => [t.name, now() + (t.scheduleMs ?? 0)]))
  const refreshes = [...schema.tables.values()].flatMap((t) =>
    t.refreshMs === undefined ? [] : [t.refreshMs],
  )
  const pullEveryMs = refreshes.length > 0 ? Math.min(...refreshes) : DEFAULT_PULL_MS
  let nextPullAt = now()
  let failures = 0
  let retryAt = 0
  let loop: Promise<void> | undefined
  let again = false
  let kickTimer: ReturnType<typeof setTimeout> | undefined
  let starter: ReturnType<typeof setTimeout> | undefined

  const canRun = (): boolean => d.autoSync && !d.isClosed() && d.online() && d.isLeader()

  async function runLoop(): Promise<void> {
    do {
      again = false
      const t = now()
      const due = new Set<string>()
      for (const [name, at] of hybridDue) {
        if (t >= at) {
          due.add(name)
          hybridDue.set(name, t + (schema.table(name).scheduleMs ?? 0))
        }
      }
      try {
        const tally = await sync.push(due.size > 0 ? due : 'none')
        let pulled = 0
        const pulledNow = tally.pushed > 0 || t >= nextPullAt
        if (pulledNow) {
          nextPullAt = t + pullEveryMs
          pulled = await sync.pull()
        }
        failures = 0
        retryAt = 0
        if (tally.pushed > 0 || pulledNow)
          status.update({ lastSyncAt: new Date(now()).toISOString(), lastError: null })
        if (tally.pushed > 0 || pulled > 0) d.announceSynced()
      } catch (e) {
        d.noteError(e)
        failures += 1
        retryAt = now() + sync.backoffMs(retryable(e) ? failures : failures + REFUSAL_EXTRA_FAILURES)
        return
      }
    } while (again && canRun())
  }

  function run(): void {
    if (!canRun()) return
    if (loop !== undefined) {
      again = true
      return
    }
    loop = runLoop().finally(() => {
      loop = undefined
    })
  }

  function kick(): void {
    if (!canRun() || now() < retryAt || kickTimer !== undefined) return
    kickTimer = setTimeout(() => {
      kickTimer = undefined
      run()
    }, 0)
  }

  const ticker = d.autoSync
    ? setInterval(() => {
        if (!canRun() || now() < retryAt) return
        const t = now()
        const hybridDueNow = [...hybridDue.values()].some((at) => t >= at)
        if (hybridDueNow || t >= nextPullAt || failures > 0) run()
      }, TICK_MS)
    : undefined

  return {
    kick,
    start() {
      if (!d.autoSync) return
      // A tab that does not lead still fills its own cache once; later it pulls when the leader
      // reports new data.
      starter = setTimeout(() => {
        if (d.isLeader()) kick()
        else if (d.online() && !d.isClosed()) sync.pull().catch(d.noteError)
      }, 0)
    },
    restartSchedules() {
      for (const t of hybridTables) hybridDue.set(t.name, now() + (t.scheduleMs ?? 0))
    },
    clearFailures() {
      failures = 0
      retryAt = 0
    },
    resume() {
      retryAt = 0
      kick()
    },
    running: () => loop,
    stop() {
      if (ticker !== undefined) clearInterval(ticker)
      if (kickTimer !== undefined) clearTimeout(kickTimer)
      if (starter !== undefined) clearTimeout(starter)
    },
  }
}
