/**
 * client/tabs/: how the tabs of one browser profile share one outbox and one warehouse. leader.ts
 * (below); tab-follow.ts (how an engine follows the others' writes and syncs); leader-cursor.ts
 * (whose cache the persisted pull cursor describes); cursor-owner.ts (a cursor persisted by a tab
 * with a memory cache is not the cache file's).
 *
 * Cross-tab coordination for one browser profile: a leader (the tab that runs the background sync
 * loop), a short exclusive lock around every push, and a broadcast channel. In the browser these
 * are `navigator.locks` and `BroadcastChannel`; where `navigator.locks` is missing (Node, old
 * browsers) an in-process lock manager stands in, so two engines in one process still elect one
 * leader and never push at the same time.
 */

type LockCallback<T> = () => Promise<T>

interface LockBackend {
  /** Runs `fn` holding the named lock; `signal` abandons a request that has not been granted yet. */
  request<T>(name: string, fn: LockCallback<T>, signal?: AbortSignal): Promise<T | undefined>
}

function webLocks(): LockBackend | undefined {
  const nav = (globalThis as { navigator?: { locks?: LockManager } }).navigator
  const locks = nav?.locks
  if (locks === undefined) return undefined
  return {
    async request(name, fn, signal) {
      try {
        return await locks.request(name, signal === undefined ? {} : { signal }, fn)
      } catch (e) {
        if (signal?.aborted === true) return undefined
        throw e
      }
    },
  }
}

/** FIFO locks within one JavaScript realm. */
function inProcessLocks(): LockBackend {
  const tails = new Map<string, Promise<void>>()
  return {
    async request(name, fn, signal) {
      const before = tails.get(name) ?? Promise.resolve()
      let release = (): void => {}
      const mine = new Promise<void>((r) => {
        release = r
      })
      const tail = before.then(() => mine)
      tails.set(name, tail)
      try {
        await before
        if (signal?.aborted === true) return undefined
        return await fn()
      } finally {
        release()
        if (tails.get(name) === tail) tails.delete(name)
      }
    },
  }
}

const fallback = inProcessLocks()
const backend = (): LockBackend => webLocks() ?? fallback

export interface Mutex {
  run<T>(fn: () => Promise<T>): Promise<T>
}

/** An exclusive lock shared by every engine of the profile (all tabs). */
export function createMutex(name: string): Mutex {
  return {
    async run(fn) {
      let out: { v: Awaited<ReturnType<typeof fn>> } | undefined
      await backend().request(name, async () => {
        out = { v: await fn() }
      })
      if (out === undefined) throw new Error(`lock ${name} was not granted`)
      return out.v
    },
  }
}

export interface Leadership {
  isLeader(): boolean
  onChange(listener: (leader: boolean) => void): () => void
  /** Gives up leadership (or the place in the queue for it). */
  close(): void
}

/** Waits for the named lock and holds it until `close()`: exactly one engine per profile leads. */
export function electLeader(name: string): Leadership {
  let leader = false
  let closed = false
  let resign = (): void => {}
  const abort = new AbortController()
  const listeners = new Set<(leader: boolean) => void>()
  const set = (v: boolean): void => {
    if (leader === v) return
    leader = v
    for (const l of [...listeners]) l(v)
  }
  void backend()
    .request(
      name,
      () =>
        new Promise<void>((resolve) => {
          if (closed) {
            resolve()
            return
          }
          resign = resolve
          set(true)
        }),
      abort.signal,
    )
    // Released, abandoned or refused: either way this engine does not lead.
    .then(
      () => set(false),
      () => set(false),
    )
  return {
    isLeader: () => leader,
    onChange(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    close() {
      closed = true
      abort.abort()
      resign()
      set(false)
    },
  }
}

export type ChannelMessage =
  /**
   * A tab wrote locally: the leader should push soon, the others refresh their counts. `from` is
   * the writing engine's `instanceId`, so the tab that wrote can ignore its own announcement.
   */
  | { type: 'write'; tables: string[]; from?: string }
  /** The leader pushed or pulled: other tabs pull too and refresh their counts. */
  | { type: 'synced'; tables: string[] }
  /** The leader settled a batch: other tabs mark the same rows synced and apply the restored rows. */
  | {
      type: 'settled'
      synced: Array<{ table: string; rows: Array<{ key: Record<string, unknown>; hlc: string }> }>
      restored: Array<{
        table: string
        key: Record<string, unknown>
        row: Record<string, unknown> | null
        hlc: string
      }>
    }

export interface Channel {
  post(msg: ChannelMessage): void
  on(listener: (msg: ChannelMessage) => void): () => void
  close(): void
}

/** BroadcastChannel where it exists (browsers, Node ≥ 18); otherwise an in-process bus. */
export function openChannel(name: string): Channel {
  const listeners = new Set<(msg: ChannelMessage) => void>()
  const deliver = (msg: ChannelMessage): void => {
    for (const l of [...listeners]) l(msg)
  }
  if (typeof BroadcastChannel === 'function') {
    const bc = new BroadcastChannel(name)
    bc.onmessage = (ev: MessageEvent<ChannelMessage>) => deliver(ev.data)
    return {
      post: (msg) => bc.postMessage(msg),
      on(listener) {
        listeners.add(listener)
        return () => listeners.delete(listener)
      },
      close: () => bc.close(),
    }
  }
  const peers = buses.get(name) ?? new Set<(msg: ChannelMessage) => void>()
  buses.set(name, peers)
  peers.add(deliver)
  return {
    post(msg) {
      for (const p of peers) if (p !== deliver) p(msg)
    },
    on(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    close() {
      peers.delete(deliver)
    },
  }
}

const buses = new Map<string, Set<(msg: ChannelMessage) => void>>()
