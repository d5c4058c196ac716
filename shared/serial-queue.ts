/**
 * Runs async tasks one at a time, in call order: each starts once the one before has settled.
 * A task that fails rejects its own caller only; the queue goes on with the next.
 */
export type SerialQueue = <T>(task: () => Promise<T>) => Promise<T>

export function createSerialQueue(): SerialQueue {
  let tail: Promise<unknown> = Promise.resolve()
  return <T>(task: () => Promise<T>): Promise<T> => {
    const run = tail.then(task, task)
    tail = run.catch(() => undefined)
    return run
  }
}
