import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { EddyError } from '../../shared/errors.ts'
import { startEdge, type TestEdge } from '../../test/support/edge.ts'
import { createTransport, retryable } from './transport.ts'

let edge: TestEdge
beforeAll(async () => {
  edge = await startEdge(demoSchema)
})
afterAll(async () => {
  await edge.close()
})

describe('transport', () => {
  it('turns error envelopes into EddyErrors with the edge code and HTTP status', async () => {
    const t = createTransport({ url: edge.url, fetch: edge.fetch })
    const unknown = await t.pull({ tables: ['nope'], cursor: undefined }).catch((e: unknown) => e)
    expect(unknown).toBeInstanceOf(EddyError)
    expect(unknown).toMatchObject({ code: 'unknown_table', status: 400 })
    expect(retryable(unknown)).toBe(false)
    const cursor = await t.pull({ tables: ['orders'], cursor: '!!not-a-cursor' }).catch((e: unknown) => e)
    expect(cursor).toMatchObject({ code: 'bad_cursor', status: 400 })
    const push = await t.push({ clientId: 'bad id with spaces', mutations: [] }).catch((e: unknown) => e)
    expect(push).toMatchObject({ code: 'bad_request', status: 400 })
  })

  it('sends the bearer token and reports a refused one as unauthorized', async () => {
    const secured = await startEdge(demoSchema, { auth: { secret: 'x'.repeat(40) } })
    try {
      const t = createTransport({ url: secured.url, fetch: secured.fetch, token: async () => 'not-a-jwt' })
      await expect(t.pull({ tables: ['orders'], cursor: undefined })).rejects.toMatchObject({
        code: 'unauthorized',
        status: 401,
      })
    } finally {
      await secured.close()
    }
  })

  it('reports an unreachable edge as `offline` (retryable)', async () => {
    const t = createTransport({ url: edge.url, fetch: edge.fetch })
    edge.fault = 'down'
    const err = await t.pull({ tables: ['orders'], cursor: undefined }).catch((e: unknown) => e)
    edge.fault = 'none'
    expect(err).toMatchObject({ code: 'offline' })
    expect(retryable(err)).toBe(true)
  })

  it('refuses a 2xx answer that does not match the wire schema (`protocol`), and treats 5xx as retryable', async () => {
    // A misbehaving server: the real edge never answers like this.
    const odd = createTransport({
      url: 'http://odd.test/sync',
      fetch: async () => Response.json({ changes: 'x' }),
    })
    await expect(odd.pull({ tables: ['orders'], cursor: undefined })).rejects.toMatchObject({
      code: 'protocol',
    })
    const down = createTransport({
      url: 'http://down.test/sync',
      fetch: async () => new Response('gateway timeout', { status: 504 }),
    })
    const err = await down.pull({ tables: ['orders'], cursor: undefined }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'warehouse_unavailable', status: 504 })
    expect(retryable(err)).toBe(true)
  })
})
