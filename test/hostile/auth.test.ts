import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSyncApp } from '../../edge/http/app.ts'
import { ARROW_STREAM } from '../../edge/pull/arrow-pull.ts'
import { bucketHashes, canonicalKey } from '../../shared/digest.ts'
import { defineSchema } from '../../shared/schema.ts'
import { type Answer, expectNothingApplied, expectTyped4xx, jsonInit, now, send, stamp } from './fixtures.ts'
import { changedTables, openSnapshotWarehouse, type SnapshotWarehouse } from './snapshot-warehouse.ts'

/**
 * Auth and tenants on the real edge (DuckDB file, checksummed). Bad tokens are refused on every route
 * but health; one tenant can neither write nor see another's rows, digests or conflicts; only admins
 * read the audit trail or resolve conflicts; a clientId belongs to the first subject that pushed it.
 * Refusals look the same whether or not the thing asked about exists.
 */
const SECRET = 'hostile-test-secret-0123456789abcdef'
const enc = new TextEncoder()

/** The tenant column is part of each key, so one tenant's keys never collide with another's. `board` is shared. */
const schema = defineSchema({
  tables: {
    accounts: {
      primaryKey: ['tenant_id', 'id'],
      columns: { tenant_id: { type: 'text' }, id: { type: 'integer' }, name: { type: 'text' } },
      tenantColumn: 'tenant_id',
    },
    tickets: {
      primaryKey: ['tenant_id', 'id'],
      columns: { tenant_id: { type: 'text' }, id: { type: 'integer' }, title: { type: 'text' } },
      conflict: 'manual',
      tenantColumn: 'tenant_id',
    },
    /** Shared by every tenant: rows are common, a conflict belongs to the tenant whose write lost. */
    board: {
      primaryKey: ['id'],
      columns: { id: { type: 'integer' }, note: { type: 'text' } },
      conflict: 'manual',
    },
  },
})

async function token(
  claims: Record<string, unknown>,
  opts: { secret?: string; alg?: string; exp?: number } = {},
) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256' }).setIssuedAt()
  if (opts.exp !== undefined) jwt.setExpirationTime(opts.exp)
  return jwt.sign(enc.encode(opts.secret ?? SECRET))
}

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')

let snap: SnapshotWarehouse
let app: ReturnType<typeof createSyncApp>
const errors: unknown[] = []
const T: Record<'alice' | 'bob' | 'adminA' | 'adminB', string> = {
  alice: '',
  bob: '',
  adminA: '',
  adminB: '',
}

/** Requests sent after the setup: bad tokens, and tenant, admin and ownership probes (controls included). */
let requests = 0
let badTokens = 0

const call = (tok: string | undefined, path: string, init: RequestInit = {}): Promise<Answer> => {
  requests += 1
  const headers = new Headers(init.headers)
  if (tok !== undefined) headers.set('authorization', tok.includes(' ') ? tok : `Bearer ${tok}`)
  return send(app, path, { ...init, headers })
}
const postAs = (tok: string | undefined, path: string, body: unknown): Promise<Answer> =>
  call(tok, path, jsonInit(JSON.stringify(body)))

const mut = (seq: number, table: string, op: 'upsert' | 'delete', key: object, values?: object) => ({
  seq,
  table,
  op,
  key,
  ...(values === undefined ? {} : { values }),
  hlc: stamp(1000 + seq, 'c'),
})

async function unchanged(fn: () => Promise<void>, allowed: readonly string[] = []): Promise<void> {
  const before = await snap.checksums()
  await fn()
  expect(changedTables(before, await snap.checksums()).filter((t) => !allowed.includes(t))).toEqual([])
  expect(errors).toEqual([])
}

