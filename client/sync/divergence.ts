import { bucketHashes, bucketOf, canonicalKey, DEFAULT_BUCKETS } from '../../shared/digest.ts'
import { EddyError } from '../../shared/errors.ts'
import type { Table } from '../../shared/schema.ts'
import type { SyncDeps } from './sync-deps.ts'

/**
 * How many rows of a table differ between the cache and the warehouse (held by one side only, or
 * at another stamp). Compares bucket hashes first, then fetches the entries of differing buckets only.
 */
export async function divergence(d: Pick<SyncDeps, 'transport' | 'cache'>, table: Table): Promise<number> {
  const remote = await d.transport.digest({ table: table.name, buckets: DEFAULT_BUCKETS })
  if (!('buckets' in remote) || remote.buckets.length !== DEFAULT_BUCKETS)
    throw new EddyError('protocol', 'digest answer has no buckets')
  const entries = await d.cache.digestEntries(table)
  const local = bucketHashes(entries, DEFAULT_BUCKETS)
  let diverged = 0
  for (let i = 0; i < DEFAULT_BUCKETS; i++) {
    if (remote.buckets[i] === local[i]) continue
    const detail = await d.transport.digest({ table: table.name, bucket: i, buckets: DEFAULT_BUCKETS })
    if (!('entries' in detail)) throw new EddyError('protocol', 'digest answer has no entries')
    const theirs = new Map(detail.entries.map((e) => [canonicalKey(table, e.key), e.hlc]))
    const mine = new Map(
      entries.filter((e) => bucketOf(e.keyText, DEFAULT_BUCKETS) === i).map((e) => [e.keyText, e.hlc]),
    )
    for (const [k, h] of mine) if (theirs.get(k) !== h) diverged += 1
    for (const k of theirs.keys()) if (!mine.has(k)) diverged += 1
  }
  return diverged
}
