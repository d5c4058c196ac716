import { tableFromIPC } from 'apache-arrow'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ArrowTableLike, arrowToRows } from '../../shared/arrow-rows.ts'
import { formatHlc } from '../../shared/hlc.ts'
import type { Change, PullResponse, PushResponse } from '../../shared/protocol.ts'
import { defineSchema, type Row, type Schema, type Table } from '../../shared/schema.ts'
import { createSyncApp } from '../http/app.ts'
import { ARROW_STREAM, acceptsArrow } from '../pull/arrow-pull.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'

/**
 * The Arrow bulk pull's suite, run against each warehouse (`describeArrowPull('duckdb', target)`):
 * once through the adapter's column reader (`pullColumns`), once through the generic conversion
 * of `pull`'s rows, and a comparison of the two streams byte for byte on the same data.
 */
export interface ArrowPullTarget {
  /** A fresh, empty store with this schema (the suite calls `migrate`). */
  open(schema: Schema): Promise<Warehouse>
}

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
        exact: { type: 'decimal(38,18)' },
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

export function describeArrowPull(name: string, target: ArrowPullTarget): void {
  // The adapter's column reader (`pullColumns`), and the generic conversion of `pull`'s rows that
  // adapters without one use: the same cases through both, so the two stay equal.
  describe.each([
    ['column reader', (w: Warehouse) => w],
    ['rows of pull', rowsOnly],
  ])(`Arrow bulk pull (in-process, ${name}, %s)`, (_name, adapt) => {
    let w: Warehouse
    let app: ReturnType<typeof createSyncApp>
    let seq = 0

    beforeAll(async () => {
      w = await target.open(schema)
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
      const res = await app.request(`/sync/pull?${query}`, {
        headers: { accept: ARROW_STREAM, ...auth(tok) },
      })
      if (res.status !== 200)
        return { status: res.status, rows: [], cursor: null, hasMore: null, resume: null }
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
            exact: '-12345678901234567890.123456789012345678',
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
        {
          table: 'things',
          op: 'upsert',
          key: { id: 4 },
          values: { big: 7, day: '1969-12-31' },
          hlc: stamp(5),
        },
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
      await push([
        { table: 'things', op: 'upsert', key: { id: 2 }, values: { name: 'later' }, hlc: stamp(10) },
      ])
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
      await push([
        { table: 'things', op: 'upsert', key: { id: 9 }, values: { name: 'after' }, hlc: stamp(20) },
      ])
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
        {
          table: 'notes',
          op: 'upsert',
          key: { org: 'globex', id: 1 },
          values: { body: 'g' },
          hlc: stamp(31),
        },
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

  // The same data read both ways must give the same stream, byte for byte, with the same headers:
  // a client cannot tell which path answered.
  describe(`Arrow bulk pull (in-process, ${name}): column reader and rows of pull, byte for byte`, () => {
    let w: Warehouse
    let reader: ReturnType<typeof createSyncApp>
    let rows: ReturnType<typeof createSyncApp>
    let readerPages = 0

    beforeAll(async () => {
      w = await target.open(schema)
      await w.migrate()
      const pullColumns = w.pullColumns
      if (pullColumns === undefined) throw new Error(`${name} has no column reader`)
      const counted: Warehouse = {
        ...w,
        pullColumns: (req) => {
          readerPages += 1
          return pullColumns(req)
        },
      }
      reader = createSyncApp({ schema, warehouse: counted, now: () => NOW, auth: { secret: SECRET } })
      rows = createSyncApp({ schema, warehouse: rowsOnly(w), now: () => NOW, auth: { secret: SECRET } })
    })
    afterAll(async () => {
      await w.close()
    })

    it('answers the same bytes and headers, page by page, at any page size, for any tenant', async () => {
      const sign = (claims: Record<string, unknown>): Promise<string> =>
        new SignJWT(claims)
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('bob')
          .setIssuedAt()
          .setExpirationTime('1h')
          .sign(new TextEncoder().encode(SECRET))
      const tokens = {
        admin: await sign({ role: 'admin' }),
        acme: await sign({ tenant: 'acme' }),
        none: await sign({}),
      }
      let seq = 0
      const push = async (mutations: Record<string, unknown>[], tok = tokens.admin): Promise<void> => {
        const res = await reader.request('/sync/push', {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
          body: JSON.stringify({ clientId: 'c2', mutations: mutations.map((m) => ({ seq: ++seq, ...m })) }),
        })
        expect(res.status).toBe(200)
        const body = (await res.json()) as PushResponse
        expect(body.results.filter((r) => r.status !== 'applied')).toEqual([])
      }
      const cells = variedThings()
      let n = 0
      await push(
        cells.map((values, i) => ({
          table: 'things',
          op: 'upsert',
          key: { id: i + 1 },
          values,
          hlc: stamp(++n, 'c2'),
        })),
      )
      // tombstones, and rows written again later (so versions leave the key order)
      await push([
        ...[3, 17, 40, 41, 99].map((id) => ({
          table: 'things',
          op: 'delete',
          key: { id },
          hlc: stamp(++n, 'c2'),
        })),
        ...[5, 60].map((id) => ({
          table: 'things',
          op: 'upsert',
          key: { id },
          values: { name: `again ${id} ✓`, big: id },
          hlc: stamp(++n, 'c2'),
        })),
      ])
      for (const org of ['acme', 'globex'])
        await push(
          Array.from({ length: 12 }, (_, i) => ({
            table: 'notes',
            op: i === 11 ? 'delete' : 'upsert',
            key: { org, id: i % 11 },
            ...(i === 11 ? {} : { values: { body: i % 4 === 0 ? null : `${org} ${i} ünïcödé, 'quoted'` } }),
            hlc: stamp(++n, 'c2'),
          })),
        )

      const pages = async (app: ReturnType<typeof createSyncApp>, query: string, tok: string) => {
        const out: Array<{ bytes: Buffer; headers: (string | null)[] }> = []
        let cursor = ''
        for (;;) {
          const res = await app.request(`/sync/pull?${query}${cursor === '' ? '' : `&cursor=${cursor}`}`, {
            headers: { accept: ARROW_STREAM, authorization: `Bearer ${tok}` },
          })
          expect(res.status).toBe(200)
          const headers = [
            'eddy-cursor',
            'eddy-has-more',
            'eddy-rows',
            'eddy-max-hlc',
            'eddy-resume-cursor',
          ].map((h) => res.headers.get(h))
          out.push({ bytes: Buffer.from(await res.arrayBuffer()), headers })
          cursor = res.headers.get('eddy-cursor') ?? ''
          if (res.headers.get('eddy-has-more') !== 'true') return out
        }
      }
      let compared = 0
      for (const [who, tok] of Object.entries(tokens))
        for (const table of ['things', 'notes'])
          for (const limit of table === 'notes' ? ['1', ''] : ['5', '64', '']) {
            const query = `tables=${table}${limit === '' ? '' : `&limit=${limit}`}`
            const a = await pages(reader, query, tok)
            const b = await pages(rows, query, tok)
            const where = `${table}, limit ${limit || 'default'}, as ${who}`
            expect(
              a.map((p) => p.headers),
              where,
            ).toEqual(b.map((p) => p.headers))
            for (const [i, page] of a.entries())
              expect(page.bytes.equals(b[i]?.bytes ?? Buffer.alloc(0)), `${where}, page ${i + 1}`).toBe(true)
            // a caller without a tenant reads no scoped rows, and the edge answers that without a read
            if (!(who === 'none' && table === 'notes')) compared += a.length
          }
      // every page above came from the column reader, and the data was read in many pages
      expect(readerPages).toBe(compared)
      expect(compared).toBeGreaterThan(100)
    })
  })
}

/** Deterministic rows of `things` covering every type's edges, nulls included (a small PRNG). */
function variedThings(): Row[] {
  let a = 0x5eed
  const rand = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
  const hex = (k: number): string =>
    Array.from({ length: k }, () => Math.floor(rand() * 16).toString(16)).join('')
  const out: Row[] = []
  for (let i = 0; i < 120; i++) {
    const maybe = <T>(v: T): T | null => (rand() < 0.2 ? null : v)
    out.push({
      big: maybe(
        pick<number | string>([
          0,
          -1,
          2 ** 53 - 1,
          '9223372036854775807',
          '-9223372036854775808',
          Math.floor(rand() * 1e9),
        ]),
      ),
      ratio: maybe(pick([0, 0.1, -2.5e-7, 1.7976931348623157e308, 5e-324, rand() * 1e6 - 5e5])),
      price: maybe(pick(['0.00', '-0.01', '9999999999.99', (rand() * 1e6).toFixed(2)])),
      exact: maybe(pick(['0.000000000000000001', '-99999999999999999999.999999999999999999', '1.5'])),
      name: maybe(
        pick([
          '',
          'plain',
          'n,0,1,', // what the PostgreSQL reader's packed header is made of
          'Ünïcödé — 名前 🚀 e\u0301',
          `long ${'x'.repeat(300)} end`,
          `${hex(6)} ${i}`,
        ]),
      ),
      flag: maybe(rand() < 0.5),
      day: maybe(pick(['1970-01-01', '1969-12-31', '0001-01-01', '9999-12-31', '2024-02-29'])),
      at: maybe(
        pick([
          '1970-01-01T00:00:00.000Z',
          '1969-12-31T23:59:59.999Z',
          '0001-01-01T00:00:00.000Z',
          '9999-12-31T23:59:59.999Z',
          new Date(Date.UTC(2025, 0, 1) + Math.floor(rand() * 3e10)).toISOString(),
        ]),
      ),
      ref: maybe(`${hex(8)}-${hex(4)}-4${hex(3)}-8${hex(3)}-${hex(12)}`),
      doc: maybe(
        pick<unknown>([{}, [], { a: [1, 'x', null], ключ: '🚀' }, 'text "quoted" \\ back', 1e21, true]),
      ),
    })
  }
  return out
}
