import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatHlc } from '../../shared/hlc.ts'
import type { ConflictRecord, PullResponse, PushResponse } from '../../shared/protocol.ts'
import { defineSchema } from '../../shared/schema.ts'
import { openDuckDbWarehouse } from '../warehouse/duckdb/duckdb-warehouse.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'
import { createSyncApp } from './app.ts'
import { createVerifier } from './auth.ts'

const SECRET = 'a-test-secret-of-enough-length'
const key = new TextEncoder().encode(SECRET)
const NOW = Date.UTC(2026, 5, 1)
const stamp = (n: number, node: string): string => formatHlc({ wall: NOW - 60_000 + n, counter: 0, node })

const schema = defineSchema({
  tables: {
    notes: {
      primaryKey: ['org', 'id'],
      columns: { org: { type: 'text' }, id: { type: 'integer' }, body: { type: 'text' } },
      tenantColumn: 'org',
      conflict: 'manual',
    },
    shared: { primaryKey: ['id'], columns: { id: { type: 'integer' }, v: { type: 'text' } } },
  },
})

async function token(
  claims: Record<string, unknown>,
  opts: { secret?: Uint8Array; expiresIn?: string | number; sub?: string } = {},
): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt()
  if (opts.sub !== '') jwt.setSubject(opts.sub ?? 'alice')
  jwt.setExpirationTime(opts.expiresIn ?? '1h')
  return jwt.sign(opts.secret ?? key)
}

