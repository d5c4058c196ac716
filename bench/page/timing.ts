/** Times `n` sequential runs of `fn(i)` (ms each). */
export async function timeEach(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await fn(i)
    out.push(performance.now() - t0)
  }
  return out
}

/** Times one run of `fn` (ms) and returns its result too. */
export async function timeOnce<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now()
  const value = await fn()
  return { ms: performance.now() - t0, value }
}

/** The GROUP BY answer in one comparable form: status -> [count, total cents]. */
export type GroupAnswer = Record<string, [number, number]>

export function cents(amount: unknown): number {
  return Math.round(Number(amount) * 100)
}
