import { tableFromIPC } from 'apache-arrow'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ArrowTableLike, arrowToRows } from '../client/arrow-rows.ts'
import { formatHlc } from '../shared/hlc.ts'
import type { Change, PullResponse, PushResponse } from '../shared/protocol.ts'
import { defineSchema, type Row, type Table } from '../shared/schema.ts'
import { createSyncApp } from './app.ts'
import { ARROW_STREAM, acceptsArrow } from './arrow-pull.ts'
import { openDuckDbWarehouse } from './duckdb-warehouse.ts'
import type { Warehouse } from './warehouse.ts'

const NOW = Date.UTC(2026, 5, 1)
const stamp = (n: number, node = 'c1'): string => formatHlc({ wall: NOW - 60_000 + n, counter: 0, node })
const SECRET = 'a-test-secret-of-enough-length'

const schema = defineSchema({
  tables: {
    things: {
      primaryKey: ['id'],
      columns: {
        id: { type: 'integer' },
        big: { type: 'bigint' },
        ratio: { type: 'double' },
        price: { type: 'decimal(12,2)' },
        name: { type: 'text' },
        flag: { type: 'boolean' },
        day: { type: 'date' },
        at: { type: 'timestamp' },
        ref: { type: 'uuid' },
        doc: { type: 'json' },
      },
    },
    notes: {
      primaryKey: ['org', 'id'],
      columns: { org: { type: 'text' }, id: { type: 'integer' }, body: { type: 'text' } },
      tenantColumn: 'org',
    },
  },
})
const things = schema.table('things')

interface ArrowPage {
  status: number
  rows: Row[]
  cursor: string | null
  hasMore: string | null
  resume: string | null
}

/** An Arrow answer back to JSON-pull changes (the wire form), for comparing the two forms. */
function asChanges(table: Table, rows: readonly Row[]): Change[] {
  return rows.map((r) => {
    const key: Row = {}
    for (const k of table.primaryKey) key[k] = r[k] ?? null
    const row: Row = {}
    for (const c of table.columns) {
      const v = r[c.name] ?? null
      row[c.name] = c.type === 'json' && typeof v === 'string' ? JSON.parse(v) : v
    }
    return { table: table.name, key, row: r._deleted === true ? null : row, hlc: String(r._hlc) }
  })
}

/** The warehouse as one without a column reader: the Arrow pull converts `pull`'s rows instead. */
function rowsOnly(w: Warehouse): Warehouse {
  const { pullColumns: _, ...rest } = w
  return rest
}

