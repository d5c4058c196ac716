import { createSerialQueue } from '../../shared/serial-queue.ts'
import type { LocalWrite } from './cache.ts'

export interface CacheQueueOptions {
  /** Local writes wait this long without a new one before their batch starts... */
  quietMs: number
  /** ... and at most this long after the first; any other operation starts them at once. */
  maxWaitMs: number
}

/**
 * The cache's operations, one at a time in call order, with local writes batched.
 *
 * Local writes waiting at the end of the queue form an open batch: a later `local` call joins it
 * (one transaction, one upsert per table) as long as nothing else was queued after it. The batch
 * starts after `quietMs` without a new write (at most `maxWaitMs` after its first), or at once
 * when any other operation is queued behind it: a read never waits for the quiet time, and a
 * stream of acknowledged writes costs a few cache transactions rather than one each, which would
 * compete with the outbox commits (CPU, disk) that the acknowledgements wait for.
 */
export interface CacheQueue {
  /** Runs `task` after everything queued before it; an open batch of local writes starts now. */
  run<T>(task: () => Promise<T>): Promise<T>
  /** Queues local writes (joining the open batch if any); `apply` runs the batch when it starts. */
  local(writes: readonly LocalWrite[], apply: (batch: readonly LocalWrite[]) => Promise<void>): Promise<void>
}

export function createCacheQueue(opts: CacheQueueOptions): CacheQueue {
  const serialQueue = createSerialQueue()
  let openBatch: { writes: LocalWrite[]; done: Promise<void>; go(): void; touch(): void } | undefined

  const run = <T>(task: () => Promise<T>): Promise<T> => {
    openBatch?.go()
    openBatch = undefined
    return serialQueue(task)
  }

  return {
    run,
    local(writes, apply) {
      if (openBatch !== undefined) {
        for (const w of writes) openBatch.writes.push(w)
        openBatch.touch()
        return openBatch.done
      }
      const batch: LocalWrite[] = [...writes]
      const firstAt = Date.now()
      let timer: ReturnType<typeof setTimeout> | undefined
      let go: () => void = () => {}
      const ready = new Promise<void>((resolve) => {
        go = () => {
          if (timer !== undefined) clearTimeout(timer)
          resolve()
        }
      })
      const touch = (): void => {
        if (timer !== undefined) clearTimeout(timer)
        timer = setTimeout(go, Math.max(0, Math.min(opts.quietMs, firstAt + opts.maxWaitMs - Date.now())))
      }
      touch()
      const done = run(async () => {
        await ready
        if (openBatch?.writes === batch) openBatch = undefined
        return apply(batch)
      })
      openBatch = { writes: batch, done, go: () => go(), touch }
      return done
    },
  }
}
