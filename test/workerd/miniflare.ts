import type { D1Database } from '@cloudflare/workers-types'
import { Miniflare } from 'miniflare'

/**
 * Real D1 in real workerd for tests that drive an adapter from Node, through Miniflare 3, offline:
 * `cf: false` uses Miniflare's built-in request.cf instead of fetching it, and D1 lives in memory.
 *
 * Node reaches D1 through a tiny relay worker over `dispatchFetch`, not Miniflare's `getD1Database`
 * proxy: that proxy makes `prepare()` a synchronous round trip, which under load here failed an
 * internal assertion (`message?.id === id`) and broke every later call of the run. The relay keeps
 * D1's semantics — every statement and every `batch` (one atomic transaction) runs on the binding
 * inside workerd — and its errors come back with D1's own message.
 */
process.env.WRANGLER_SEND_METRICS = 'false'
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false'

const RELAY = `
const run = (s, db) => {
  const stmt = db.prepare(s.sql).bind(...s.params)
  switch (s.op) {
    case 'all': return stmt.all()
    case 'run': return stmt.run()
    case 'raw': return stmt.raw()
    case 'first': return s.column === undefined ? stmt.first() : stmt.first(s.column)
    default: throw new Error('unknown op ' + s.op)
  }
}
export default {
  async fetch(request, env) {
    const call = await request.json()
    const db = env[call.db]
    try {
      const value =
        call.op === 'batch' ? await db.batch(call.statements.map((s) => db.prepare(s.sql).bind(...s.params)))
        : call.op === 'exec' ? await db.exec(call.sql)
        : await run(call.statement, db)
      return Response.json({ ok: true, value: value ?? null })
    } catch (e) {
      return Response.json({ ok: false, message: String(e && e.message), cause: e && e.cause ? String(e.cause.message ?? e.cause) : null })
    }
  },
}`

interface Statement {
  readonly sql: string
  readonly params: readonly unknown[]
}

/** The D1Database surface Eddy uses, relayed to the binding `name` inside workerd. */
function relayedD1(mf: Miniflare, name: string): D1Database {
  const call = async (body: object): Promise<unknown> => {
    const res = await mf.dispatchFetch('http://d1.relay/', {
      method: 'POST',
      body: JSON.stringify({ db: name, ...body }),
    })
    const out = (await res.json()) as {
      ok: boolean
      value?: unknown
      message?: string
      cause?: string | null
    }
    if (!out.ok) {
      throw new Error(
        out.message ?? 'D1 relay failed',
        out.cause ? { cause: new Error(out.cause) } : undefined,
      )
    }
    return out.value
  }
  const statement = (s: Statement) => ({
    s,
    bind: (...params: unknown[]) => statement({ sql: s.sql, params }),
    all: () => call({ op: 'one', statement: { ...s, op: 'all' } }),
    run: () => call({ op: 'one', statement: { ...s, op: 'run' } }),
    raw: () => call({ op: 'one', statement: { ...s, op: 'raw' } }),
    first: (column?: string) => call({ op: 'one', statement: { ...s, op: 'first', column } }),
  })
  const db = {
    prepare: (sql: string) => statement({ sql, params: [] }),
    batch: (statements: Array<ReturnType<typeof statement>>) =>
      call({ op: 'batch', statements: statements.map((x) => x.s) }),
    exec: (sql: string) => call({ op: 'exec', sql }),
  }
  return db as unknown as D1Database
}

export interface D1Harness {
  readonly mf: Miniflare
  /** The D1 database `DB` inside workerd; adapters use it directly from Node. */
  readonly db: D1Database
  /** Another, separate database (`DB1` … `DB{extra}`), for suites that keep several stores open. */
  database(index: number): Promise<D1Database>
  /** Drops every table, for a fresh database without restarting workerd. */
  wipe(): Promise<void>
  dispose(): Promise<void>
}

/** Starts workerd with a D1 database bound as `DB` (and `extra` more) and the relay worker. */
export async function startD1(extra = 0): Promise<D1Harness> {
  const mf = new Miniflare({
    modules: true,
    script: RELAY,
    d1Databases: ['DB', ...Array.from({ length: extra }, (_, i) => `DB${i + 1}`)],
    cf: false,
  })
  await mf.ready
  const db = relayedD1(mf, 'DB')
  return {
    mf,
    db,
    async database(index) {
      if (!Number.isInteger(index) || index < 1 || index > extra)
        throw new Error(`only DB1 … DB${extra} were started`)
      return relayedD1(mf, `DB${index}`)
    },
    async wipe() {
      const { results } = await db
        .prepare(
          `SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'`,
        )
        .all<{ name: string }>()
      const drops = results.map((r) => db.prepare(`DROP TABLE IF EXISTS "${r.name}"`))
      if (drops.length > 0) await db.batch(drops)
    },
    dispose: () => mf.dispose(),
  }
}
