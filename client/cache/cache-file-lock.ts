/**
 * Which worker of a profile owns its OPFS cache file (OPFS allows one open handle per file): the
 * one holding the Web Lock `<name>:cache-file`, held until its cache closes and released by the
 * browser when the worker dies.
 *
 * A held lock does not always mean another live tab. When a tab reloads, its old worker may still
 * hold the lock for a moment while the new page's worker starts: taking that for another tab would
 * open the reloaded page on an empty in-memory cache (and, offline, with no rows at all). So the
 * owner answers pings on the BroadcastChannel `<name>:cache-owner` for as long as it holds the
 * lock, and a worker that finds the lock held waits for whichever comes first: the lock (the
 * holder was going away) or an answer (a live owner: it becomes a secondary tab). With neither
 * within `waitMs`, it gives up the wait and is a secondary tab, as before.
 */

type OwnerMessage = { type: 'ping'; id: string } | { type: 'pong'; id: string }

const channelName = (name: string): string => `${name}:cache-owner`

/** Lock requests answered while the lock is held: what `claimCacheFile` needs of `navigator.locks`. */
type Locks = Pick<LockManager, 'request'>

/** How long a claim waits for an owner that answers no ping before it gives up on the file. */
const OWNER_WAIT_MS = 5000
/** How often the ping repeats while a claim waits. */
const PING_EVERY_MS = 100

/**
 * Takes the cache file's lock, waiting (up to `waitMs`) only while its holder answers no ping.
 * Resolves a release function for the owner, or undefined when a live owner keeps it. Without the
 * Web Locks API every worker owns its file (a second opener then fails in DuckDB).
 */
export async function claimCacheFile(
  name: string,
  waitMs = OWNER_WAIT_MS,
): Promise<(() => void) | undefined> {
  const locks = (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks
  if (locks === undefined) return () => {}
  const lockName = `${name}:cache-file`
  const now = await hold(locks, lockName, { ifAvailable: true })
  if (now !== undefined) return answerPings(name, now)

  const abort = new AbortController()
  let gaveUp = false
  const queued = hold(locks, lockName, { signal: abort.signal }).then(
    (release) => {
      // granted after this worker settled for being a secondary tab: hand it straight back
      if (gaveUp) {
        release?.()
        return undefined
      }
      return release
    },
    () => undefined, // aborted
  )
  const stopPinging = new AbortController()
  const owner = ownerAnswers(name, waitMs, stopPinging.signal)
  const first = await Promise.race([
    queued.then((release) => ({ release })),
    owner.then((alive) => ({ alive })),
  ])
  stopPinging.abort()
  if ('release' in first && first.release !== undefined) return answerPings(name, first.release)
  gaveUp = true
  abort.abort()
  // a grant that came in just before giving up is handed back too
  void queued.then((release) => release?.())
  return undefined
}

/** Requests the lock and resolves, once granted, a function that releases it (undefined: not available). */
function hold(
  locks: Locks,
  lockName: string,
  options: { ifAvailable: true } | { signal: AbortSignal },
): Promise<(() => void) | undefined> {
  return new Promise((granted, failed) => {
    locks
      .request(lockName, options, (lock) => {
        if (lock === null) {
          granted(undefined)
          return
        }
        return new Promise<void>((release) => granted(release))
      })
      .catch(failed)
  })
}

/** The owner's side: answers pings until the returned release (which also releases the lock) runs. */
function answerPings(name: string, release: () => void): () => void {
  if (typeof BroadcastChannel !== 'function') return release
  const channel = new BroadcastChannel(channelName(name))
  channel.onmessage = (ev: MessageEvent<OwnerMessage>) => {
    if (ev.data.type === 'ping') channel.postMessage({ type: 'pong', id: ev.data.id } satisfies OwnerMessage)
  }
  return () => {
    channel.close()
    release()
  }
}

/** Whether a live owner answers a ping within `waitMs` (false at the deadline or once `stop` aborts). */
async function ownerAnswers(name: string, waitMs: number, stop: AbortSignal): Promise<boolean> {
  if (typeof BroadcastChannel !== 'function')
    return new Promise((r) => {
      setTimeout(() => r(false), waitMs)
      stop.addEventListener('abort', () => r(false))
    })
  const channel = new BroadcastChannel(channelName(name))
  const id = crypto.randomUUID()
  let timer: ReturnType<typeof setInterval> | undefined
  let deadline: ReturnType<typeof setTimeout> | undefined
  try {
    return await new Promise<boolean>((resolve) => {
      channel.onmessage = (ev: MessageEvent<OwnerMessage>) => {
        if (ev.data.type === 'pong' && ev.data.id === id) resolve(true)
      }
      const ping: OwnerMessage = { type: 'ping', id }
      channel.postMessage(ping)
      // an owner that has only just taken the lock answers a repeated ping
      timer = setInterval(() => channel.postMessage(ping), PING_EVERY_MS)
      deadline = setTimeout(() => resolve(false), waitMs)
      stop.addEventListener('abort', () => resolve(false))
    })
  } finally {
    clearInterval(timer)
    clearTimeout(deadline)
    channel.close()
  }
}
