/** Display formatting for cells, counts, durations and times; never used for values sent to the edge. */
const integer = new Intl.NumberFormat('en-US')
const ms = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 })

export function formatCount(n: number): string {
  return integer.format(n)
}

export function formatMs(n: number): string {
  return `${ms.format(n)} ms`
}

/** A cell value as text: null shows as an empty cell, objects as JSON. */
export function formatCell(v: unknown): string {
  if (v === null || v === undefined) return ''
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v)
  if (v instanceof Date) return v.toISOString()
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x))
}

/** "12s ago", "3 min ago", or the clock time for older moments. */
export function formatSince(iso: string, now: number): string {
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return iso
  const s = Math.max(0, Math.round((now - t) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  return new Date(t).toLocaleTimeString()
}
