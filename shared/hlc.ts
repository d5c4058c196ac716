import { EddyError } from './errors.ts'

/**
 * Hybrid logical clock stamps, formatted so that plain string comparison orders them:
 * `<wall ms, 15 digits>:<counter, 5 base-36 digits>:<nodeId>`.
 */
export interface Stamp {
  readonly wall: number
  readonly counter: number
  readonly node: string
}

export const HLC_PATTERN = /^(\d{15}):([0-9a-z]{5}):([A-Za-z0-9_-]{1,64})$/
export const MAX_COUNTER = 36 ** 5 - 1
const MAX_WALL = 10 ** 15 - 1
/** A stamp's wall time is its first 15 characters, zero padded, so text order is time order. */
export const HLC_WALL_DIGITS = 15
const COLON = 0x3a
const ZERO = 0x30

export function formatHlc(s: Stamp): string {
  if (!Number.isSafeInteger(s.wall) || s.wall < 0 || s.wall > MAX_WALL)
    throw new EddyError('invalid_value', `hlc wall time out of range: ${s.wall}`)
  if (!Number.isInteger(s.counter) || s.counter < 0 || s.counter > MAX_COUNTER)
    throw new EddyError('invalid_value', `hlc counter out of range: ${s.counter}`)
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(s.node))
    throw new EddyError('invalid_value', `hlc node id is not valid: ${s.node}`)
  return `${String(s.wall).padStart(HLC_WALL_DIGITS, '0')}:${s.counter.toString(36).padStart(5, '0')}:${s.node}`
}

export function parseHlc(text: string): Stamp {
  const m = HLC_PATTERN.exec(text)
  if (!m || m[1] === undefined || m[2] === undefined || m[3] === undefined) {
    throw new EddyError('invalid_value', `not an hlc stamp: ${JSON.stringify(text.slice(0, 100))}`, {
      field: 'hlc',
    })
  }
  return { wall: Number(m[1]), counter: Number.parseInt(m[2], 36), node: m[3] }
}

export function isHlc(text: unknown): text is string {
  return typeof text === 'string' && HLC_PATTERN.test(text)
}

export function compareHlc(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Throws `clock_skew` when the stamp's wall time leads `nowMs` by more than `maxDriftMs`. */
export function checkDrift(stamp: string, nowMs: number, maxDriftMs: number): void {
  const { wall } = parseHlc(stamp)
  if (wall - nowMs > maxDriftMs) {
    throw new EddyError(
      'clock_skew',
      `hlc is ${wall - nowMs} ms ahead of the server clock (max ${maxDriftMs} ms)`,
      { field: 'hlc' },
    )
  }
}

export interface Hlc {
  /** A stamp for a local event, greater than every stamp this clock has issued or received. */
  now(): string
  /** Merges a stamp seen from elsewhere, so later local stamps sort after it. */
  receive(remote: string): void
  /** The last stamp issued or received, if any. */
  last(): string | undefined
}

export interface HlcOptions {
  nodeId: string
  now?: () => number
  /** Refuse remote stamps further ahead than this (ms); `receive` throws `clock_skew`. */
  maxDriftMs?: number
  /** Resume after this stamp (e.g. the highest one persisted before a reload). */
  after?: string
}

/**
 * A clock for one node. Monotonic even when the wall clock jumps backwards; when the counter
 * would overflow within one millisecond, the logical wall time moves ahead by one.
 */
export function createHlc({ nodeId, now = Date.now, maxDriftMs, after }: HlcOptions): Hlc {
  formatHlc({ wall: 0, counter: 0, node: nodeId })
  let wall = 0
  let counter = -1
  let lastStamp: string | undefined
  if (after !== undefined) {
    const s = parseHlc(after)
    wall = s.wall
    counter = s.counter
    lastStamp = after
  }
  const bump = (): void => {
    if (counter > MAX_COUNTER) {
      wall += 1
      counter = 0
    }
  }
  return {
    now() {
      const pt = Math.floor(now())
      if (pt > wall) {
        wall = pt
        counter = 0
      } else {
        counter += 1
      }
      bump()
      lastStamp = formatHlc({ wall, counter, node: nodeId })
      return lastStamp
    },
    receive(remote) {
      const r = parseHlc(remote)
      const pt = Math.floor(now())
      if (maxDriftMs !== undefined && r.wall - pt > maxDriftMs) {
        throw new EddyError('clock_skew', `remote hlc is ${r.wall - pt} ms ahead of the local clock`)
      }
      const w = Math.max(wall, r.wall, pt)
      if (w === wall && w === r.wall) counter = Math.max(counter, r.counter) + 1
      else if (w === wall) counter += 1
      else if (w === r.wall) counter = r.counter + 1
      else counter = 0
      wall = w
      bump()
      const mine = formatHlc({ wall, counter, node: nodeId })
      lastStamp = mine > remote ? mine : remote
    },
    last: () => lastStamp,
  }
}

/** The text every stamp from before `ms` sorts below (and no stamp from `ms` on): a store compares stamps as text. */
export function hlcWallPrefix(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(HLC_WALL_DIGITS, '0')
}

/**
 * The wall time of a stamp that starts with `HLC_WALL_DIGITS` digits and a colon, or undefined for
 * anything else: a cheap read of the wall on a hot path, without parsing the whole stamp.
 */
export function wallOf(hlc: string): number | undefined {
  if (hlc.length < HLC_WALL_DIGITS + 2 || hlc.charCodeAt(HLC_WALL_DIGITS) !== COLON) return undefined
  let wall = 0
  for (let i = 0; i < HLC_WALL_DIGITS; i++) {
    const d = hlc.charCodeAt(i) - ZERO
    if (d < 0 || d > 9) return undefined
    wall = wall * 10 + d
  }
  return wall
}