describe('auth and tenants', () => {
  let w: Warehouse
  let app: ReturnType<typeof createSyncApp>

  beforeAll(async () => {
    w = await openDuckDbWarehouse({ schema })
    await w.migrate()
    app = createSyncApp({ schema, warehouse: w, auth: { secret: SECRET }, now: () => NOW })
  })
  afterAll(async () => {
    await w.close()
  })

  const call = (path: string, tok: string | undefined, body?: unknown): Promise<Response> =>
    Promise.resolve(
      app.request(path, {
        method: body === undefined ? 'GET' : 'POST',
        headers: {
          ...(tok === undefined ? {} : { authorization: `Bearer ${tok}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    )
  const code = async (res: Response): Promise<string> =>
    ((await res.json()) as { error: { code: string } }).error.code

  it('leaves health open and requires a valid bearer token everywhere else', async () => {
    expect((await call('/sync/health', undefined)).status).toBe(200)
    for (const path of ['/sync/pull', '/sync/conflicts', '/sync/events']) {
      const res = await call(path, undefined)
      expect(res.status).toBe(401)
      expect(await code(res)).toBe('unauthorized')
    }
    const push = await call('/sync/push', undefined, { clientId: 'c', mutations: [] })
    expect(push.status).toBe(401)
    expect((await call('/sync/pull', await token({}))).status).toBe(200)
  })

  it('rejects alg none, expired tokens, wrong signatures, tokens without a subject and junk', async () => {
    const none = new UnsecuredJWT({ role: 'admin' }).setSubject('alice').setExpirationTime('1h').encode()
    const expired = await token({}, { expiresIn: Math.floor(Date.now() / 1000) - 60 })
    const wrong = await token({}, { secret: new TextEncoder().encode('another-secret-of-enough-length') })
    const noSub = await token({}, { sub: '' })
    for (const bad of [none, expired, wrong, noSub, 'not.a.jwt', '']) {
      const res = await call('/sync/pull', bad)
      expect(res.status, bad).toBe(401)
      expect(await code(res)).toBe('unauthorized')
    }
    const basic = await app.request('/sync/pull', { headers: { authorization: 'Basic YWxpY2U6cHc=' } })
    expect(basic.status).toBe(401)
  })

  it('lets the subject that first pushed a clientId own it', async () => {
    const alice = await token({ tenant: 'acme' }, { sub: 'alice' })
    const bob = await token({ tenant: 'acme' }, { sub: 'bob' })
    const m = (seq: number) => ({
      seq,
      table: 'shared',
      op: 'upsert',
      key: { id: seq },
      values: { v: 'x' },
      hlc: stamp(seq, 'tab-own'),
    })
    expect((await call('/sync/push', alice, { clientId: 'tab-own', mutations: [m(1)] })).status).toBe(200)
    const stolen = await call('/sync/push', bob, { clientId: 'tab-own', mutations: [m(2)] })
    expect(stolen.status).toBe(403)
    expect(await code(stolen)).toBe('forbidden')
    const again = (await (
      await call('/sync/push', alice, { clientId: 'tab-own', mutations: [m(2)] })
    ).json()) as PushResponse
    expect(again).toEqual({ lastSeq: 2, results: [{ seq: 2, status: 'applied' }] })
  })

  it('scopes push, pull, digest and conflicts by the tenant claim', async () => {
    const acme = await token({ tenant: 'acme' }, { sub: 'a1' })
    const globex = await token({ tenant: 'globex' }, { sub: 'g1' })
    const wrongTenant = await call('/sync/push', acme, {
      clientId: 'tab-acme',
      mutations: [
        {
          seq: 1,
          table: 'notes',
          op: 'upsert',
          key: { org: 'globex', id: 1 },
          values: { body: 'x' },
          hlc: stamp(1, 'tab-acme'),
        },
      ],
    })
    expect(wrongTenant.status).toBe(403)
    const ok = (await (
      await call('/sync/push', acme, {
        clientId: 'tab-acme',
        mutations: [
          {
            seq: 1,
            table: 'notes',
            op: 'upsert',
            key: { org: 'acme', id: 1 },
            values: { body: 'mine' },
            hlc: stamp(5, 'tab-acme'),
          },
        ],
      })
    ).json()) as PushResponse
    expect(ok.results[0]?.status).toBe('applied')
    await call('/sync/push', globex, {
      clientId: 'tab-globex',
      mutations: [
        {
          seq: 1,
          table: 'notes',
          op: 'upsert',
          key: { org: 'globex', id: 1 },
          values: { body: 'theirs' },
          hlc: stamp(6, 'tab-globex'),
        },
        // older than acme's row would be a conflict, but it is another tenant's key: refused as a whole
      ],
    })
    const overwrite = await call('/sync/push', globex, {
      clientId: 'tab-globex',
      mutations: [
        { seq: 2, table: 'notes', op: 'delete', key: { org: 'acme', id: 1 }, hlc: stamp(7, 'tab-globex') },
      ],
    })
    expect(overwrite.status).toBe(403)

    const pulled = (await (await call('/sync/pull?tables=notes', acme)).json()) as PullResponse
    expect(pulled.changes.map((c) => c.row)).toEqual([{ org: 'acme', id: 1, body: 'mine' }])
    const digestAcme = (await (await call('/sync/digest', acme, { table: 'notes', buckets: 1 })).json()) as {
      buckets: string[]
    }
    const digestGlobex = (await (
      await call('/sync/digest', globex, { table: 'notes', buckets: 1 })
    ).json()) as {
      buckets: string[]
    }
    expect(digestAcme.buckets[0]?.startsWith('1-')).toBe(true)
    expect(digestAcme.buckets).not.toEqual(digestGlobex.buckets)

    // an older write by acme on its own row: a manual conflict only acme sees
    await call('/sync/push', acme, {
      clientId: 'tab-acme',
      mutations: [
        {
          seq: 2,
          table: 'notes',
          op: 'upsert',
          key: { org: 'acme', id: 1 },
          values: { body: 'older' },
          hlc: stamp(2, 'tab-acme'),
        },
      ],
    })
    const forAcme = (await (await call('/sync/conflicts', acme)).json()) as { conflicts: ConflictRecord[] }
    const forGlobex = (await (await call('/sync/conflicts', globex)).json()) as {
      conflicts: ConflictRecord[]
    }
    expect(forAcme.conflicts.map((c) => c.key)).toEqual([{ org: 'acme', id: 1 }])
    expect(forGlobex.conflicts).toEqual([])
  })

  it('keeps callers without a tenant claim out of tenant tables, unless they are admins', async () => {
    const plain = await token({}, { sub: 'nobody' })
    const admin = await token({ role: 'admin' }, { sub: 'ops' })
    const pushed = await call('/sync/push', plain, {
      clientId: 'tab-none',
      mutations: [
        {
          seq: 1,
          table: 'notes',
          op: 'upsert',
          key: { org: 'acme', id: 9 },
          values: { body: 'x' },
          hlc: stamp(1, 'tab-none'),
        },
      ],
    })
    expect(pushed.status).toBe(403)
    const pulled = (await (await call('/sync/pull', plain)).json()) as PullResponse
    expect(pulled.changes.some((c) => c.table === 'notes')).toBe(false)
    expect(pulled.changes.some((c) => c.table === 'shared')).toBe(true)
    expect((await call('/sync/digest', plain, { table: 'notes' })).status).toBe(403)
    expect((await call('/sync/digest', plain, { table: 'shared' })).status).toBe(200)
    const conflicts = (await (await call('/sync/conflicts', plain)).json()) as { conflicts: ConflictRecord[] }
    expect(conflicts.conflicts).toEqual([])
    const all = (await (await call('/sync/pull?tables=notes', admin)).json()) as PullResponse
    expect(all.changes.map((c) => c.key.org).sort()).toEqual(['acme', 'globex'])
  })

  it('needs the admin role for events and conflict resolution', async () => {
    const user = await token({ tenant: 'acme' }, { sub: 'a1' })
    const admin = await token({ tenant: 'acme', role: 'admin' }, { sub: 'root' })
    const admin2 = await token({ tenant: 'acme', roles: ['reader', 'admin'] }, { sub: 'root2' })
    expect((await call('/sync/events', user)).status).toBe(403)
    expect((await call('/sync/events', admin)).status).toBe(200)
    expect((await call('/sync/events', admin2)).status).toBe(200)
    const list = (await (await call('/sync/conflicts', user)).json()) as { conflicts: ConflictRecord[] }
    const id = String(list.conflicts[0]?.id)
    const denied = await call(`/sync/conflicts/${id}/resolve`, user, { keep: 'warehouse' })
    expect(denied.status).toBe(403)
    const done = await call(`/sync/conflicts/${id}/resolve`, admin, { keep: 'warehouse' })
    expect(done.status).toBe(200)
    expect(((await done.json()) as { row: unknown }).row).toEqual({ org: 'acme', id: 1, body: 'mine' })
  })

  it('verifies asymmetric tokens against a JWKS and refuses HS256 there', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256')
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }
    const verify = createVerifier({ jwks: createLocalJWKSet({ keys: [jwk] }) })
    const good = await new SignJWT({ tenant: 't1', role: 'admin' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setSubject('svc')
      .setExpirationTime('5m')
      .sign(privateKey)
    expect(await verify(`Bearer ${good}`)).toEqual({ subject: 'svc', tenant: 't1', admin: true })
    await expect(verify(`Bearer ${await token({})}`)).rejects.toMatchObject({ code: 'unauthorized' })
    expect(() => createVerifier({})).toThrow(/exactly one/)
    expect(() => createVerifier({ secret: 'short' })).toThrow(/at least 16/)
  })
})
