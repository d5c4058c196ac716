import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { createSyncApp } from '../../edge/http/app.ts'
import { openPostgresWarehouse } from '../../edge/warehouse/postgres/postgres-warehouse.ts'
import type { Warehouse } from '../../edge/warehouse/warehouse.ts'
import { formatHlc } from '../../shared/hlc.ts'
import type { PullResponse, PushResponse } from '../../shared/protocol.ts'
import { hasLocalPostgres, type RunningPostgres, startPostgres } from '../setup/postgres.ts'

const stamp = (n: number, node: string): string =>
  formatHlc({ wall: Date.now() - 60_000 + n, counter: 0, node })
const post = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
})

describe('edge over HTTP on PostgreSQL', () => {
  let w: Warehouse
  let app: ReturnType<typeof createSyncApp>

  const searchPath = `eddy_http_${Date.now()}`

  beforeAll(async () => {
    w = await openPostgresWarehouse({ schema: demoSchema, url: inject('pgUrl'), searchPath })
    await w.migrate()
    app = createSyncApp({ schema: demoSchema, warehouse: w })
  })
  afterAll(async () => {
    await w.close()
    // leave a server given by EDDY_PG_URL as we found it
    const sql = postgres(inject('pgUrl'), { onnotice: () => {} })
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${searchPath}" CASCADE`)
    await sql.end()
  })

  it('keeps every change for a puller while clients push concurrently', async () => {
    let cursor = ((await (await app.request('/sync/pull?tables=metrics')).json()) as PullResponse).cursor
    let done = false
    const seen = new Map<string, string>()
    let pages = 0
    const puller = (async () => {
      for (;;) {
        const finished = done
        const res = await app.request(
          `/sync/pull?tables=metrics&limit=4&cursor=${encodeURIComponent(cursor)}`,
        )
        expect(res.status).toBe(200)
        const page = (await res.json()) as PullResponse
        pages += 1
        for (const c of page.changes) seen.set(String(c.key.metric_id), c.hlc)
        cursor = page.cursor
        if (finished && !page.hasMore) return
      }
    })()
    await Promise.all(
      ['p1', 'p2', 'p3', 'p4'].map(async (id, ci) => {
        for (let b = 1; b <= 10; b++) {
          const res = await app.request(
            '/sync/push',
            post({
              clientId: id,
              mutations: [0, 1, 2].map((j) => ({
                seq: b * 3 + j,
                table: 'metrics',
                op: 'upsert',
                key: { metric_id: `k${(b * 3 + j + ci) % 7}` },
                values: { value: ci * 1000 + b },
                hlc: stamp(b * 10 + j, id),
              })),
            }),
          )
          expect(res.status).toBe(200)
        }
      }),
    )
    done = true
    await puller
    expect(pages).toBeGreaterThan(1)
    const all = await w.pull({ tables: [demoSchema.table('metrics')], afterVersion: 0n, limit: 1000 })
    expect(all.changes).toHaveLength(7)
    for (const c of all.changes) expect(seen.get(String(c.key.metric_id))).toBe(c.hlc)
  })
})

describe.skipIf(!hasLocalPostgres())('warehouse outage', () => {
  let pg: RunningPostgres
  let w: Warehouse
  let app: ReturnType<typeof createSyncApp>

  beforeAll(async () => {
    pg = await startPostgres({ ownServer: true })
    w = await openPostgresWarehouse({ schema: demoSchema, url: pg.url })
    await w.migrate()
    app = createSyncApp({ schema: demoSchema, warehouse: w, onError: () => {} })
  })
  afterAll(async () => {
    await w.close()
    await pg.stop()
  })

  const batch = (seq: number) =>
    post({
      clientId: 'outage',
      mutations: [
        {
          seq,
          table: 'metrics',
          op: 'upsert',
          key: { metric_id: `o${seq}` },
          values: { value: seq },
          hlc: stamp(seq, 'outage'),
        },
      ],
    })

  it('answers 503 while PostgreSQL is down, applies nothing, and recovers by itself', async () => {
    expect((await app.request('/sync/push', batch(1))).status).toBe(200)
    await pg.halt()
    for (const res of [
      await app.request('/sync/health'),
      await app.request('/sync/push', batch(2)),
      await app.request('/sync/pull'),
    ]) {
      expect(res.status).toBe(503)
      const text = await res.text()
      expect(JSON.parse(text)).toEqual({
        error: { code: 'warehouse_unavailable', message: expect.any(String) },
      })
      expect(text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|SELECT/)
    }
    await pg.resume()
    let health = 0
    for (let i = 0; i < 50 && health !== 200; i++) {
      health = (await app.request('/sync/health')).status
      if (health !== 200) await new Promise((r) => setTimeout(r, 200))
    }
    expect(health).toBe(200)
    // the refused batch was not applied: resent, it applies now
    const again = (await (await app.request('/sync/push', batch(2))).json()) as PushResponse
    expect(again).toEqual({ lastSeq: 2, results: [{ seq: 2, status: 'applied' }] })
    const pulled = (await (await app.request('/sync/pull?tables=metrics')).json()) as PullResponse
    expect(pulled.changes.map((c) => c.key.metric_id)).toEqual(['o1', 'o2'])
  })
})
