import fc from 'fast-check'
import * as v from 'valibot'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSyncApp } from '../../edge/http/app.ts'
import { formatHlc } from '../../shared/hlc.ts'
import { pullResponse, pushBody, resolveBody } from '../../shared/protocol.ts'
import { MAX_TEXT_LENGTH } from '../../shared/validators.ts'
import {
  type Answer,
  expectNothingApplied,
  expectTyped4xx,
  hostileSchema,
  INJECTIONS,
  jsonInit,
  NOW,
  now,
  PROTO_KEYS,
  send,
  stamp,
} from './fixtures.ts'
import { changedTables, openSnapshotWarehouse, type SnapshotWarehouse } from './snapshot-warehouse.ts'

/**
 * Hostile input against the real edge in-process on a real DuckDB file. Every input gets a typed 4xx,
 * or (where PROTOCOL.md says so) a 200 whose mutations are each `rejected` with a code; never a 5xx,
 * never a hang. The warehouse is checksummed, every table and the bookkeeping, before and after:
 * only the audit trail and lastSeq may move, and only for a well-formed push (which is logged).
 */

/** What a processed but wholly refused push may change: its audit row and the client's lastSeq. */
const LOGGED = ['(sequences)', '_eddy_clients', '_eddy_sync_events']

let snap: SnapshotWarehouse
let app: ReturnType<typeof createSyncApp>
let bigApp: ReturnType<typeof createSyncApp>
const internalErrors: unknown[] = []
let tried = 0

const post = (path: string, body: unknown): Promise<Answer> => {
  tried += 1
  return send(app, path, jsonInit(typeof body === 'string' ? body : JSON.stringify(body)))
}

beforeAll(async () => {
  snap = await openSnapshotWarehouse(hostileSchema)
  const common = {
    schema: hostileSchema,
    warehouse: snap.warehouse,
    now,
    onError: (e: unknown) => internalErrors.push(e),
  }
  app = createSyncApp(common)
  bigApp = createSyncApp({ ...common, limits: { maxBodyBytes: 8 * 1024 * 1024 } })
  // Rows in every table, a conflict and an audit trail, so there is something to damage.
  const seed = await post('/sync/push', {
    clientId: 'seed',
    mutations: [
      {
        seq: 1,
        table: 'customers',
        op: 'upsert',
        key: { customer_id: 1 },
        values: { name: 'Ada', email: 'ada@example.com' },
        hlc: stamp(10, 'seed'),
      },
      {
        seq: 2,
        table: 'customers',
        op: 'upsert',
        key: { customer_id: 1 },
        values: { name: 'Older' },
        hlc: stamp(5, 'seed'),
      },
      {
        seq: 3,
        table: 'orders',
        op: 'upsert',
        key: { order_id: '00000000-0000-4000-8000-000000000001' },
        values: { customer_id: 1, total_amount: '12.50', status: 'paid' },
        hlc: stamp(11, 'seed'),
      },
      {
        seq: 4,
        table: 'metrics',
        op: 'upsert',
        key: { metric_id: 'm' },
        values: { value: 1.5 },
        hlc: stamp(12, 'seed'),
      },
      {
        seq: 5,
        table: 'products',
        op: 'upsert',
        key: { product_id: 1 },
        values: { unit_price: '3.20', notes: 'a' },
        hlc: stamp(13, 'seed'),
      },
      {
        seq: 6,
        table: 'docs',
        op: 'upsert',
        key: { doc_id: 'd' },
        values: { title: 't', body: { a: [1] }, n: 1, d: 2.5 },
        hlc: stamp(14, 'seed'),
      },
      { seq: 7, table: 'metrics', op: 'delete', key: { metric_id: 'gone' }, hlc: stamp(15, 'seed') },
    ],
  })
  expect(seed.status).toBe(200)
  expect((seed.body as { results: Array<{ status: string }> }).results.map((r) => r.status)).toEqual([
    'applied',
    'conflict',
    'applied',
    'applied',
    'applied',
    'applied',
    'applied',
  ])
})

afterAll(async () => {
  console.log(`hostile envelopes: ${tried} inputs tried, 0 answered 5xx`)
  await snap.close()
})

