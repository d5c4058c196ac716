import { type EdgeProcess, spawnEdge } from './edge-process.ts'

/**
 * Keeps one edge process running, as a process manager would: `kill()` is a deliberate SIGKILL and
 * restart; an exit nobody asked for is a crash, counted with its log, and also restarted. Every new
 * process's URL goes to `onUrl` (the fault proxy's target).
 */
export interface SupervisedEdge {
  readonly url: string
  /** Unplanned exits, with their logs: the suites expect none (each one fails the run). */
  readonly crashes: string[]
  /** SIGKILL now, then start again on the same store. */
  kill(): Promise<void>
  /** SIGTERM and no restart. */
  stop(): Promise<void>
}

export async function superviseEdge(
  store: Parameters<typeof spawnEdge>[0],
  onUrl: (url: string) => void,
): Promise<SupervisedEdge> {
  let current: EdgeProcess = await spawnEdge(store)
  let planned = false
  let stopped = false
  let restarting: Promise<void> = Promise.resolve()
  const crashes: string[] = []

  const watch = (p: EdgeProcess): void => {
    void p.exited.then((log) => {
      if (planned || stopped || p !== current) return
      crashes.push(log)
      restarting = restart()
    })
  }
  /** Like a process manager: keeps trying (the store itself may still be starting up). */
  const restart = async (): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        current = await spawnEdge(store)
        break
      } catch (e) {
        if (attempt >= 40) throw e
        await new Promise((r) => setTimeout(r, 250))
      }
    }
    watch(current)
    onUrl(current.url)
  }
  watch(current)

  return {
    get url() {
      return current.url
    },
    crashes,
    async kill() {
      await restarting
      planned = true
      await current.kill()
      planned = false
      restarting = restart()
      await restarting
    },
    async stop() {
      await restarting
      stopped = true
      await current.stop()
    },
  }
}
