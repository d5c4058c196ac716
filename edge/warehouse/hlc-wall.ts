/**
 * The wall time at the head of a hybrid logical clock stamp (`shared/hlc.ts`): its first
 * `HLC_WALL_DIGITS` characters, zero padded, so a stamp's text order is its time order. The store
 * compares stamps as text; the edge reads the wall without parsing the whole stamp.
 */
export const HLC_WALL_DIGITS = 15

/** The text every stamp from before `ms` sorts below (and no stamp from `ms` on). */
export function hlcWallPrefix(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(HLC_WALL_DIGITS, '0')
}

/**
 * The wall time of a stamp that starts with `HLC_WALL_DIGITS` digits and a colon, or undefined for
 * anything else (a cheap check that needs no full parse).
 */
export function wallOf(hlc: string): number | undefined {
  if (hlc.length < HLC_WALL_DIGITS + 2 || hlc.charCodeAt(HLC_WALL_DIGITS) !== 58) return undefined
  let wall = 0
  for (let i = 0; i < HLC_WALL_DIGITS; i++) {
    const d = hlc.charCodeAt(i) - 48
    if (d < 0 || d > 9) return undefined
    wall = wall * 10 + d
  }
  return wall
}
