import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { openDuckDbWarehouse } from '../warehouse/duckdb/duckdb-warehouse.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'
import { startNodeServer } from './node.ts'

describe('startNodeServer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'eddy-static-'))
  let w: Warehouse

  beforeAll(async () => {
    writeFileSync(join(dir, 'index.html'), '<h1>demo page</h1>')
    writeFileSync(join(dir, 'app.js'), 'export const x = 1')
    w = await openDuckDbWarehouse({ schema: demoSchema })
    await w.migrate()
  })
  afterAll(async () => {
    await w.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('serves the API and the static demo on a free loopback port', async () => {
    const server = await startNodeServer({ warehouse: w, staticDir: dir })
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(server.port).toBeGreaterThan(0)
      const page = await fetch(`${server.url}/`)
      expect(await page.text()).toBe('<h1>demo page</h1>')
      const js = await fetch(`${server.url}/app.js`)
      expect(js.headers.get('content-type')).toMatch(/javascript/)
      const health = await fetch(`${server.url}/sync/health`)
      expect(await health.json()).toEqual({ ok: true, warehouse: 'duckdb', protocol: 1 })
      const missing = await fetch(`${server.url}/missing.js`)
      expect(missing.status).toBe(404)
      expect(await missing.json()).toMatchObject({ error: { code: 'not_found' } })
    } finally {
      await server.close()
    }
  })

  it('reads push bodies over HTTP whole or streamed, within the limits, UTF-8 only', async () => {
    const server = await startNodeServer({ warehouse: w, limits: { maxBodyBytes: 4096 } })
    const post = (body: string | Uint8Array | ReadableStream<Uint8Array>) =>
      fetch(`${server.url}/sync/push`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
      } as RequestInit)
    const stream = (bytes: Uint8Array): ReadableStream<Uint8Array> =>
      new ReadableStream({
        start(c) {
          for (let at = 0; at < bytes.length; at += 100) c.enqueue(bytes.slice(at, at + 100))
          c.close()
        },
      })
    const push = (clientId: string) =>
      JSON.stringify({
        clientId,
        mutations: [
          {
            seq: 1,
            table: 'orders',
            op: 'upsert',
            key: {
              order_id:
                clientId === 'whole'
                  ? '00000000-0000-4000-8000-00000000a001'
                  : '00000000-0000-4000-8000-00000000a002',
            },
            values: { customer_id: 1, total_amount: '1.00', status: 'paid' },
            hlc: `${String(Date.now()).padStart(15, '0')}:00000:${clientId}`,
          },
        ],
      })
    try {
      // a string body goes with a Content-Length; a stream goes chunked, without one
      const whole = await post(push('whole'))
      expect(await whole.json()).toEqual({ lastSeq: 1, results: [{ seq: 1, status: 'applied' }] })
      const chunked = await post(stream(new TextEncoder().encode(push('chunked'))))
      expect(await chunked.json()).toEqual({ lastSeq: 1, results: [{ seq: 1, status: 'applied' }] })
      const notUtf8 = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])
      for (const bad of [notUtf8, stream(notUtf8)]) {
        const a = await post(bad)
        expect(a.status).toBe(400)
        expect(await a.json()).toMatchObject({ error: { code: 'bad_request' } })
      }
      const big = new TextEncoder().encode(`{"clientId":"${'x'.repeat(5000)}"}`)
      for (const tooBig of [big, stream(big)]) {
        const a = await post(tooBig)
        expect(a.status).toBe(413)
        expect(await a.json()).toMatchObject({ error: { code: 'too_large' } })
      }
    } finally {
      await server.close()
    }
  })

  it('answers a landing page linking to health when there is no demo build', async () => {
    const server = await startNodeServer({ warehouse: w, staticDir: join(dir, 'absent') })
    try {
      const page = await fetch(`${server.url}/`)
      expect(page.headers.get('content-type')).toMatch(/text\/html/)
      expect(await page.text()).toContain('href="/sync/health"')
    } finally {
      await server.close()
    }
    await expect(fetch(`${server.url}/sync/health`)).rejects.toThrow()
  })
})
