import { randomUUID } from 'node:crypto'
import { dirname } from 'node:path'
import type { Readable } from 'node:stream'
import { SignJWT } from 'jose'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { bucketHashes, bucketOf, canonicalKey } from '../../shared/digest.ts'
import { bundleWorker, wranglerConfig } from './worker-bundle.ts'

/**
 * The Workers entry (`edge/runtime/worker.ts`) bundled as for deployment and run in real workerd with a
 * local D1, driven over HTTP: every route of PROTOCOL.md and its error answers.
 */
process.env.WRANGLER_SEND_METRICS = 'false'
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false'

const SECRET = 'a-test-secret-of-32-characters!!'
const BASE = 'http://eddy.test/sync'

let open: Miniflare
let secured: Miniflare

/** Starts the bundled worker; `logs`, when given, collects what the worker prints instead of showing it. */
async function start(bindings: Record<string, string>, logs?: string[]): Promise<Miniflare> {
  const { compatibilityDate, compatibilityFlags } = wranglerConfig()
  const scriptPath = await bundle
  const mf = new Miniflare({
    modules: true,
    scriptPath,
    modulesRoot: dirname(scriptPath),
    compatibilityDate,
    compatibilityFlags,
    d1Databases: ['DB'],
    bindings,
    cf: false,
    ...(logs === undefined
      ? {}
      : {
          handleRuntimeStdio(stdout: Readable, stderr: Readable) {
            for (const stream of [stdout, stderr]) stream.on('data', (chunk) => logs.push(String(chunk)))
          },
        }),
  })
  await mf.ready
  return mf
}

let bundle: Promise<string>
beforeAll(async () => {
  bundle = bundleWorker()
  ;[open, secured] = await Promise.all([
    start({}),
    start({ EDDY_JWT_SECRET: SECRET, EDDY_CORS_ORIGINS: 'https://app.example, https://other.example' }),
  ])
})
afterAll(async () => {
  await Promise.all([open?.dispose(), secured?.dispose()])
})

type Json = Record<string, unknown>

async function call(
  mf: Miniflare,
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Json; headers: Headers }> {
  const headers: Record<string, string> = { ...init.headers }
  let body: string | undefined
  if (init.body !== undefined) {
    body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body)
    headers['content-type'] ??= 'application/json'
  }
  const res = await mf.dispatchFetch(`${BASE}${path}`, {
    method: init.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body === undefined ? {} : { body }),
  })
  const text = await res.text()
  expect(res.headers.get('content-type') ?? '').toMatch(/^application\/json/)
  return { status: res.status, body: JSON.parse(text) as Json, headers: res.headers as unknown as Headers }
}

let clock = Date.now()
/** A fresh stamp, later than every earlier one in this file. */
function stamp(client: string): string {
  clock += 1
  return `${String(clock).padStart(15, '0')}:00000:${client}`
}
function oldStamp(client: string, agoMs: number): string {
  return `${String(Date.now() - agoMs).padStart(15, '0')}:00000:${client}`
}

function order(id: string, amount: string, client = 'c1', seq = 1, hlc = stamp(client)) {
  return {
    seq,
    table: 'orders',
    op: 'upsert',
    key: { order_id: id },
    values: { customer_id: 7, total_amount: amount, status: 'pending' },
    hlc,
  }
}

async function pullAll(mf: Miniflare, tables: string, limit: number, headers: Record<string, string> = {}) {
  const changes: Json[] = []
  let cursor = ''
  let pages = 0
  for (;;) {
    const q = `/pull?tables=${tables}&limit=${limit}${cursor === '' ? '' : `&cursor=${cursor}`}`
    const r = await call(mf, q, { headers })
    expect(r.status).toBe(200)
    pages++
    changes.push(...(r.body.changes as Json[]))
    cursor = String(r.body.cursor)
    if (r.body.hasMore !== true) return { changes, cursor, pages }
  }
}