/** Runs `fn`, then checks the warehouse moved at most in `allowed` tables and nothing threw inside the edge. */
async function unchanged(fn: () => Promise<void>, allowed: readonly string[] = []): Promise<void> {
  const before = await snap.checksums()
  await fn()
  const after = await snap.checksums()
  const moved = changedTables(before, after).filter((t) => !allowed.includes(t))
  expect(moved).toEqual([])
  expect(internalErrors).toEqual([])
}

const validHlc = stamp(100, 'fz')
const hostileString = fc.oneof(
  fc.constantFrom(...INJECTIONS, ...PROTO_KEYS),
  fc.string({ unit: 'binary', maxLength: 40 }),
)

describe('push envelope fuzzing', () => {
  it('arbitrary JSON bodies get a typed 4xx', async () => {
    await unchanged(async () => {
      await fc.assert(
        fc.asyncProperty(fc.jsonValue({ maxDepth: 6 }), async (body) => {
          fc.pre(!v.is(pushBody, body))
          expectTyped4xx(await post('/sync/push', body), 400, 'bad_request')
        }),
        { numRuns: 300 },
      )
    })
  })

  it('arbitrary text as a JSON body gets a typed 4xx', async () => {
    await unchanged(async () => {
      await fc.assert(
        fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 200 }), async (text) => {
          const a = await post('/sync/push', text)
          expectTyped4xx(a, 400, 'bad_request')
        }),
        { numRuns: 200 },
      )
    })
  })

  it('near-valid batches, each mutation with one defect, apply nothing', async () => {
    type Mut = Record<string, unknown>
    const base: fc.Arbitrary<Mut> = fc.record({
      seq: fc.integer({ min: 1, max: 1_000_000 }),
      table: fc.constantFrom('metrics', 'docs', 'orders', 'products'),
      op: fc.constantFrom('upsert', 'delete'),
      key: fc.constantFrom({ metric_id: 'm' }, { doc_id: 'd' }, { product_id: 1 }, { metric_id: 'x' }),
      values: fc.dictionary(
        fc.constantFrom('value', 'title', 'n', 'd', 'body'),
        fc.jsonValue({ maxDepth: 3 }),
      ),
      hlc: fc.constant(validHlc),
    })
    // Every defect alone makes the mutation (or the whole envelope) unacceptable.
    const defects: Array<fc.Arbitrary<(m: Mut) => Mut>> = [
      hostileString.map((t) => (m: Mut) => ({ ...m, table: t })),
      hostileString.map((c) => (m: Mut) => ({
        ...m,
        op: 'upsert',
        values: { ...(m.values as object), [c]: 1 },
      })),
      hostileString.map((c) => (m: Mut) => ({ ...m, key: { [c]: 'k' } })),
      fc
        .constantFrom('', 'now', '2026-06-01T00:00:00Z', '1:1:x', `${NOW}:00000:x`, 'x'.repeat(100), 7, null)
        .map((h) => (m: Mut) => ({ ...m, hlc: h })),
      fc.constant((m: Mut) => ({
        ...m,
        hlc: formatHlc({ wall: 999_999_999_999_999, counter: 0, node: 'z' }),
      })),
      fc.constantFrom(0, -1, 1.5, 2 ** 53, '7', null).map((s) => (m: Mut) => ({ ...m, seq: s })),
      fc.constantFrom('UPSERT', 'drop', 'insert', '', 1).map((op) => (m: Mut) => ({ ...m, op })),
      hostileString.map((k) => (m: Mut) => ({ ...m, [k === 'seq' ? 'x' : k]: 1 })),
      fc.constant((m: Mut) => ({ ...m, table: 'orders', op: 'upsert', key: { order_id: 'not-a-uuid' } })),
      fc.constant((m: Mut) => ({
        ...m,
        table: 'docs',
        op: 'upsert',
        key: { doc_id: 'd' },
        values: { n: 2 ** 40 },
      })),
    ]
    const mutation = fc.tuple(base, fc.oneof(...defects)).map(([m, defect]) => defect(m))
    const body = fc.record({
      clientId: fc.oneof(fc.constantFrom('fz-1', 'fz-2', 'seed'), hostileString),
      mutations: fc.array(mutation, { maxLength: 8 }),
    })
    await unchanged(async () => {
      await fc.assert(
        fc.asyncProperty(body, async (b) => {
          const a = await post('/sync/push', b)
          if (a.status === 200) expectNothingApplied(a)
          else expectTyped4xx(a)
        }),
        { numRuns: 400 },
      )
    }, LOGGED)
  })
})

