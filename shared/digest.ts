import type { Row, Table } from './schema.ts'

/**
 * Divergence digests. Both sides bucket a table's live rows by key and hash the (key, hlc) pairs of
 * each bucket, so a client compares bucket hashes and drills only into buckets that differ.
 */
export const DEFAULT_BUCKETS = 64

/** A key's canonical text: its primary-key values in key order, as JSON (numbers past 2^53 as strings). */
export function canonicalKey(table: Table, key: Row): string {
  const pk = table.primaryKey
  // one column (the common case): the same text without building an array
  if (pk.length === 1) return `[${JSON.stringify(keyPart(key[pk[0] ?? ''])) ?? 'null'}]`
  const parts = new Array<unknown>(pk.length)
  for (let i = 0; i < pk.length; i++) parts[i] = keyPart(key[pk[i] ?? ''])
  return JSON.stringify(parts)
}

function keyPart(v: unknown): unknown {
  return typeof v === 'bigint' ? (Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()) : (v ?? null)
}

/** 32-bit FNV-1a over UTF-16 code units, with a seed so two independent hashes can be taken. */
export function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  // final avalanche so nearby keys spread across buckets
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b) >>> 0
  h ^= h >>> 13
  return h >>> 0
}

export function bucketOf(keyText: string, buckets: number): number {
  return fnv1a(keyText) % buckets
}

/**
 * The hash of each bucket: the entry count and two order-independent sums of per-entry hashes.
 * Equal sets of (key, hlc) pairs give equal strings whatever order they are fed in.
 */
export function bucketHashes(
  entries: Iterable<{ keyText: string; hlc: string }>,
  buckets = DEFAULT_BUCKETS,
): string[] {
  const count = new Array<number>(buckets).fill(0)
  const a = new Array<number>(buckets).fill(0)
  const b = new Array<number>(buckets).fill(0)
  for (const e of entries) {
    const i = bucketOf(e.keyText, buckets)
    const pair = `${e.keyText}\u0000${e.hlc}`
    count[i] = (count[i] ?? 0) + 1
    a[i] = ((a[i] ?? 0) + fnv1a(pair)) >>> 0
    b[i] = ((b[i] ?? 0) + fnv1a(pair, 0x9747b28c)) >>> 0
  }
  return count.map(
    (n, i) =>
      `${n.toString(16)}-${(a[i] ?? 0).toString(16).padStart(8, '0')}${(b[i] ?? 0).toString(16).padStart(8, '0')}`,
  )
}
