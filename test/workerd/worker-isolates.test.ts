import { randomUUID } from 'node:crypto'
import { dirname } from 'node:path'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleWorker, wranglerConfig } from './worker-bundle.ts'

/**
 * Two copies of the Workers entry — two isolates, as Cloudflare runs under load — on ONE D1
 * database. Each isolate has its own write mutex, so only the D1 adapter's generation guard keeps a
 * push in one from acting on reads the other has made stale. And a puller following cursors while
 * both push must still see every change.
 */
process.env.WRANGLER_SEND_METRICS = 'false'
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false'

type Json = Record<string, unknown>
type Fetch = (path: string, body?: unknown) => Promise<Json>

let mf: Miniflare
let isolates: Fetch[]

beforeAll(async () => {
  const scriptPath = await bundleWorker()
  const { compatibilityDate, compatibilityFlags } = wranglerConfig()
  const worker = (name: string) => ({
    name,
    modules: true,
    scriptPath,
    modulesRoot: dirname(scriptPath),
    compatibilityDate,
    compatibilityFlags,
    d1Databases: { DB: 'shared-d1' },
  })
  mf = new Miniflare({ cf: false, workers: [worker('a'), worker('b')] })
  await mf.ready
  isolates = await Promise.all(
    ['a', 'b'].map(async (name) => {
      const w = await mf.getWorker(name)
      return async (path: string, body?: unknown) => {
        const res = await w.fetch(`http://eddy.test/sync${path}`, {
          method: body === undefined ? 'GET' : 'POST',
          ...(body === undefined
            ? {}
            : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
        })
        expect(res.status).toBe(200)
        return (await res.json()) as Json
      }
    }),
  )
})
afterAll(async () => {
  await mf?.dispose()
})

let clock = Date.now()
function order(client: string, seq: number, id: string, amount: string) {
  clock += 1
  return {
    seq,
    table: 'orders',
    op: 'upsert',
    key: { order_id: id },
    values: { customer_id: 1, total_amount: amount },
    hlc: `${String(clock).padStart(15, '0')}:00000:${client}`,
  }
}

describe('two isolates of the Workers entry on one D1', () => {
  it('apply a batch sent to both at once exactly once (the other sees a duplicate)', async () => {
    const [a, b] = isolates
    if (a === undefined || b === undefined) throw new Error('two isolates expected')
    await Promise.all([a('/health'), b('/health')])
    const rounds = 8
    for (let seq = 1; seq <= rounds; seq++) {
      const batch = { clientId: 'twice', mutations: [order('twice', seq, randomUUID(), `${seq}.00`)] }
      const [ra, rb] = await Promise.all([a('/push', batch), b('/push', batch)])
      const statuses = [ra, rb].map((r) => (r.results as Json[])[0]?.status).sort()
      expect(statuses, `seq ${seq}`).toEqual(['applied', 'duplicate'])
      expect([ra.lastSeq, rb.lastSeq]).toEqual([seq, seq])
    }
    const events = (await a('/events?limit=1000')).events as Json[]
    const mine = events.filter((e) => e.clientId === 'twice')
    expect(mine.reduce((n, e) => n + Number(e.applied), 0)).toBe(rounds)
  })

  it('let a puller following cursors see every change while both isolates push', async () => {
    const [a, b] = isolates
    if (a === undefined || b === undefined) throw new Error('two isolates expected')
    const final = new Map<string, string>()
    let pushing = true
    const pusher = async (via: Fetch, client: string) => {
      for (let seq = 1; seq <= 6; seq++) {
        const ids = [randomUUID(), randomUUID()]
        const mutations = ids.map((id, i) => order(client, seq * 2 + i, id, `${seq}.${i}0`))
        await via('/push', { clientId: client, mutations })
        for (const m of mutations) final.set(m.key.order_id, m.values.total_amount)
      }
    }
    const seen = new Map<string, unknown>()
    let cursor = ''
    const drain = async () => {
      for (let more = true; more; ) {
        const page = await a(`/pull?tables=orders&limit=3${cursor === '' ? '' : `&cursor=${cursor}`}`)
        for (const ch of page.changes as Json[])
          seen.set(String((ch.key as Json).order_id), (ch.row as Json | null)?.total_amount)
        cursor = String(page.cursor)
        more = page.hasMore === true
      }
    }
    const puller = async () => {
      while (pushing) await drain()
    }
    const pulling = puller()
    await Promise.all([pusher(a, 'pa'), pusher(b, 'pb'), pusher(a, 'pc'), pusher(b, 'pd')])
    pushing = false
    await pulling
    await drain()
    expect(final.size).toBe(4 * 6 * 2)
    for (const [id, amount] of final) expect(seen.get(id), id).toBe(amount)
  })
})