describe('pull, digest and resolve fuzzing', () => {
  it('pull with arbitrary tables, cursors and limits answers 200 or a typed 400', async () => {
    const cursorJunk = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.jsonValue({ maxDepth: 2 }).map((j) => Buffer.from(JSON.stringify(j)).toString('base64url')),
      fc
        .record({ v: fc.oneof(fc.bigInt().map(String), fc.string()), t: fc.string({ maxLength: 8 }) })
        .map((j) => Buffer.from(JSON.stringify(j)).toString('base64url')),
    )
    const tables = fc.oneof(
      fc.constant(undefined),
      fc
        .array(fc.oneof(fc.constantFrom('orders', 'metrics', 'docs'), hostileString), { maxLength: 4 })
        .map((t) => t.join(',')),
    )
    const limit = fc.oneof(fc.constant(undefined), fc.string({ maxLength: 12 }), fc.integer().map(String))
    await unchanged(async () => {
      await fc.assert(
        fc.asyncProperty(tables, fc.option(cursorJunk, { nil: undefined }), limit, async (t, c, l) => {
          const q = new URLSearchParams()
          if (t !== undefined) q.set('tables', t)
          if (c !== undefined) q.set('cursor', c)
          if (l !== undefined) q.set('limit', l)
          tried += 1
          const a = await send(app, `/sync/pull?${q}`)
          if (a.status === 200) expect(v.is(pullResponse, a.body)).toBe(true)
          else expectTyped4xx(a, 400)
        }),
        { numRuns: 300 },
      )
    })
  })

  it('digest with arbitrary and near-valid bodies answers 200 or a typed 4xx', async () => {
    const body = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.record(
        {
          table: fc.oneof(fc.constantFrom('orders', 'docs'), hostileString),
          buckets: fc.oneof(fc.integer(), fc.double(), fc.constant(1e308), fc.string()),
          bucket: fc.oneof(fc.integer(), fc.double(), fc.string()),
        },
        { requiredKeys: ['table'] },
      ),
    )
    await unchanged(async () => {
      await fc.assert(
        fc.asyncProperty(body, async (b) => {
          const a = await post('/sync/digest', b)
          if (a.status !== 200) expectTyped4xx(a)
        }),
        { numRuns: 300 },
      )
    })
  })

  it('resolve with arbitrary ids and invalid bodies is refused, and resolves nothing', async () => {
    const id = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('1', '0', '-1', '1e3', ...INJECTIONS))
    await unchanged(async () => {
      await fc.assert(
        fc.asyncProperty(id, fc.jsonValue({ maxDepth: 4 }), async (i, b) => {
          fc.pre(!v.is(resolveBody, b))
          tried += 1
          const a = await send(
            app,
            `/sync/conflicts/${encodeURIComponent(i)}/resolve`,
            jsonInit(JSON.stringify(b)),
          )
          expectTyped4xx(a)
        }),
        { numRuns: 200 },
      )
      // A well-formed resolution of a conflict that does not exist.
      expectTyped4xx(await post('/sync/conflicts/999999/resolve', { keep: 'incoming' }), 404, 'not_found')
    })
  })
})

