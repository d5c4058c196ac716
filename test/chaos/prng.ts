/**
 * A small seeded PRNG (mulberry32): every random choice of a chaos run comes from one of these, so a
 * run's seed (printed, and read back from `EDDY_CHAOS_SEED`) replays the same decisions.
 */
export interface Prng {
  /** A float in [0, 1). */
  next(): number
  /** An integer in [min, max]. */
  int(min: number, max: number): number
  pick<T>(items: readonly T[]): T
  /** True with probability p. */
  chance(p: number): boolean
  /** An independent stream derived from this seed and a label. */
  fork(label: number): Prng
}

export function createPrng(seed: number): Prng {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const prng: Prng = {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick<T>(items: readonly T[]): T {
      const item = items[Math.floor(next() * items.length)]
      if (item === undefined) throw new Error('pick from an empty list')
      return item
    },
    chance: (p) => next() < p,
    fork: (label) => createPrng((seed ^ Math.imul(label + 1, 0x9e3779b9)) >>> 0),
  }
  return prng
}

/** The run's seed: `EDDY_CHAOS_SEED` when set (to replay a failure), else a fresh one. */
export function chaosSeed(): number {
  const given = process.env.EDDY_CHAOS_SEED
  if (given !== undefined && given !== '') {
    const n = Number(given)
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`EDDY_CHAOS_SEED must be a non-negative integer: ${given}`)
    return n >>> 0
  }
  return Math.floor(Math.random() * 2 ** 32) >>> 0
}