beforeAll(async () => {
  snap = await openSnapshotWarehouse(schema)
  app = createSyncApp({
    schema,
    warehouse: snap.warehouse,
    now,
    auth: { secret: SECRET },
    onError: (e) => errors.push(e),
  })
  T.alice = await token({ sub: 'alice', tenant: 'A' })
  T.bob = await token({ sub: 'bob', tenant: 'B' })
  T.adminA = await token({ sub: 'root-a', tenant: 'A', role: 'admin' })
  T.adminB = await token({ sub: 'root-b', tenant: 'B', roles: ['admin'] })
  // Tenant A: two accounts, a ticket and a conflict on it; tenant B: one account.
  const a = await postAs(T.alice, '/sync/push', {
    clientId: 'alice-tab',
    mutations: [
      {
        ...mut(1, 'accounts', 'upsert', { tenant_id: 'A', id: 1 }, { name: 'a-secret' }),
        hlc: stamp(10, 'a'),
      },
      {
        ...mut(2, 'accounts', 'upsert', { tenant_id: 'A', id: 2 }, { name: 'a-other' }),
        hlc: stamp(11, 'a'),
      },
      { ...mut(3, 'tickets', 'upsert', { tenant_id: 'A', id: 1 }, { title: 'new' }), hlc: stamp(12, 'a') },
      { ...mut(4, 'tickets', 'upsert', { tenant_id: 'A', id: 1 }, { title: 'old' }), hlc: stamp(5, 'a') },
    ],
  })
  expect((a.body as { results: Array<{ status: string }> }).results.map((r) => r.status)).toEqual([
    'applied',
    'applied',
    'applied',
    'conflict',
  ])
  const b = await postAs(T.bob, '/sync/push', {
    clientId: 'bob-tab',
    mutations: [
      { ...mut(1, 'accounts', 'upsert', { tenant_id: 'B', id: 1 }, { name: 'b-own' }), hlc: stamp(20, 'b') },
    ],
  })
  expect(b.status).toBe(200)
  requests = 0
})

afterAll(async () => {
  console.log(
    `auth: ${badTokens} requests with bad tokens (all 401), ${requests - badTokens} tenant, admin and ownership probes`,
  )
  await snap.close()
})

describe('tokens', () => {
  it('refuses missing, malformed, forged, expired, alg:none and wrong-algorithm tokens on every route', async () => {
    const header = b64({ alg: 'none', typ: 'JWT' })
    const payload = b64({ sub: 'root', tenant: 'A', role: 'admin' })
    const [h, , s] = T.adminA.split('.')
    const bad: Array<string | undefined> = [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      'Basic YWxpY2U6cGFzcw==',
      'Bearer not-a-jwt',
      `Bearer ${header}.${payload}.`,
      `Bearer ${header}.${payload}`,
      `Bearer ${b64({ alg: 'HS256' })}.${payload}.${s}`,
      `Bearer ${h}.${payload}.${s}`,
      await token({ sub: 'root', role: 'admin' }, { secret: 'another-secret-0123456789abcdef' }),
      await token({ sub: 'root', role: 'admin' }, { exp: Math.floor(Date.now() / 1000) - 60 }),
      await token({ sub: 'root', role: 'admin' }, { alg: 'HS512' }),
      await token({ tenant: 'A', role: 'admin' }),
      await token({ sub: '', role: 'admin' }),
      await token({ sub: 'root', tenant: { $ne: null } }),
      `Bearer ${T.adminA}x`,
      `Bearer ${T.adminA} ${T.adminA}`,
    ]
    const routes: Array<[string, RequestInit]> = [
      [
        '/sync/push',
        jsonInit(
          JSON.stringify({
            clientId: 'x',
            mutations: [mut(1, 'accounts', 'delete', { tenant_id: 'A', id: 1 })],
          }),
        ),
      ],
      ['/sync/pull', {}],
      ['/sync/pull?tables=accounts', {}],
      ['/sync/digest', jsonInit(JSON.stringify({ table: 'accounts' }))],
      ['/sync/conflicts', {}],
      ['/sync/events', {}],
      ['/sync/conflicts/1/resolve', jsonInit(JSON.stringify({ keep: 'incoming' }))],
    ]
    let tried = 0
    await unchanged(async () => {
      for (const tok of bad) {
        for (const [path, init] of routes) {
          const a = await call(tok, path, init)
          expectTyped4xx(a, 401, 'unauthorized')
          tried += 1
        }
      }
    })
    badTokens = tried
    // Health stays open; a good token still works (the refusals above were about the tokens).
    expect((await call(undefined, '/sync/health')).status).toBe(200)
    expect((await call(T.alice, '/sync/pull?tables=accounts')).status).toBe(200)
  })

  it('a clientId belongs to the subject that first pushed it', async () => {
    await unchanged(async () => {
      const a = await postAs(T.bob, '/sync/push', {
        clientId: 'alice-tab',
        mutations: [mut(99, 'accounts', 'upsert', { tenant_id: 'B', id: 7 }, { name: 'hijack' })],
      })
      expectTyped4xx(a, 403, 'forbidden')
      // Even an admin of another tenant cannot push as alice's client.
      expectTyped4xx(
        await postAs(T.adminB, '/sync/push', { clientId: 'alice-tab', mutations: [] }),
        403,
        'forbidden',
      )
    })
  })
})