describe('hostile names, keys and values', () => {
  it('injection strings and prototype keys as table names are unknown tables everywhere', async () => {
    await unchanged(async () => {
      for (const name of [...INJECTIONS, ...PROTO_KEYS]) {
        const a = await post('/sync/push', {
          clientId: 'names',
          mutations: [
            {
              seq: 1,
              table: name,
              op: 'upsert',
              key: { metric_id: 'm' },
              values: { value: 1 },
              hlc: validHlc,
            },
          ],
        })
        expectNothingApplied(a, ['unknown_table'])
        tried += 1
        // Pull trims the names of its comma list: 'orders ' is the orders table, not an injection.
        if (!hostileSchema.tables.has(name.trim()))
          expectTyped4xx(
            await send(app, `/sync/pull?tables=${encodeURIComponent(name)}`),
            400,
            'unknown_table',
          )
        expectTyped4xx(await post('/sync/digest', { table: name }), 400, 'unknown_table')
      }
    }, LOGGED)
  })

  it('injection strings and prototype keys as column names are unknown columns', async () => {
    await unchanged(async () => {
      let seq = 0
      for (const col of [...INJECTIONS, ...PROTO_KEYS]) {
        const asValue = `{"seq":${++seq},"table":"metrics","op":"upsert","key":{"metric_id":"m"},"values":{${JSON.stringify(col)}:{"polluted":true}},"hlc":"${validHlc}"}`
        const asKey = `{"seq":${++seq},"table":"metrics","op":"delete","key":{${JSON.stringify(col)}:"m"},"hlc":"${validHlc}"}`
        const a = await post('/sync/push', `{"clientId":"cols","mutations":[${asValue},${asKey}]}`)
        expectNothingApplied(a, ['unknown_column', 'invalid_value'])
        expect((a.body as { results: unknown[] }).results).toHaveLength(2)
      }
      // `__proto__` as a raw JSON key at the envelope and mutation level.
      expectTyped4xx(
        await post('/sync/push', `{"clientId":"p","mutations":[],"__proto__":{"admin":true}}`),
        400,
      )
      expectTyped4xx(
        await post(
          '/sync/push',
          `{"clientId":"p","mutations":[{"seq":1,"table":"metrics","op":"delete","key":{"metric_id":"m"},"hlc":"${validHlc}","__proto__":{"x":1}}]}`,
        ),
        400,
      )
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      expect(({} as Record<string, unknown>).admin).toBeUndefined()
    }, LOGGED)
  })

  it('injection strings as keys and values are stored verbatim, and touch nothing else', async () => {
    // NUL is refused in text by design (PostgreSQL cannot store it): covered with the encodings below.
    const strings = [...INJECTIONS, ...PROTO_KEYS].filter((x) => !x.includes('\u0000'))
    const before = await snap.checksums()
    const a = await post('/sync/push', {
      clientId: 'verbatim',
      mutations: strings.map((s, i) => ({
        seq: i + 1,
        table: 'docs',
        op: 'upsert',
        key: { doc_id: `inj-${s}` },
        values: { title: s, body: { [s]: s } },
        hlc: stamp(200 + i, 'verbatim'),
      })),
    })
    expect(a.status).toBe(200)
    expect(
      (a.body as { results: Array<{ status: string }> }).results.filter((r) => r.status !== 'applied'),
    ).toEqual([])
    const after = await snap.checksums()
    expect(changedTables(before, after)).toEqual([...LOGGED, '_eddy_meta', 'docs'].sort())
    tried += 1
    const pulled = await send(app, '/sync/pull?tables=docs&limit=10000')
    const rows = new Map(
      (
        pulled.body as { changes: Array<{ key: { doc_id: string }; row: Record<string, unknown> }> }
      ).changes.map((c) => [c.key.doc_id, c.row]),
    )
    for (const s of strings) {
      const row = rows.get(`inj-${s}`)
      expect(row?.title).toBe(s)
      expect(JSON.stringify(row?.body)).toBe(JSON.stringify({ [s]: s }))
    }
    expect(internalErrors).toEqual([])
  })
})

