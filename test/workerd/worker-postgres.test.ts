import { randomUUID } from 'node:crypto'
import { dirname } from 'node:path'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasLocalPostgres, type RunningPostgres, startPostgres } from '../setup/postgres.ts'
import { bundleWorker, wranglerConfig } from './worker-bundle.ts'

/**
 * The Workers entry's PostgreSQL option: the same bundle in real workerd, talking to a real
 * PostgreSQL (Debian's, started on a loopback port) over TCP through postgres.js and
 * `cloudflare:sockets`, one connection per request.
 */
process.env.WRANGLER_SEND_METRICS = 'false'
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false'

const BASE = 'http://eddy.test/sync'
type Json = Record<string, unknown>

let pg: RunningPostgres
let mf: Miniflare

async function call(path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await mf.dispatchFetch(`${BASE}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  })
  return { status: res.status, body: (await res.json()) as Json }
}

let clock = Date.now()
function order(client: string, seq: number, id = randomUUID(), hlcMs = ++clock) {
  return {
    seq,
    table: 'orders',
    op: 'upsert',
    key: { order_id: id },
    values: { customer_id: 3, total_amount: `${seq}.00` },
    hlc: `${String(hlcMs).padStart(15, '0')}:00000:${client}`,
  }
}

describe.skipIf(!hasLocalPostgres())('the Workers entry in workerd, on PostgreSQL over TCP', () => {
  beforeAll(async () => {
    const [server, scriptPath] = await Promise.all([startPostgres({ ownServer: true }), bundleWorker()])
    pg = server
    const { compatibilityDate, compatibilityFlags } = wranglerConfig()
    mf = new Miniflare({
      modules: true,
      scriptPath,
      modulesRoot: dirname(scriptPath),
      compatibilityDate,
      compatibilityFlags,
      // D1 is bound too, as in wrangler.toml: the PostgreSQL URL must win over it
      d1Databases: ['DB'],
      bindings: { EDDY_PG_URL: pg.url },
      cf: false,
      // the outage test makes the worker log connection errors; keep them out of the test output
      handleRuntimeStdio(stdout, stderr) {
        stdout.resume()
        stderr.resume()
      },
    })
    await mf.ready
  })
  afterAll(async () => {
    await mf?.dispose()
    await pg?.stop()
  })

  it('serves health, push and pull on postgres, across requests', async () => {
    expect(await call('/health')).toMatchObject({
      status: 200,
      body: { ok: true, warehouse: 'postgres', protocol: 1 },
    })
    const id = randomUUID()
    const first = await call('/push', { clientId: 'p1', mutations: [order('p1', 1, id)] })
    expect(first).toMatchObject({
      status: 200,
      body: { lastSeq: 1, results: [{ seq: 1, status: 'applied' }] },
    })
    const again = await call('/push', { clientId: 'p1', mutations: [order('p1', 1, id)] })
    expect(again.body.results).toEqual([{ seq: 1, status: 'duplicate' }])
    const older = await call('/push', {
      clientId: 'p2',
      mutations: [order('p2', 1, id, Date.now() - 60_000)],
    })
    expect(older.body.results).toEqual([{ seq: 1, status: 'stale' }])
    const pulled = await call('/pull?tables=orders')
    expect(pulled.body.changes).toContainEqual(
      expect.objectContaining({
        key: { order_id: id },
        row: expect.objectContaining({ total_amount: '1.00' }),
      }),
    )
  })

  it('keeps every concurrent push (one connection per request, commits serialised)', async () => {
    const clients = Array.from({ length: 6 }, (_, i) => `conc${i}`)
    const batches = clients.map((c) => ({ clientId: c, mutations: [order(c, 1), order(c, 2), order(c, 3)] }))
    const pushed = await Promise.all(batches.map((b) => call('/push', b)))
    for (const r of pushed)
      expect(r.body.results).toMatchObject([
        { status: 'applied' },
        { status: 'applied' },
        { status: 'applied' },
      ])
    const seen = new Set<string>()
    let cursor = ''
    for (let more = true; more; ) {
      const page = await call(`/pull?tables=orders&limit=4${cursor === '' ? '' : `&cursor=${cursor}`}`)
      for (const ch of page.body.changes as Json[]) seen.add(String((ch.key as Json).order_id))
      cursor = String(page.body.cursor)
      more = page.body.hasMore === true
    }
    const events = await call('/events?limit=1000')
    const mine = (events.body.events as Json[]).filter((e) => clients.includes(String(e.clientId)))
    expect(mine.map((e) => e.applied)).toEqual([3, 3, 3, 3, 3, 3])
    const ids = batches.flatMap((b) => b.mutations.map((m) => m.key.order_id))
    expect(ids.filter((id) => !seen.has(id))).toEqual([])
  })

  it('answers 503 while PostgreSQL is down and recovers by itself', async () => {
    await pg.halt()
    try {
      const down = await call('/health')
      expect(down).toMatchObject({ status: 503, body: { error: { code: 'warehouse_unavailable' } } })
      const refused = await call('/push', { clientId: 'outage', mutations: [order('outage', 1)] })
      expect(refused.status).toBe(503)
    } finally {
      await pg.resume()
    }
    expect((await call('/health')).status).toBe(200)
    const back = await call('/push', { clientId: 'outage', mutations: [order('outage', 1)] })
    expect(back.body).toMatchObject({ lastSeq: 1, results: [{ status: 'applied' }] })
  })
})
