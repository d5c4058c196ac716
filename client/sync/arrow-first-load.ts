import type { SyncDeps } from './sync-deps.ts'
import type { ArrowPage } from './transport.ts'

/**
 * Rows per Arrow page of a first load: one bulk load (one cache transaction) per page. Pages this
 * size let the edge read and encode page k+1 while the cache loads page k, which a single large
 * page left waiting.
 */
const ARROW_PULL_LIMIT = 25_000

/**
 * A first load through the Arrow bulk pull: every table, page by page, into `cache.loadArrow`
 * (which never overwrites a pending local write). The first request asks for a resume cursor for
 * all tables at the edge's high-water mark, read before any page: every change at or below it is
 * in the pages that follow, so JSON pulls continue from it (re-applying a few changes at most,
 * which is harmless). Returns that cursor and the rows loaded, or undefined when the edge
 * answers no resume cursor (then the caller pulls as JSON from scratch; nothing was loaded).
 */
export async function hydrate(
  d: Pick<SyncDeps, 'transport' | 'hlc' | 'cache' | 'schema' | 'emitChange' | 'status'>,
  allTables: readonly string[],
): Promise<{ cursor: string; rows: number } | undefined> {
  type Pending = { table: string; page: Promise<ArrowPage> }
  const fetchPage = (table: string, cursor: string | undefined, first: boolean): Pending => {
    const page = d.transport.pullArrow({
      table,
      cursor,
      limit: ARROW_PULL_LIMIT,
      ...(first ? { resume: allTables } : {}),
    })
    // awaited later; a failure while the previous page loads must not go unhandled meanwhile
    page.catch(() => undefined)
    return { table, page }
  }
  const first = allTables[0]
  if (first === undefined) return undefined
  let resume: string | undefined
  let done = 0
  let next: Pending | undefined = fetchPage(first, undefined, true)
  while (next !== undefined) {
    const current: Pending = next
    const name: string = current.table
    const page: ArrowPage = await current.page
    if (resume === undefined) {
      if (page.resumeCursor === undefined) return undefined
      resume = page.resumeCursor
    }
    // The edge prepares the next page while the cache loads this one.
    const following: string | undefined = page.hasMore ? name : allTables[allTables.indexOf(name) + 1]
    next =
      following === undefined
        ? undefined
        : fetchPage(following, following === name ? page.cursor : undefined, false)
    if (page.maxHlc !== undefined) d.hlc.receive(page.maxHlc)
    if (page.rows > 0) {
      await d.cache.loadArrow(d.schema.table(name), page.ipc)
      d.emitChange([name], 'remote')
      done += page.rows
      // the total is not known up front: it grows with each page that says more follow
      d.status.update({ progress: { done, total: page.hasMore ? done + ARROW_PULL_LIMIT : done } })
    }
  }
  // The pages are committed but not yet checkpointed: durable before the caller saves the cursor.
  if (done > 0) await d.cache.checkpoint()
  return resume === undefined ? undefined : { cursor: resume, rows: done }
}