describe('numbers, nesting, sizes, encodings', () => {
  it('non-finite and huge numbers as raw JSON are refused', async () => {
    await unchanged(async () => {
      const mut = (seq: string, values: string, key = '{"doc_id":"d"}') =>
        `{"clientId":"nums","mutations":[{"seq":${seq},"table":"docs","op":"upsert","key":${key},"values":${values},"hlc":"${validHlc}"}]}`
      // Envelope fields: a 400 for the whole request.
      for (const seq of ['1e999', '-1e999', '9007199254740993', '1e20', '0.5', '-0', '1E400']) {
        expectTyped4xx(await post('/sync/push', mut(seq, '{"n":1}')), 400, 'bad_request')
      }
      // Values: each mutation rejected with invalid_value.
      let seq = 0
      for (const values of [
        '{"d":1e999}',
        '{"d":-1e999}',
        '{"n":1e999}',
        '{"n":2147483648}',
        '{"n":123456789012345678901234567890}',
        '{"n":1.5}',
        '{"n":"1"}',
        '{"body":1e999}',
      ]) {
        expectNothingApplied(await post('/sync/push', mut(String(++seq), values)), ['invalid_value'])
      }
      expectNothingApplied(await post('/sync/push', mut(String(++seq), '{"n":1}', '{"doc_id":1e999}')), [
        'invalid_value',
      ])
      // NaN and Infinity are not JSON at all.
      for (const bad of ['NaN', 'Infinity', '-Infinity', 'undefined', '0x10']) {
        expectTyped4xx(await post('/sync/push', mut(String(++seq), `{"d":${bad}}`)), 400, 'bad_request')
      }
    }, LOGGED)
  })

  it('deeply nested JSON is refused or rejected, never a crash', async () => {
    await unchanged(async () => {
      const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`
      // The whole body nested: a 400 (or 413 past the byte limit).
      expectTyped4xx(await post('/sync/push', deep(100_000)))
      expectTyped4xx(await post('/sync/push', deep(600_000)), 413, 'too_large')
      // Nested inside a json column, a key, and an envelope field; each a new client's first push,
      // so it is checked (a resent seq is a duplicate and never looked at).
      let client = 0
      const at = (where: string) =>
        `{"clientId":"deep-${++client}","mutations":[{"seq":1,"table":"docs","op":"upsert",${where},"hlc":"${validHlc}"}]}`
      for (const body of [
        at(`"key":{"doc_id":"d"},"values":{"body":${deep(200_000)}}`),
        at(`"key":{"doc_id":${deep(200_000)}},"values":{}`),
        at(`"key":{"doc_id":"d"},"values":{"title":${deep(200_000)}}`),
      ]) {
        const a = await post('/sync/push', body)
        if (a.status === 200) expectNothingApplied(a)
        else expectTyped4xx(a)
      }
      expectTyped4xx(await post('/sync/digest', `{"table":${deep(200_000)}}`), 400)
    }, LOGGED)
  })

  it('oversized bodies, batches and single values are refused before anything is applied', async () => {
    await unchanged(async () => {
      const big = 'x'.repeat(1024 * 1024 + 1)
      const oneValue = JSON.stringify({
        clientId: 'big',
        mutations: [
          {
            seq: 1,
            table: 'docs',
            op: 'upsert',
            key: { doc_id: 'd' },
            values: { title: big },
            hlc: validHlc,
          },
        ],
      })
      expectTyped4xx(await post('/sync/push', oneValue), 413, 'too_large')
      const many = {
        clientId: 'big',
        mutations: Array.from({ length: 1001 }, (_, i) => ({
          seq: i + 1,
          table: 'metrics',
          op: 'delete',
          key: { metric_id: `k${i}` },
          hlc: validHlc,
        })),
      }
      expectTyped4xx(await post('/sync/push', many), 413, 'too_large')
      // A streamed body with no Content-Length, and one whose Content-Length lies.
      const chunk = new TextEncoder().encode('['.repeat(64 * 1024))
      const stream = (): ReadableStream<Uint8Array> => {
        let sent = 0
        return new ReadableStream({
          pull(c) {
            if (sent++ < 40) c.enqueue(chunk)
            else c.close()
          },
        })
      }
      tried += 2
      expectTyped4xx(
        await send(app, '/sync/push', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: stream(),
          duplex: 'half',
        } as RequestInit),
        413,
        'too_large',
      )
      expectTyped4xx(
        await send(app, '/sync/push', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': '10' },
          body: stream(),
          duplex: 'half',
        } as RequestInit),
        413,
        'too_large',
      )
      // Under a larger body limit, a single text value past MAX_TEXT_LENGTH is still rejected.
      tried += 1
      const huge = JSON.stringify({
        clientId: 'big',
        mutations: [
          {
            seq: 1,
            table: 'docs',
            op: 'upsert',
            key: { doc_id: 'd' },
            values: { title: 'y'.repeat(MAX_TEXT_LENGTH + 1) },
            hlc: validHlc,
          },
          {
            seq: 2,
            table: 'docs',
            op: 'upsert',
            key: { doc_id: 'y'.repeat(MAX_TEXT_LENGTH + 1) },
            values: {},
            hlc: validHlc,
          },
        ],
      })
      expectNothingApplied(await send(bigApp, '/sync/push', jsonInit(huge)), ['invalid_value'])
    }, LOGGED)
  })

  it('wrong content types get 415, wrong methods 405, unknown routes 404', async () => {
    await unchanged(async () => {
      const body = JSON.stringify({ clientId: 'ct', mutations: [] })
      for (const type of [
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/jsonp',
        'application/json-seq',
        'text/json',
        'application/xml',
        '',
      ]) {
        for (const path of ['/sync/push', '/sync/digest', '/sync/conflicts/1/resolve']) {
          tried += 1
          expectTyped4xx(await send(app, path, jsonInit(body, type)), 415, 'unsupported_media_type')
        }
      }
      tried += 4
      expectTyped4xx(await send(app, '/sync/push'), 405, 'method_not_allowed')
      expectTyped4xx(await send(app, '/sync/pull', { method: 'PUT', body }), 405, 'method_not_allowed')
      expectTyped4xx(await send(app, '/sync/../_eddy_clients'), 404, 'not_found')
      expectTyped4xx(await send(app, '/sync/push/extra', jsonInit(body)), 404, 'not_found')
    })
  })

  it('bodies that are not UTF-8, and text with lone surrogates or NUL, never crash the edge', async () => {
    await unchanged(async () => {
      tried += 1
      const bytes = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])
      expectTyped4xx(
        await send(app, '/sync/push', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: bytes,
        }),
        400,
      )
      let seq = 0
      for (const text of ['\\ud800', '\\udfff', 'a\\ud800b', '\\u0000', 'nul\\u0000byte']) {
        const a = await post(
          '/sync/push',
          `{"clientId":"utf","mutations":[{"seq":${++seq},"table":"docs","op":"upsert","key":{"doc_id":"${text}"},"values":{"title":"${text}"},"hlc":"${validHlc}"}]}`,
        )
        if (a.status === 200) expectNothingApplied(a, ['invalid_value'])
        else expectTyped4xx(a)
      }
    }, LOGGED)
  })
})

describe('clocks and sequence numbers', () => {
  it('garbage HLCs are malformed envelopes; far-future ones are rejected as clock_skew', async () => {
    await unchanged(async () => {
      const m = (hlc: unknown) => ({
        clientId: 'clock',
        mutations: [
          { seq: 1, table: 'metrics', op: 'upsert', key: { metric_id: 'm' }, values: { value: 9 }, hlc },
        ],
      })
      const wall = String(NOW - 1000).padStart(15, '0')
      expect(m(`${wall}:00000:x`).mutations[0]?.hlc).toMatch(/^\d{15}:/)
      for (const hlc of [
        '',
        'now',
        '2026-06-01T00:00:00.000Z',
        `${NOW}`,
        `${wall}:00000`,
        `${wall}:0000A:x`,
        `${wall}:0000:x`,
        `${wall}:00000:bad node`,
        `${wall}:00000:${'x'.repeat(65)}`,
        `0${wall}:00000:x`,
        `${wall.slice(1)}:00000:x`,
        `${wall}:00000:x\n`,
        `-${wall.slice(1)}:00000:x`,
        12345,
        null,
        { wall: NOW },
      ]) {
        expectTyped4xx(await post('/sync/push', m(hlc)), 400, 'bad_request')
      }
      let seq = 0
      for (const wall of [NOW + 5 * 60_000 + 1, NOW + 86_400_000, 999_999_999_999_999]) {
        const a = await post('/sync/push', {
          clientId: 'clock',
          mutations: [
            {
              seq: ++seq,
              table: 'metrics',
              op: 'upsert',
              key: { metric_id: 'm' },
              values: { value: 9 },
              hlc: formatHlc({ wall, counter: 0, node: 'clock' }),
            },
          ],
        })
        expectNothingApplied(a, ['clock_skew'])
      }
    }, LOGGED)
  })

  it('a seq going backwards is a duplicate: never applied, lastSeq unchanged', async () => {
    const first = await post('/sync/push', {
      clientId: 'backwards',
      mutations: [
        {
          seq: 10,
          table: 'metrics',
          op: 'upsert',
          key: { metric_id: 'b' },
          values: { value: 1 },
          hlc: stamp(300, 'b'),
        },
      ],
    })
    expect((first.body as { lastSeq: number }).lastSeq).toBe(10)
    await unchanged(async () => {
      for (const seq of [10, 9, 5, 1]) {
        const a = await post('/sync/push', {
          clientId: 'backwards',
          mutations: [
            {
              seq,
              table: 'metrics',
              op: 'upsert',
              key: { metric_id: 'b' },
              values: { value: 2 },
              hlc: stamp(400 + seq, 'b'),
            },
          ],
        })
        expect(a.body).toEqual({ lastSeq: 10, results: [{ seq, status: 'duplicate' }] })
      }
    }, ['(sequences)', '_eddy_sync_events'])
  })
})