describe('the Workers entry in workerd, on D1', () => {
  it('answers health with the d1 warehouse', async () => {
    const r = await call(open, '/health')
    expect(r).toMatchObject({ status: 200, body: { ok: true, warehouse: 'd1', protocol: 1 } })
  })

  it('pushes: applied, stale, duplicate, rejected, conflict (with returns-data rows)', async () => {
    const id = randomUUID()
    const first = await call(open, '/push', {
      body: {
        clientId: 'c1',
        mutations: [
          order(id, '12.50', 'c1', 1),
          { ...order(randomUUID(), '1.5', 'c1', 2) }, // not two decimals: rejected
          { seq: 3, table: 'nope', op: 'upsert', key: { x: 1 }, values: {}, hlc: stamp('c1') },
          { ...order(randomUUID(), '3.00', 'c1', 4), hlc: oldStamp('c1', -3_600_000) }, // an hour ahead
        ],
      },
    })
    expect(first.status).toBe(200)
    expect(first.body.lastSeq).toBe(4)
    const results = first.body.results as Json[]
    expect(results.map((r) => r.status)).toEqual(['applied', 'rejected', 'rejected', 'rejected'])
    expect(results.map((r) => (r.error as Json | undefined)?.code)).toEqual([
      undefined,
      'invalid_value',
      'unknown_table',
      'clock_skew',
    ])
    // the same batch again: all duplicates, nothing re-applied
    const again = await call(open, '/push', {
      body: { clientId: 'c1', mutations: [order(id, '99.00', 'c1', 1)] },
    })
    expect((again.body.results as Json[])[0]?.status).toBe('duplicate')
    // another client's older write to the same order loses under lww
    const stale = await call(open, '/push', {
      body: { clientId: 'c2', mutations: [order(id, '5.00', 'c2', 1, oldStamp('c2', 60_000))] },
    })
    expect((stale.body.results as Json[])[0]?.status).toBe('stale')
    const pulled = await pullAll(open, 'orders', 100)
    const row = pulled.changes.find((c) => (c.key as Json).order_id === id)
    expect(row?.row).toMatchObject({ total_amount: '12.50' })

    // customers: manual strategy, returns-data
    const cid = 4242
    const put = (seq: number, name: string, hlc: string, client = 'c3') =>
      call(open, '/push', {
        body: {
          clientId: client,
          mutations: [
            { seq, table: 'customers', op: 'upsert', key: { customer_id: cid }, values: { name }, hlc },
          ],
        },
      })
    const created = await put(1, 'Ada', stamp('c3'))
    expect((created.body.results as Json[])[0]).toMatchObject({
      status: 'applied',
      row: { customer_id: cid, name: 'Ada', email: null },
    })
    const conflict = await put(1, 'Older Ada', oldStamp('c4', 60_000), 'c4')
    expect((conflict.body.results as Json[])[0]).toMatchObject({ status: 'conflict', row: { name: 'Ada' } })
  })

  it('pages a pull with cursors and never repeats or skips a change', async () => {
    const ids: string[] = Array.from({ length: 7 }, () => randomUUID())
    const before = await pullAll(open, 'metrics', 1000)
    const r = await call(open, '/push', {
      body: {
        clientId: 'pager',
        mutations: ids.map((id, i) => ({
          seq: i + 1,
          table: 'metrics',
          op: i === 6 ? 'delete' : 'upsert',
          key: { metric_id: id },
          ...(i === 6 ? {} : { values: { value: i + 0.5 } }),
          hlc: stamp('pager'),
        })),
      },
    })
    expect(r.status).toBe(200)
    const paged = await pullAll(open, 'metrics', 2)
    // pages of 2, the last one telling hasMore: false without an empty extra round trip
    expect(paged.pages).toBe(Math.ceil((before.changes.length + 7) / 2))
    const mine = paged.changes.filter((c) => ids.includes(String((c.key as Json).metric_id)))
    expect(mine.map((c) => (c.key as Json).metric_id)).toEqual(ids)
    expect(mine.map((c) => (c.row === null ? null : (c.row as Json).value))).toEqual([
      0.5,
      1.5,
      2.5,
      3.5,
      4.5,
      5.5,
      null,
    ])
    // from the last cursor, nothing new
    const tail = await call(open, `/pull?tables=metrics&cursor=${paged.cursor}`)
    expect(tail.body).toMatchObject({ changes: [], hasMore: false })
    expect((await call(open, '/pull?tables=metrics&cursor=%21%21')).body).toMatchObject({
      error: { code: 'bad_cursor' },
    })
    const wrongTables = await call(open, `/pull?tables=orders&cursor=${paged.cursor}`)
    expect(wrongTables).toMatchObject({ status: 400, body: { error: { code: 'bad_cursor' } } })
    expect(await call(open, '/pull?tables=nope')).toMatchObject({
      status: 400,
      body: { error: { code: 'unknown_table' } },
    })
  })

  it('lists the audit trail newest first', async () => {
    await call(open, '/push', {
      body: { clientId: 'audited', mutations: [order(randomUUID(), '1.00', 'audited', 1)] },
    })
    const r = await call(open, '/events?limit=2')
    expect(r.status).toBe(200)
    const events = r.body.events as Json[]
    expect(events.length).toBe(2)
    expect(events[0]).toMatchObject({ clientId: 'audited', mutations: 1, applied: 1, stale: 0, rejected: 0 })
    expect(Number(events[0]?.id)).toBeGreaterThan(Number(events[1]?.id))
  })

  it('lists conflicts and resolves one into a new version that clients pull', async () => {
    const cid = 777
    const put = (client: string, name: string, hlc: string) =>
      call(open, '/push', {
        body: {
          clientId: client,
          mutations: [
            { seq: 1, table: 'customers', op: 'upsert', key: { customer_id: cid }, values: { name }, hlc },
          ],
        },
      })
    await put('r1', 'Current', stamp('r1'))
    await put('r2', 'Incoming', oldStamp('r2', 120_000))
    const listed = await call(open, '/conflicts')
    const mine = (listed.body.conflicts as Json[]).find((c) => (c.key as Json).customer_id === cid)
    expect(mine).toMatchObject({
      table: 'customers',
      stored: { name: 'Current' },
      incoming: { name: 'Incoming' },
    })
    const { cursor } = await pullAll(open, 'customers', 1000)
    const resolved = await call(open, `/conflicts/${String(mine?.id)}/resolve`, {
      body: { keep: 'incoming' },
    })
    expect(resolved.status).toBe(200)
    const after = await call(open, `/pull?tables=customers&cursor=${cursor}`)
    expect(after.body.changes).toMatchObject([{ key: { customer_id: cid }, row: { name: 'Incoming' } }])
    const left = await call(open, '/conflicts')
    expect((left.body.conflicts as Json[]).some((c) => c.id === mine?.id)).toBe(false)
    const gone = await call(open, `/conflicts/${String(mine?.id)}/resolve`, { body: { keep: 'incoming' } })
    expect(gone).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } })
  })

  it('answers digests that match the pulled rows', async () => {
    const ids: string[] = Array.from({ length: 20 }, () => randomUUID())
    await call(open, '/push', {
      body: { clientId: 'digest', mutations: ids.map((id, i) => order(id, `${i}.00`, 'digest', i + 1)) },
    })
    const { changes } = await pullAll(open, 'orders', 1000)
    // the live image of the table, as a client cache would hold it
    const live = new Map<string, { keyText: string; hlc: string }>()
    const orders = demoSchema.table('orders')
    for (const c of changes) {
      const keyText = canonicalKey(orders, c.key as Json)
      if (c.row === null) live.delete(keyText)
      else live.set(keyText, { keyText, hlc: String(c.hlc) })
    }
    const r = await call(open, '/digest', { body: { table: 'orders', buckets: 8 } })
    expect(r.status).toBe(200)
    expect(r.body.buckets).toEqual(bucketHashes(live.values(), 8))
    const bucket = bucketOf(canonicalKey(orders, { order_id: ids[0] }), 8)
    const one = await call(open, '/digest', { body: { table: 'orders', buckets: 8, bucket } })
    const expected = [...live.values()].filter((e) => bucketOf(e.keyText, 8) === bucket)
    expect((one.body.entries as Json[]).length).toBe(expected.length)
    expect(one.body.entries).toContainEqual({
      key: { order_id: ids[0] },
      hlc: live.get(canonicalKey(orders, { order_id: ids[0] }))?.hlc,
    })
  })

  it('answers 404, 405, 413, 415 and 400 as JSON errors', async () => {
    expect(await call(open, '/nowhere')).toMatchObject({
      status: 404,
      body: { error: { code: 'not_found' } },
    })
    const wrong = await call(open, '/push')
    expect(wrong).toMatchObject({ status: 405, body: { error: { code: 'method_not_allowed' } } })
    const many = Array.from({ length: 1001 }, (_, i) => order(randomUUID(), '1.00', 'big', i + 1))
    expect(await call(open, '/push', { body: { clientId: 'big', mutations: many } })).toMatchObject({
      status: 413,
      body: { error: { code: 'too_large' } },
    })
    const huge = {
      clientId: 'big',
      mutations: [{ ...order(randomUUID(), '1.00', 'big', 1), pad: 'x'.repeat(1_100_000) }],
    }
    expect(await call(open, '/push', { body: huge })).toMatchObject({
      status: 413,
      body: { error: { code: 'too_large' } },
    })
    const text = await call(open, '/push', { body: 'hello', headers: { 'content-type': 'text/plain' } })
    expect(text).toMatchObject({ status: 415, body: { error: { code: 'unsupported_media_type' } } })
    expect(await call(open, '/push', { body: '{"clientId":' })).toMatchObject({
      status: 400,
      body: { error: { code: 'bad_request' } },
    })
    // nothing of the refused batches was applied
    const events = await call(open, '/events?limit=1000')
    expect((events.body.events as Json[]).some((e) => e.clientId === 'big')).toBe(false)
  })

  it('with EDDY_JWT_SECRET: 401 without a valid token, health open, admin routes need the role', async () => {
    const key = new TextEncoder().encode(SECRET)
    const token = (claims: Json, secret = key) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('alice')
        .setExpirationTime('5m')
        .sign(secret)
    expect((await call(secured, '/health')).status).toBe(200)
    expect(await call(secured, '/pull')).toMatchObject({
      status: 401,
      body: { error: { code: 'unauthorized' } },
    })
    const forged = await token({}, new TextEncoder().encode('another-secret-of-32-characters!'))
    expect((await call(secured, '/pull', { headers: { authorization: `Bearer ${forged}` } })).status).toBe(
      401,
    )
    const user = { authorization: `Bearer ${await token({})}` }
    const pushed = await call(secured, '/push', {
      headers: user,
      body: { clientId: 'alice-1', mutations: [order(randomUUID(), '2.00', 'alice-1', 1)] },
    })
    expect((pushed.body.results as Json[])[0]?.status).toBe('applied')
    expect((await call(secured, '/pull?tables=orders', { headers: user })).status).toBe(200)
    expect(await call(secured, '/events', { headers: user })).toMatchObject({
      status: 403,
      body: { error: { code: 'forbidden' } },
    })
    const admin = { authorization: `Bearer ${await token({ role: 'admin' })}` }
    const events = await call(secured, '/events', { headers: admin })
    expect((events.body.events as Json[])[0]).toMatchObject({ clientId: 'alice-1', applied: 1 })
    // The audit trail is scoped like the data: a tenant's admin sees its own tenant's pushes only.
    const acme = { authorization: `Bearer ${await token({ tenant: 'acme' })}` }
    await call(secured, '/push', {
      headers: acme,
      body: { clientId: 'alice-acme', mutations: [order(randomUUID(), '3.00', 'alice-acme', 1)] },
    })
    const clients = async (claims: Json): Promise<unknown[]> => {
      const r = await call(secured, '/events?limit=1000', {
        headers: { authorization: `Bearer ${await token(claims)}` },
      })
      return [...new Set((r.body.events as Json[]).map((e) => e.clientId))]
    }
    expect(await clients({ role: 'admin', tenant: 'acme' })).toEqual(['alice-acme'])
    expect(await clients({ role: 'admin', tenant: 'globex' })).toEqual([])
    expect(await clients({ role: 'admin' })).toEqual(expect.arrayContaining(['alice-acme', 'alice-1']))
  })
  it('answers CORS preflights for the EDDY_CORS_ORIGINS allow-list only', async () => {
    const preflight = (origin: string) =>
      secured.dispatchFetch(`${BASE}/push`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
      })
    const allowed = await preflight('https://app.example')
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example')
    await allowed.arrayBuffer()
    const other = await preflight('https://evil.example')
    expect(other.headers.get('access-control-allow-origin')).toBeNull()
    await other.arrayBuffer()
  })

  it('answers 503 while D1 cannot be migrated, and recovers by itself once it can', async () => {
    const logs: string[] = []
    const broken = await start({}, logs)
    try {
      // A bookkeeping table in the way (wrong columns) makes the first migration fail.
      const db = await broken.getD1Database('DB')
      await db.exec('CREATE TABLE _eddy_meta (key TEXT PRIMARY KEY)')
      const down = await call(broken, '/health')
      expect(down).toMatchObject({ status: 503, body: { error: { code: 'warehouse_unavailable' } } })
      // the cause goes to the worker's log, never to the caller
      expect(JSON.stringify(down.body)).not.toMatch(/_eddy_meta|SQLITE|value/)
      await expect.poll(() => logs.join('')).toMatch(/no column named value/)
      await db.exec('DROP TABLE _eddy_meta')
      expect(await call(broken, '/health')).toMatchObject({
        status: 200,
        body: { ok: true, warehouse: 'd1' },
      })
      const pushed = await call(broken, '/push', {
        body: { clientId: 'back', mutations: [order(randomUUID(), '1.00', 'back', 1)] },
      })
      expect((pushed.body.results as Json[])[0]?.status).toBe('applied')
    } finally {
      await broken.dispose()
    }
  })
})