describe('tenants', () => {
  it("tenant B cannot write tenant A's rows, and the refusal is the same whether the key exists", async () => {
    await unchanged(async () => {
      const attempt = (key: object, values?: object, op: 'upsert' | 'delete' = 'upsert') =>
        postAs(T.bob, '/sync/push', {
          clientId: 'bob-tab',
          mutations: [mut(50, 'accounts', op, key, values)],
        })
      const existing = await attempt({ tenant_id: 'A', id: 1 }, { name: 'pwned' })
      const missing = await attempt({ tenant_id: 'A', id: 424242 }, { name: 'pwned' })
      expectTyped4xx(existing, 403, 'forbidden')
      expect(missing).toEqual(existing)
      const delExisting = await attempt({ tenant_id: 'A', id: 2 }, undefined, 'delete')
      const delMissing = await attempt({ tenant_id: 'A', id: 434343 }, undefined, 'delete')
      expectTyped4xx(delExisting, 403, 'forbidden')
      expect(delMissing).toEqual(delExisting)
      // An injection-shaped tenant value is just another tenant.
      expectTyped4xx(await attempt({ tenant_id: "B' OR '1'='1", id: 1 }, { name: 'x' }), 403, 'forbidden')
      // A tx group that mixes an allowed write with a foreign one applies neither.
      const mixed = await postAs(T.bob, '/sync/push', {
        clientId: 'bob-tab',
        mutations: [
          { ...mut(60, 'accounts', 'upsert', { tenant_id: 'B', id: 9 }, { name: 'ok' }), tx: 't1' },
          { ...mut(61, 'accounts', 'upsert', { tenant_id: 'A', id: 1 }, { name: 'pwned' }), tx: 't1' },
        ],
      })
      expectTyped4xx(mixed, 403, 'forbidden')
    })
    // Moving one's own row into another tenant: refused (as a key/values mismatch, before any tenant check).
    await unchanged(async () => {
      const move = await postAs(T.bob, '/sync/push', {
        clientId: 'bob-tab',
        mutations: [mut(70, 'accounts', 'upsert', { tenant_id: 'B', id: 1 }, { tenant_id: 'A' })],
      })
      if (move.status === 200) expectNothingApplied(move)
      else expectTyped4xx(move, 403, 'forbidden')
    }, ['(sequences)', '_eddy_clients', '_eddy_sync_events'])
  })

  it("tenant B's pulls, digests and conflicts show nothing of tenant A", async () => {
    await unchanged(async () => {
      const pulled = await call(T.bob, '/sync/pull?tables=accounts,tickets')
      const changes = (pulled.body as { changes: Array<{ key: Record<string, unknown>; row: unknown }> })
        .changes
      expect(changes.map((c) => c.key)).toEqual([{ tenant_id: 'B', id: 1 }])
      expect(JSON.stringify(pulled.body)).not.toContain('a-secret')
      // A cursor A was given, replayed by B, still yields only B's rows.
      const aPull = await call(T.alice, '/sync/pull?tables=accounts,tickets')
      const aCursor = (aPull.body as { cursor: string }).cursor
      for (const cursor of [aCursor, 'eyJ2IjoiMCIsInQiOiJ4In0']) {
        const fromA = await call(T.bob, `/sync/pull?tables=accounts,tickets&cursor=${cursor}`)
        if (fromA.status !== 200) expectTyped4xx(fromA, 400, 'bad_cursor')
        else
          for (const c of (fromA.body as { changes: Array<{ key: { tenant_id: string } }> }).changes)
            expect(c.key.tenant_id).toBe('B')
      }
      // The Arrow bulk form (the adapter's column reader): B's rows, none of A's, for B and B's admin.
      for (const tok of [T.bob, T.adminB]) {
        for (const query of ['tables=accounts', 'tables=accounts&resume=accounts,tickets']) {
          const arrow = await call(tok, `/sync/pull?${query}`, { headers: { accept: ARROW_STREAM } })
          expect(arrow.status).toBe(200)
          expect(arrow.type).toBe(ARROW_STREAM)
          expect(String(arrow.body)).toContain('b-own')
          expect(String(arrow.body)).not.toContain('a-secret')
          expect(String(arrow.body)).not.toContain('a-other')
        }
      }
      // Digest: B's buckets are exactly the hashes of B's own rows.
      const accounts = schema.table('accounts')
      const bRows = changes.map((c) => ({
        keyText: canonicalKey(accounts, c.key),
        hlc: (c as unknown as { hlc: string }).hlc,
      }))
      const digest = await postAs(T.bob, '/sync/digest', { table: 'accounts', buckets: 16 })
      expect(digest.body).toEqual({ buckets: bucketHashes(bRows, 16) })
      for (let i = 0; i < 16; i++) {
        const detail = await postAs(T.bob, '/sync/digest', { table: 'accounts', buckets: 16, bucket: i })
        for (const e of (detail.body as { entries: Array<{ key: { tenant_id: string } }> }).entries)
          expect(e.key.tenant_id).toBe('B')
      }
      const ticketsDigest = await postAs(T.bob, '/sync/digest', { table: 'tickets', buckets: 4 })
      expect(ticketsDigest.body).toEqual({ buckets: bucketHashes([], 4) })
      // Conflicts: A sees its own; B (even B's admin) sees none.
      expect((await call(T.alice, '/sync/conflicts')).body).toMatchObject({
        conflicts: [{ table: 'tickets' }],
      })
      expect((await call(T.bob, '/sync/conflicts')).body).toEqual({ conflicts: [] })
      expect((await call(T.adminB, '/sync/conflicts')).body).toEqual({ conflicts: [] })
    })
  })

  it('a token without a tenant claim reads and writes no tenant-scoped rows', async () => {
    const nobody = await token({ sub: 'drifter' })
    await unchanged(async () => {
      const push = await postAs(nobody, '/sync/push', {
        clientId: 'drifter-tab',
        mutations: [mut(1, 'accounts', 'upsert', { tenant_id: 'A', id: 1 }, { name: 'pwned' })],
      })
      if (push.status === 200) expectNothingApplied(push)
      else expectTyped4xx(push, 403, 'forbidden')
      const pulled = await call(nobody, '/sync/pull?tables=accounts,tickets')
      if (pulled.status === 200) expect((pulled.body as { changes: unknown[] }).changes).toEqual([])
      else expectTyped4xx(pulled, 403)
      const digest = await postAs(nobody, '/sync/digest', { table: 'accounts', buckets: 4 })
      if (digest.status === 200) expect(digest.body).toEqual({ buckets: bucketHashes([], 4) })
      else expectTyped4xx(digest, 403)
      const conflicts = await call(nobody, '/sync/conflicts')
      if (conflicts.status === 200) expect(conflicts.body).toEqual({ conflicts: [] })
      else expectTyped4xx(conflicts, 403)
    }, ['(sequences)', '_eddy_clients', '_eddy_sync_events'])
  })

  it('only admins read events or resolve conflicts; another tenant cannot tell a conflict exists', async () => {
    const conflicts = (await call(T.alice, '/sync/conflicts')).body as {
      conflicts: Array<{ id: number | string }>
    }
    const id = String(conflicts.conflicts[0]?.id)
    await unchanged(async () => {
      expectTyped4xx(await call(T.alice, '/sync/events'), 403, 'forbidden')
      expectTyped4xx(await call(T.bob, '/sync/events?limit=1'), 403, 'forbidden')
      expectTyped4xx(
        await postAs(T.alice, `/sync/conflicts/${id}/resolve`, { keep: 'incoming' }),
        403,
        'forbidden',
      )
      const bobExisting = await postAs(T.bob, `/sync/conflicts/${id}/resolve`, { keep: 'incoming' })
      expectTyped4xx(bobExisting, 403, 'forbidden')
      // a non-admin learns nothing either: a conflict that does not exist answers the same
      expect(await postAs(T.bob, '/sync/conflicts/987654/resolve', { keep: 'incoming' })).toEqual(bobExisting)
      expect(await postAs(T.alice, '/sync/conflicts/987654/resolve', { keep: 'incoming' })).toEqual(
        await postAs(T.alice, `/sync/conflicts/${id}/resolve`, { keep: 'incoming' }),
      )
      // B's admin: A's conflict answers exactly like one that does not exist.
      const foreign = await postAs(T.adminB, `/sync/conflicts/${id}/resolve`, { keep: 'incoming' })
      const none = await postAs(T.adminB, '/sync/conflicts/987654/resolve', { keep: 'incoming' })
      expectTyped4xx(foreign, 404, 'not_found')
      expect({ ...foreign, body: JSON.stringify(foreign.body).replace(id, '#') }).toEqual({
        ...none,
        body: JSON.stringify(none.body).replace('987654', '#'),
      })
      // B's admin cannot write A's row through a resolution with values either.
      expectTyped4xx(await postAs(T.adminB, `/sync/conflicts/${id}/resolve`, { values: { title: 'x' } }), 404)
    })
    // The positive control: A's admin resolves it.
    const ok = await postAs(T.adminA, `/sync/conflicts/${id}/resolve`, { keep: 'incoming' })
    expect(ok.status).toBe(200)
    expect(ok.body).toMatchObject({ row: { tenant_id: 'A', id: 1, title: 'old' } })
    expect((await call(T.adminA, '/sync/events')).status).toBe(200)
  })

  it("a tenant's admin reads only its own tenant's audit trail; an admin without a tenant reads all", async () => {
    const root = await token({ sub: 'root', role: 'admin' })
    // a push by a caller without a tenant claim belongs to no tenant
    const drifter = await postAs(await token({ sub: 'drifter' }), '/sync/push', {
      clientId: 'drifter-tab',
      mutations: [],
    })
    expect(drifter.status).toBe(200)
    await unchanged(async () => {
      const events = async (tok: string): Promise<Answer & { clients: string[] }> => {
        const a = await call(tok, '/sync/events?limit=1000')
        expect(a.status).toBe(200)
        const list = (a.body as { events: Array<{ clientId: string }> }).events
        return { ...a, clients: [...new Set(list.map((e) => e.clientId))].sort() }
      }
      const a = await events(T.adminA)
      const b = await events(T.adminB)
      expect(a.clients).toEqual(['alice-tab'])
      expect(b.clients).toEqual(['bob-tab'])
      expect(JSON.stringify(b.body)).not.toContain('alice')
      expect((await events(root)).clients).toEqual(['alice-tab', 'bob-tab', 'drifter-tab'])
    })
  })

  it("a shared table's conflict is shown only to the tenant whose write lost", async () => {
    const pushed = await postAs(T.alice, '/sync/push', {
      clientId: 'alice-tab',
      mutations: [
        { ...mut(200, 'board', 'upsert', { id: 1 }, { note: 'a-board-new' }), hlc: stamp(30, 'a') },
        { ...mut(201, 'board', 'upsert', { id: 1 }, { note: 'a-board-late' }), hlc: stamp(25, 'a') },
      ],
    })
    expect((pushed.body as { results: Array<{ status: string }> }).results.map((r) => r.status)).toEqual([
      'applied',
      'conflict',
    ])
    const board = async (tok: string): Promise<Array<{ id: number | string; incoming: unknown }>> =>
      (
        (await call(tok, '/sync/conflicts')).body as {
          conflicts: Array<{ id: number | string; table: string; incoming: unknown }>
        }
      ).conflicts.filter((c) => c.table === 'board')
    const mine = await board(T.alice)
    expect(mine.map((c) => c.incoming)).toEqual([{ id: 1, note: 'a-board-late' }])
    const id = String(mine[0]?.id)
    await unchanged(async () => {
      expect(await board(T.bob)).toEqual([])
      expect(await board(T.adminB)).toEqual([])
      expect(await board(await token({ sub: 'drifter' }))).toEqual([])
      expect(JSON.stringify((await call(T.bob, '/sync/conflicts')).body)).not.toContain('a-board-late')
      // B's admin cannot tell it exists, nor resolve it
      const foreign = await postAs(T.adminB, `/sync/conflicts/${id}/resolve`, { keep: 'incoming' })
      const none = await postAs(T.adminB, '/sync/conflicts/987654/resolve', { keep: 'incoming' })
      expectTyped4xx(foreign, 404, 'not_found')
      expect(JSON.stringify(foreign).replace(id, '#')).toBe(JSON.stringify(none).replace('987654', '#'))
    })
    // an admin without a tenant claim sees it (positive control)
    expect((await board(await token({ sub: 'root', role: 'admin' }))).map((c) => String(c.id))).toEqual([id])
  })
})