// DuckDB answers Arrow pulls from its column reader (`pullColumns`); the same suite runs through
// the generic conversion of `pull`'s rows, which every other adapter uses, so the two stay equal.
describe.each([
  ['column reader', (w: Warehouse) => w],
  ['rows of pull', rowsOnly],
])('Arrow bulk pull (in-process, DuckDB, %s)', (_name, adapt) => {
  let w: Warehouse
  let app: ReturnType<typeof createSyncApp>
  let seq = 0

  beforeAll(async () => {
    w = await openDuckDbWarehouse({ schema })
    await w.migrate()
    app = createSyncApp({ schema, warehouse: adapt(w), now: () => NOW, auth: { secret: SECRET } })
  })
  afterAll(async () => {
    await w.close()
  })

  const token = (claims: Record<string, unknown>): Promise<string> =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET))
  let admin = ''
  const auth = (tok = admin): Record<string, string> => ({ authorization: `Bearer ${tok}` })

  const push = async (mutations: unknown[], tok = admin): Promise<PushResponse> => {
    const res = await app.request('/sync/push', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth(tok) },
      body: JSON.stringify({
        clientId: 'c1',
        mutations: mutations.map((m) => ({ seq: ++seq, ...(m as object) })),
      }),
    })
    expect(res.status).toBe(200)
    return (await res.json()) as PushResponse
  }
  const jsonPull = async (query: string, tok = admin): Promise<PullResponse> => {
    const res = await app.request(`/sync/pull?${query}`, { headers: auth(tok) })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    return (await res.json()) as PullResponse
  }
  const arrowPull = async (query: string, tok = admin): Promise<ArrowPage> => {
    const res = await app.request(`/sync/pull?${query}`, { headers: { accept: ARROW_STREAM, ...auth(tok) } })
    if (res.status !== 200) return { status: res.status, rows: [], cursor: null, hasMore: null, resume: null }
    expect(res.headers.get('content-type')).toBe(ARROW_STREAM)
    expect(res.headers.get('vary')).toMatch(/accept/i)
    const table = tableFromIPC(new Uint8Array(await res.arrayBuffer()))
    return {
      status: res.status,
      rows: arrowToRows(table as unknown as ArrowTableLike),
      cursor: res.headers.get('eddy-cursor'),
      hasMore: res.headers.get('eddy-has-more'),
      resume: res.headers.get('eddy-resume-cursor'),
    }
  }

  it('tells an Arrow Accept from others', () => {
    expect(acceptsArrow(undefined)).toBe(false)
    expect(acceptsArrow('application/json')).toBe(false)
    expect(acceptsArrow('application/json, application/vnd.apache.arrow.stream;q=0.9')).toBe(true)
    expect(acceptsArrow('Application/Vnd.Apache.Arrow.Stream')).toBe(true)
    expect(acceptsArrow('application/vnd.apache.arrow.file')).toBe(false)
  })

  it('answers the same rows as JSON pull, typed per the schema, tombstones included', async () => {
    admin = await token({ role: 'admin' })
    const r = await push([
      {
        table: 'things',
        op: 'upsert',
        key: { id: 1 },
        values: {
          big: '9007199254740993',
          ratio: 0.25,
          price: '1234567890.12',
          name: 'Ada — é名 🚀',
          flag: true,
          day: '2024-02-29',
          at: '2024-03-01T12:34:56.789Z',
          ref: '00000000-0000-4000-8000-000000000001',
          doc: { a: [1, 'x'], b: null },
        },
        hlc: stamp(1),
      },
      { table: 'things', op: 'upsert', key: { id: 2 }, values: { name: 'nulls elsewhere' }, hlc: stamp(2) },
      {
        table: 'things',
        op: 'upsert',
        key: { id: 3 },
        values: { big: -5, flag: false, name: 'gone' },
        hlc: stamp(3),
      },
      { table: 'things', op: 'delete', key: { id: 3 }, hlc: stamp(4) },
      { table: 'things', op: 'upsert', key: { id: 4 }, values: { big: 7, day: '1969-12-31' }, hlc: stamp(5) },
    ])
    expect(r.results.map((x) => x.status)).toEqual(['applied', 'applied', 'applied', 'applied', 'applied'])

    const json = await jsonPull('tables=things')
    const arrow = await arrowPull('tables=things')
    expect(arrow.status).toBe(200)
    expect(arrow.hasMore).toBe('false')
    const decoded = asChanges(things, arrow.rows).map((c) => ({
      ...c,
      // bigint past 2^53 is text on the JSON wire, an Int64 in Arrow
      row: c.row === null ? null : { ...c.row, big: c.row.big === null ? null : String(c.row.big) },
    }))
    const expected = json.changes.map((c) => ({
      ...c,
      row: c.row === null ? null : { ...c.row, big: c.row.big === null ? null : String(c.row.big) },
    }))
    // a tombstone carries its key and nulls elsewhere
    expect(decoded.find((c) => c.key.id === 3)?.row).toBeNull()
    expect(arrow.rows.find((x) => x.id === 3)).toMatchObject({ id: 3, name: null, _deleted: true })
    expect(decoded).toEqual(expected)
    expect(decoded).toHaveLength(4)
  })

  it('pages by the same cursor rules, and the last cursor continues as JSON pull would', async () => {
    const seen: Row[] = []
    let cursor = ''
    let pages = 0
    for (;;) {
      const page = await arrowPull(`tables=things&limit=2${cursor === '' ? '' : `&cursor=${cursor}`}`)
      expect(page.status).toBe(200)
      seen.push(...page.rows)
      cursor = page.cursor ?? ''
      pages += 1
      if (page.hasMore !== 'true') break
    }
    expect(pages).toBe(2)
    expect(seen.map((x) => x.id)).toEqual((await jsonPull('tables=things')).changes.map((c) => c.key.id))
    // nothing after the last cursor, until a new change
    expect((await arrowPull(`tables=things&cursor=${cursor}`)).rows).toEqual([])
    await push([{ table: 'things', op: 'upsert', key: { id: 2 }, values: { name: 'later' }, hlc: stamp(10) }])
    const next = await arrowPull(`tables=things&cursor=${cursor}`)
    expect(next.rows.map((x) => [x.id, x.name])).toEqual([[2, 'later']])
    // an Arrow cursor is a JSON cursor for the same table
    expect((await jsonPull(`tables=things&cursor=${cursor}`)).changes.map((c) => c.key.id)).toEqual([2])
  })

  it('answers a resume cursor for JSON pulls over the named tables, at the high-water mark', async () => {
    const page = await arrowPull('tables=things&resume=things,notes')
    expect(page.resume).not.toBeNull()
    const resume = page.resume ?? ''
    expect((await jsonPull(`tables=things,notes&cursor=${resume}`)).changes).toEqual([])
    await push([{ table: 'things', op: 'upsert', key: { id: 9 }, values: { name: 'after' }, hlc: stamp(20) }])
    const after = await jsonPull(`tables=things,notes&cursor=${resume}`)
    expect(after.changes.map((c) => c.key)).toEqual([{ id: 9 }])
    // without `resume`, no resume cursor
    expect((await arrowPull('tables=things')).resume).toBeNull()
  })

  it('refuses what is not one known table, and bad cursors, with the error envelope', async () => {
    const expectError = async (query: string, status: number, code: string): Promise<void> => {
      const res = await app.request(`/sync/pull?${query}`, { headers: { accept: ARROW_STREAM, ...auth() } })
      expect(res.status).toBe(status)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code)
    }
    await expectError('tables=things,notes', 400, 'bad_request')
    await expectError('', 400, 'bad_request')
    await expectError('tables=nope', 400, 'unknown_table')
    await expectError('tables=things&resume=things,nope', 400, 'unknown_table')
    await expectError('tables=things&cursor=%21%21', 400, 'bad_cursor')
    await expectError('tables=things&limit=0', 400, 'bad_request')
    // a cursor issued for other tables
    const other = (await jsonPull('tables=things,notes')).cursor
    await expectError(`tables=things&cursor=${other}`, 400, 'bad_cursor')
    // auth applies as to JSON pull
    const res = await app.request('/sync/pull?tables=things', { headers: { accept: ARROW_STREAM } })
    expect(res.status).toBe(401)
  })

  it('keeps JSON pull as it was for any other Accept', async () => {
    for (const accept of ['application/json', '*/*', 'application/vnd.apache.arrow.file']) {
      const res = await app.request('/sync/pull?tables=things,notes', { headers: { accept, ...auth() } })
      expect(res.status).toBe(200)
      const body = (await res.json()) as PullResponse
      expect(Object.keys(body).sort()).toEqual(['changes', 'cursor', 'hasMore'])
      expect(res.headers.get('eddy-cursor')).toBeNull()
      expect(res.headers.get('vary')).toMatch(/accept/i)
    }
  })

  it('scopes a tenant table by the caller’s tenant claim', async () => {
    const acme = await token({ tenant: 'acme' })
    const globex = await token({ tenant: 'globex' })
    const none = await token({})
    await push([
      { table: 'notes', op: 'upsert', key: { org: 'acme', id: 1 }, values: { body: 'a' }, hlc: stamp(30) },
    ])
    await push([
      { table: 'notes', op: 'upsert', key: { org: 'globex', id: 1 }, values: { body: 'g' }, hlc: stamp(31) },
    ])
    const mine = await arrowPull('tables=notes', acme)
    expect(mine.rows.map((x) => [x.org, x.body])).toEqual([['acme', 'a']])
    expect((await arrowPull('tables=notes', globex)).rows.map((x) => x.org)).toEqual(['globex'])
    expect((await arrowPull('tables=notes', none)).rows).toEqual([])
    expect((await arrowPull('tables=notes')).rows.map((x) => x.org)).toEqual(['acme', 'globex'])
    // unscoped tables read the same for every tenant
    expect((await arrowPull('tables=things', acme)).rows.length).toBe(
      (await arrowPull('tables=things')).rows.length,
    )
  })
})
