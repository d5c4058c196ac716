/** Order statistics of a series of timings (ms): what every bench row reports. */
export interface Summary {
  readonly n: number
  readonly median: number
  readonly p90: number
  readonly p99: number
  readonly min: number
  readonly max: number
}

/** Nearest-rank percentile of an ascending list (`q` in [0, 1]). */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank] ?? Number.NaN
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b)
  return {
    n: s.length,
    median:
      s.length % 2 === 1 ? percentile(s, 0.5) : ((s[s.length / 2 - 1] ?? 0) + (s[s.length / 2] ?? 0)) / 2,
    p90: percentile(s, 0.9),
    p99: percentile(s, 0.99),
    min: s[0] ?? Number.NaN,
    max: s.at(-1) ?? Number.NaN,
  }
}

/** Rounds for the JSON line and the table: 3 significant decimals are more than the noise allows. */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x
  const f = 10 ** digits
  return Math.round(x * f) / f
}
