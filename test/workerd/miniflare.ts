import type { D1Database } from '@cloudflare/workers-types'
import { Miniflare } from 'miniflare'

/**
 * Real workerd for tests, through Miniflare 3, kept offline: `cf: false` uses Miniflare's built-in
 * request.cf instead of fetching it, and nothing is persisted (D1 lives in memory for the run).
 */
process.env.WRANGLER_SEND_METRICS = 'false'
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false'

export interface D1Harness {
  readonly mf: Miniflare
  /** A proxy to the D1 database `DB` inside workerd; adapters use it directly from Node. */
  readonly db: D1Database
  /** Another, separate database (`DB1` … `DB{extra}`), for suites that keep several stores open. */
  database(index: number): Promise<D1Database>
  /** Drops every table, index and trigger, for a fresh database without restarting workerd. */
  wipe(): Promise<void>
  dispose(): Promise<void>
}

/** Starts workerd with a D1 database bound as `DB` (and `extra` more) and a no-op worker. */
export async function startD1(extra = 0): Promise<D1Harness> {
  const mf = new Miniflare({
    modules: true,
    script: 'export default { fetch() { return new Response(null, { status: 204 }) } }',
    d1Databases: ['DB', ...Array.from({ length: extra }, (_, i) => `DB${i + 1}`)],
    cf: false,
    host: '127.0.0.1',
    port: 0,
  })
  // Miniflare's D1 proxy has its own copy of the workers types; it is the same runtime object.
  const db = (await mf.getD1Database('DB')) as unknown as D1Database
  return {
    mf,
    db,
    async database(index) {
      if (!Number.isInteger(index) || index < 1 || index > extra)
        throw new Error(`only DB1 … DB${extra} were started`)
      return (await mf.getD1Database(`DB${index}`)) as unknown as D1Database
    },
    async wipe() {
      const { results } = await db
        .prepare(
          `SELECT type, name FROM sqlite_master WHERE type IN ('table', 'trigger')
           AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'`,
        )
        .all<{ type: string; name: string }>()
      const drops = results
        .sort((a, b) => (a.type === b.type ? 0 : a.type === 'trigger' ? -1 : 1))
        .map((r) => db.prepare(`DROP ${r.type === 'trigger' ? 'TRIGGER' : 'TABLE'} IF EXISTS "${r.name}"`))
      if (drops.length > 0) await db.batch(drops)
    },
    dispose: () => mf.dispose(),
  }
}
