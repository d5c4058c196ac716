import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { demoSchema } from '../demo/schema.ts'
import { openDuckDbWarehouse } from './duckdb-warehouse.ts'
import { startNodeServer } from './node.ts'
import type { Warehouse } from './warehouse.ts'

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
