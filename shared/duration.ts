import { EddyError } from './errors.ts'

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Parses a flAPI-style duration (`500ms`, `30s`, `5m`, `1h`, `7d`, or a number of milliseconds). */
export function parseDuration(input: string | number, path = 'duration'): number {
  if (typeof input === 'number') {
    if (Number.isFinite(input) && input >= 0) return input
    throw new EddyError('invalid_schema', `${path}: must be a non-negative number of milliseconds`)
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(input)
  const unit = m?.[2] === undefined ? undefined : UNITS[m[2]]
  if (!m || unit === undefined) {
    throw new EddyError('invalid_schema', `${path}: not a duration (use e.g. 500ms, 30s, 5m, 1h, 7d)`)
  }
  return Math.round(Number(m[1]) * unit)
}
