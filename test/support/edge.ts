import { createSyncApp, type SyncAppOptions } from '../../edge/http/app.ts'
import { openDuckDbWarehouse } from '../../edge/warehouse/duckdb/duckdb-warehouse.ts'
import type { Warehouse } from '../../edge/warehouse/warehouse.ts'
import type { Schema } from '../../shared/schema.ts'

/**
 * The real edge (Hono app + in-memory DuckDB warehouse) in-process, for the engine's Node tests.
 * `fetch` goes through `app.request`; `fault` lets a test drop the network or a response.
 */
export interface TestEdge {
  readonly url: string
  readonly warehouse: Warehouse
  /** What engines use as their `fetch`. */
  readonly fetch: typeof fetch
  /** Counts of requests that reached the edge, by path (`/sync/push`, ...), and the clientIds that pushed. */
  readonly hits: Map<string, number>
  readonly pushers: string[]
  /**
   * 'down': every request fails before reaching the edge; 'drop-response': the edge processes the
   * request, the answer is lost; 'hang': requests never answer (until their signal aborts them).
   */
  fault: 'none' | 'down' | 'drop-response' | 'hang'
  /** A row of the warehouse as a pull from scratch sees it (null when absent or deleted). */
  row(table: string, key: Record<string, unknown>): Promise<Record<string, unknown> | null>
  close(): Promise<void>
}

export async function startEdge(
  schema: Schema,
  options: Omit<SyncAppOptions, 'schema' | 'warehouse'> = {},
): Promise<TestEdge> {
  const warehouse = await openDuckDbWarehouse({ schema })
  await warehouse.migrate()
  const app = createSyncApp({ onError: () => {}, ...options, schema, warehouse })
  const base = 'http://edge.test/sync'
  const hits = new Map<string, number>()
  const pushers: string[] = []
  const edge: TestEdge = {
    url: base,
    warehouse,
    hits,
    pushers,
    fault: 'none',
    fetch: async (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input))
      if (edge.fault === 'down') throw new TypeError('fetch failed (test: network down)')
      hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1)
      if (edge.fault === 'hang') {
        return new Promise<Response>((_, reject) => {
          init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')))
        })
      }
      if (url.pathname.endsWith('/push') && typeof init?.body === 'string') {
        pushers.push((JSON.parse(init.body) as { clientId: string }).clientId)
      }
      const res = await app.request(input, init)
      if (edge.fault === 'drop-response') {
        await res.arrayBuffer()
        throw new TypeError('fetch failed (test: response lost)')
      }
      return res
    },
    async row(table, key) {
      const t = schema.table(table)
      const pulled = await warehouse.pull({ tables: [t], afterVersion: 0n, limit: 1_000_000 })
      let found: Record<string, unknown> | null = null
      for (const c of pulled.changes) {
        if (t.primaryKey.every((k) => c.key[k] === key[k])) found = c.row
      }
      return found
    },
    close: () => warehouse.close(),
  }
  return edge
}
