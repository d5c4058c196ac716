import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { bucketHashes, canonicalKey } from '../../shared/digest.ts'
import { formatHlc } from '../../shared/hlc.ts'
import type { Change, ConflictRecord, PullResponse, PushResponse } from '../../shared/protocol.ts'
import { defineSchema } from '../../shared/schema.ts'
import { openDuckDbWarehouse } from '../warehouse/duckdb/duckdb-warehouse.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'
import { createSyncApp } from './app.ts'

const NOW = Date.UTC(2026, 5, 1)
const now = (): number => NOW
const stamp = (offset: number, node: string, counter = 0): string =>
  formatHlc({ wall: NOW - 60_000 + offset, counter, node })
const json = (body: unknown, extra: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...extra },
  body: JSON.stringify(body),
})
const uuid = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`

describe('sync app over HTTP (in-process, DuckDB)', () => {
  let w: Warehouse
  let app: ReturnType<typeof createSyncApp>
  const errors: unknown[] = []

  beforeAll(async () => {
    w = await openDuckDbWarehouse({ schema: demoSchema })
    await w.migrate()
    app = createSyncApp({
      schema: demoSchema,
      warehouse: w,
      now,
      limits: { maxBodyBytes: 64 * 1024, maxMutations: 50 },
      cors: { origins: ['https://app.example'] },
      onError: (e) => errors.push(e),
    })
  })
  afterAll(async () => {
    await w.close()
  })

  const push = async (body: unknown): Promise<{ status: number; body: PushResponse }> => {
    const res = await app.request('/sync/push', json(body))
    return { status: res.status, body: (await res.json()) as PushResponse }
  }
  const pull = async (query: string): Promise<{ status: number; body: PullResponse }> => {
    const res = await app.request(`/sync/pull?${query}`)
    return { status: res.status, body: (await res.json()) as PullResponse }
  }
  const expectError = async (res: Response, status: number, code: string): Promise<void> => {
    expect(res.status).toBe(status)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    const body = (await res.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe(code)
    expect(typeof body.error.message).toBe('string')
    expect(Object.keys(body)).toEqual(['error'])
  }

  it('answers health', async () => {
    const res = await app.request('/sync/health')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ ok: true, warehouse: 'duckdb', protocol: 1 })
  })

  it('pushes, answering statuses, lastSeq and returns-data rows', async () => {
    const r = await push({
      clientId: 'tab-a',
      mutations: [
        {
          seq: 1,
          table: 'customers',
          op: 'upsert',
          key: { customer_id: 1 },
          values: { name: 'Ada', email: 'ada@example.com' },
          hlc: stamp(1, 'tab-a'),
        },
        {
          seq: 2,
          table: 'orders',
          op: 'upsert',
          key: { order_id: uuid(1) },
          values: { customer_id: 1, total_amount: '12.50', status: 'paid' },
          hlc: stamp(2, 'tab-a'),
        },
        {
          seq: 3,
          table: 'orders',
          op: 'upsert',
          key: { order_id: uuid(2) },
          values: { customer_id: 0, total_amount: '1' },
          hlc: stamp(3, 'tab-a'),
        },
        { seq: 4, table: 'ghosts', op: 'delete', key: { id: 1 }, hlc: stamp(4, 'tab-a') },
        {
          seq: 5,
          table: 'orders',
          op: 'upsert',
          key: { order_id: uuid(3) },
          values: { customer_id: 1, total_amount: '1.00', bogus: 1 },
          hlc: stamp(5, 'tab-a'),
        },
        // ten minutes ahead of the server clock: more than the 5-minute drift allowed
        {
          seq: 6,
          table: 'metrics',
          op: 'upsert',
          key: { metric_id: 'm' },
          values: { value: 1 },
          hlc: formatHlc({ wall: NOW + 600_000, counter: 0, node: 'tab-a' }),
        },
      ],
    })
    expect(r.status).toBe(200)
    expect(r.body.lastSeq).toBe(6)
    expect(r.body.results).toEqual([
      {
        seq: 1,
        status: 'applied',
        row: { customer_id: 1, name: 'Ada', email: 'ada@example.com', updated_at: null },
      },
      { seq: 2, status: 'applied' },
      {
        seq: 3,
        status: 'rejected',
        error: { code: 'invalid_value', field: 'customer_id', message: expect.any(String) },
      },
      {
        seq: 4,
        status: 'rejected',
        error: { code: 'unknown_table', field: 'table', message: expect.any(String) },
      },
      {
        seq: 5,
        status: 'rejected',
        error: { code: 'unknown_column', field: 'bogus', message: expect.any(String) },
      },
      {
        seq: 6,
        status: 'rejected',
        error: { code: 'clock_skew', field: 'hlc', message: expect.any(String) },
      },
    ])
    const again = await push({
      clientId: 'tab-a',
      mutations: [
        { seq: 2, table: 'orders', op: 'delete', key: { order_id: uuid(1) }, hlc: stamp(9, 'tab-a') },
      ],
    })
    expect(again.body).toEqual({ lastSeq: 6, results: [{ seq: 2, status: 'duplicate' }] })
  })

  it('rejects malformed requests as a whole, applying nothing', async () => {
    const before = (await pull('')).body.changes.length
    await expectError(
      await app.request('/sync/push', { method: 'POST', body: '{}' }),
      415,
      'unsupported_media_type',
    )
    await expectError(
      await app.request('/sync/push', {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: '{}',
      }),
      415,
      'unsupported_media_type',
    )
    await expectError(
      await app.request('/sync/push', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{',
      }),
      400,
      'bad_request',
    )
    await expectError(
      await app.request('/sync/push', json({ clientId: 'bad id!', mutations: [] })),
      400,
      'bad_request',
    )
    await expectError(await app.request('/sync/push', json({ clientId: 'ok' })), 400, 'bad_request')
    await expectError(
      await app.request(
        '/sync/push',
        json({
          clientId: 'ok',
          mutations: [
            {
              seq: 1,
              table: 'metrics',
              op: 'upsert',
              key: { metric_id: 'x' },
              hlc: stamp(1, 'ok'),
              extra: 1,
            },
          ],
        }),
      ),
      400,
      'bad_request',
    )
    await expectError(
      await app.request(
        '/sync/push',
        json({
          clientId: 'ok',
          mutations: [
            { seq: 0, table: 'metrics', op: 'upsert', key: { metric_id: 'x' }, hlc: 'not-a-stamp' },
          ],
        }),
      ),
      400,
      'bad_request',
    )
    expect((await pull('')).body.changes.length).toBe(before)
  })

  it('answers 413 past the body and batch limits, before applying anything', async () => {
    const big = 'x'.repeat(70 * 1024)
    const mutation = (seq: number) => ({
      seq,
      table: 'metrics',
      op: 'upsert',
      key: { metric_id: `big-${seq}` },
      values: { value: seq },
      hlc: stamp(seq, 'big'),
    })
    await expectError(
      await app.request('/sync/push', json({ clientId: 'big', mutations: [{ ...mutation(1), pad: big }] })),
      413,
      'too_large',
    )
    // a streamed body without Content-Length is counted as it arrives
    const bytes = new TextEncoder().encode(
      JSON.stringify({ clientId: 'big', mutations: [mutation(1)], pad: big }),
    )
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 8192) controller.enqueue(bytes.slice(i, i + 8192))
        controller.close()
      },
    })
    await expectError(
      await app.request('/sync/push', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: stream,
        duplex: 'half',
      } as RequestInit),
      413,
      'too_large',
    )
    const many = Array.from({ length: 51 }, (_, i) => mutation(i + 1))
    await expectError(
      await app.request('/sync/push', json({ clientId: 'big', mutations: many })),
      413,
      'too_large',
    )
    const ok = await push({ clientId: 'big', mutations: many.slice(0, 50) })
    expect(ok.status).toBe(200)
    expect(ok.body.results.every((r) => r.status === 'applied')).toBe(true)
  })

  it('pulls with an opaque cursor, paging, and rejects unknown tables and foreign cursors', async () => {
    const first = await pull('tables=metrics&limit=20')
    expect(first.status).toBe(200)
    expect(first.body.changes).toHaveLength(20)
    expect(first.body.hasMore).toBe(true)
    const seen: Change[] = [...first.body.changes]
    let cursor = first.body.cursor
    for (;;) {
      const page = await pull(`tables=metrics&limit=20&cursor=${encodeURIComponent(cursor)}`)
      expect(page.status).toBe(200)
      seen.push(...page.body.changes)
      cursor = page.body.cursor
      if (!page.body.hasMore) break
    }
    expect(seen.map((c) => c.key.metric_id)).toEqual(Array.from({ length: 50 }, (_, i) => `big-${i + 1}`))
    // a cursor may be reused with the same tables: it answers the same suffix
    const reused = await pull(`tables=metrics&limit=20&cursor=${encodeURIComponent(first.body.cursor)}`)
    expect(reused.body.changes).toEqual(seen.slice(20, 40))
    const end = await pull(`tables=metrics&cursor=${encodeURIComponent(cursor)}`)
    expect(end.body).toEqual({ changes: [], cursor, hasMore: false })

    await expectError(await app.request('/sync/pull?tables=metrics,ghosts'), 400, 'unknown_table')
    await expectError(await app.request('/sync/pull?cursor=%%%'), 400, 'bad_cursor')
    await expectError(await app.request('/sync/pull?cursor=eyJ2IjoxfQ'), 400, 'bad_cursor')
    await expectError(
      await app.request(`/sync/pull?tables=orders&cursor=${encodeURIComponent(cursor)}`),
      400,
      'bad_cursor',
    )
    await expectError(await app.request('/sync/pull?limit=0'), 400, 'bad_request')
    await expectError(await app.request('/sync/pull?limit=ten'), 400, 'bad_request')
  })

  it('lists events newest first', async () => {
    const res = await app.request('/sync/events?limit=2')
    expect(res.status).toBe(200)
    const { events } = (await res.json()) as { events: Array<Record<string, unknown>> }
    expect(events).toHaveLength(2)
    expect(Object.keys(events[0] ?? {}).sort()).toEqual(
      [
        'id',
        'clientId',
        'receivedAt',
        'mutations',
        'applied',
        'stale',
        'duplicate',
        'conflict',
        'rejected',
        'durationMs',
      ].sort(),
    )
    expect(events[0]).toMatchObject({ clientId: 'big', mutations: 50, applied: 50 })
    await expectError(await app.request('/sync/events?limit=-1'), 400, 'bad_request')
  })

  it('records conflicts and resolves them with a new version that clients pull', async () => {
    const mark = (await pull('tables=customers')).body.cursor
    const r = await push({
      clientId: 'tab-b',
      mutations: [
        {
          seq: 1,
          table: 'customers',
          op: 'upsert',
          key: { customer_id: 1 },
          values: { name: 'Stale Ada' },
          hlc: stamp(0, 'tab-b'),
        },
      ],
    })
    expect(r.body.results[0]).toMatchObject({ status: 'conflict', row: { name: 'Ada' } })
    const list = (await (await app.request('/sync/conflicts')).json()) as { conflicts: ConflictRecord[] }
    const conflict = list.conflicts.find((c) => c.key.customer_id === 1)
    expect(conflict).toMatchObject({
      table: 'customers',
      stored: { name: 'Ada' },
      incoming: { name: 'Stale Ada' },
      hlc: stamp(0, 'tab-b'),
    })
    const id = String(conflict?.id)
    await expectError(
      await app.request('/sync/conflicts/999999/resolve', json({ keep: 'incoming' })),
      404,
      'not_found',
    )
    await expectError(
      await app.request(`/sync/conflicts/${id}/resolve`, json({ keep: 'both' })),
      400,
      'bad_request',
    )
    const res = await app.request(`/sync/conflicts/${id}/resolve`, json({ keep: 'incoming' }))
    expect(res.status).toBe(200)
    const resolved = (await res.json()) as { row: Record<string, unknown>; hlc: string }
    expect(resolved.row).toEqual({
      customer_id: 1,
      name: 'Stale Ada',
      email: 'ada@example.com',
      updated_at: null,
    })
    expect(resolved.hlc > stamp(1, 'tab-a')).toBe(true)
    const after = await pull(`tables=customers&cursor=${encodeURIComponent(mark)}`)
    expect(after.body.changes).toEqual([
      { table: 'customers', key: { customer_id: 1 }, row: resolved.row, hlc: resolved.hlc },
    ])
    await expectError(
      await app.request(`/sync/conflicts/${id}/resolve`, json({ keep: 'incoming' })),
      404,
      'not_found',
    )

    // explicit values, validated like any write
    await push({
      clientId: 'tab-b',
      mutations: [
        {
          seq: 2,
          table: 'customers',
          op: 'upsert',
          key: { customer_id: 1 },
          values: { name: 'Older' },
          hlc: stamp(0, 'tab-b', 1),
        },
      ],
    })
    const second = (await (await app.request('/sync/conflicts')).json()) as { conflicts: ConflictRecord[] }
    const id2 = String(second.conflicts.find((c) => c.key.customer_id === 1)?.id)
    await expectError(
      await app.request(`/sync/conflicts/${id2}/resolve`, json({ values: { email: 'nope' } })),
      400,
      'invalid_value',
    )
    const byValues = await app.request(`/sync/conflicts/${id2}/resolve`, json({ values: { name: 'Agreed' } }))
    expect(((await byValues.json()) as { row: Record<string, unknown> }).row).toMatchObject({
      name: 'Agreed',
      email: 'ada@example.com',
    })
  })

  it('answers digests that match the pulled rows, and bucket entries', async () => {
    const rows = new Map<string, string>()
    const table = demoSchema.table('metrics')
    for (const c of (await pull('tables=metrics&limit=10000')).body.changes) {
      if (c.row === null) rows.delete(canonicalKey(table, c.key))
      else rows.set(canonicalKey(table, c.key), c.hlc)
    }
    const res = await app.request('/sync/digest', json({ table: 'metrics', buckets: 8 }))
    expect(res.status).toBe(200)
    const expected = bucketHashes(
      [...rows].map(([keyText, hlc]) => ({ keyText, hlc })),
      8,
    )
    expect(await res.json()).toEqual({ buckets: expected })
    let total = 0
    for (let b = 0; b < 8; b++) {
      const entries = (await (
        await app.request('/sync/digest', json({ table: 'metrics', buckets: 8, bucket: b }))
      ).json()) as {
        entries: Array<{ key: Record<string, unknown>; hlc: string }>
      }
      for (const e of entries.entries) expect(rows.get(canonicalKey(table, e.key))).toBe(e.hlc)
      total += entries.entries.length
    }
    expect(total).toBe(rows.size)
    const dflt = (await (await app.request('/sync/digest', json({ table: 'metrics' }))).json()) as {
      buckets: string[]
    }
    expect(dflt.buckets).toHaveLength(64)
    await expectError(await app.request('/sync/digest', json({ table: 'ghosts' })), 400, 'unknown_table')
    await expectError(
      await app.request('/sync/digest', json({ table: 'metrics', buckets: 4, bucket: 4 })),
      400,
      'bad_request',
    )
  })

  it('answers 404 and 405 with the JSON error body', async () => {
    await expectError(await app.request('/sync/nothing'), 404, 'not_found')
    await expectError(await app.request('/elsewhere'), 404, 'not_found')
    const res = await app.request('/sync/push')
    expect(res.headers.get('allow')).toBe('POST')
    await expectError(res, 405, 'method_not_allowed')
    await expectError(await app.request('/sync/pull', { method: 'POST' }), 405, 'method_not_allowed')
    await expectError(await app.request('/sync/conflicts/1/resolve'), 405, 'method_not_allowed')
  })

  it('sends CORS headers only to allowed origins', async () => {
    const ok = await app.request('/sync/health', { headers: { origin: 'https://app.example' } })
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example')
    const no = await app.request('/sync/health', { headers: { origin: 'https://evil.example' } })
    expect(no.headers.get('access-control-allow-origin')).toBeNull()
    const pre = await app.request('/sync/push', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, authorization',
      },
    })
    expect(pre.status).toBe(204)
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST')
    expect(pre.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization')
  })

  it('never shows a stack or SQL: unexpected failures answer 500 internal', async () => {
    const broken: Warehouse = {
      ...w,
      pull: () => Promise.reject(new Error('Binder Error: SELECT secret_column FROM t')),
    }
    const bad = createSyncApp({ schema: demoSchema, warehouse: broken, onError: (e) => errors.push(e) })
    const res = await bad.request('/sync/pull')
    const text = await res.text()
    expect(res.status).toBe(500)
    expect(JSON.parse(text)).toEqual({ error: { code: 'internal', message: 'internal error' } })
    expect(text).not.toMatch(/SELECT|secret|Error:|at /)
    expect(errors.length).toBeGreaterThan(0)
  })

  it('answers 503 while the warehouse is unavailable, applying nothing', async () => {
    const closed = await openDuckDbWarehouse({ schema: demoSchema })
    await closed.migrate()
    await closed.close()
    const down = createSyncApp({ schema: demoSchema, warehouse: closed })
    await expectError(await down.request('/sync/health'), 503, 'warehouse_unavailable')
    await expectError(
      await down.request(
        '/sync/push',
        json({
          clientId: 'x',
          mutations: [
            { seq: 1, table: 'metrics', op: 'delete', key: { metric_id: 'a' }, hlc: stamp(1, 'x') },
          ],
        }),
      ),
      503,
      'warehouse_unavailable',
    )
    await expectError(await down.request('/sync/pull'), 503, 'warehouse_unavailable')
  })

  it('prunes audit rows by the schema retention after pushes', async () => {
    const schema = defineSchema({ ...demoSchema.spec, retention: { keepEvents: 2 } })
    const store = await openDuckDbWarehouse({ schema })
    await store.migrate()
    try {
      const pruning = createSyncApp({ schema, warehouse: store, now, pruneEvery: 1 })
      for (let seq = 1; seq <= 4; seq++) {
        const res = await pruning.request(
          '/sync/push',
          json({
            clientId: 'p',
            mutations: [
              { seq, table: 'metrics', op: 'delete', key: { metric_id: 'm' }, hlc: stamp(seq, 'p') },
            ],
          }),
        )
        expect(res.status).toBe(200)
      }
      const { events } = (await (await pruning.request('/sync/events')).json()) as {
        events: Array<{ mutations: number }>
      }
      expect(events).toHaveLength(2)
    } finally {
      await store.close()
    }
  })

  it('keeps every change for a puller while clients push concurrently over HTTP', async () => {
    const clients = ['cc-1', 'cc-2', 'cc-3']
    let cursor = (await pull('tables=metrics,orders&limit=10000')).body.cursor
    let done = false
    const seen = new Map<string, string | null>()
    const puller = (async () => {
      for (;;) {
        const finished = done
        const page = await pull(`tables=metrics,orders&limit=5&cursor=${encodeURIComponent(cursor)}`)
        expect(page.status).toBe(200)
        for (const c of page.body.changes) seen.set(`${c.table}:${JSON.stringify(c.key)}`, c.hlc)
        cursor = page.body.cursor
        if (finished && !page.body.hasMore) return
      }
    })()
    await Promise.all(
      clients.map(async (id, ci) => {
        for (let b = 1; b <= 6; b++) {
          const r = await push({
            clientId: id,
            mutations: [0, 1, 2].map((j) => ({
              seq: b * 3 + j,
              table: 'metrics',
              op: 'upsert',
              key: { metric_id: `shared-${(b + j) % 5}` },
              values: { value: ci * 100 + b },
              hlc: stamp(1000 + b * 10 + j, id),
            })),
          })
          expect(r.status).toBe(200)
        }
      }),
    )
    done = true
    await puller
    const stored = await w.pull({ tables: [demoSchema.table('metrics')], afterVersion: 0n, limit: 10_000 })
    const final = new Map<string, string>()
    for (const c of stored.changes) final.set(`metrics:${JSON.stringify(c.key)}`, c.hlc)
    for (let k = 0; k < 5; k++) {
      const id = `metrics:${JSON.stringify({ metric_id: `shared-${k}` })}`
      expect(seen.get(id)).toBe(final.get(id))
    }
  })
})
