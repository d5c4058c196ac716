import 'fake-indexeddb/auto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { openDuckDbWarehouse } from '../../edge/warehouse/duckdb/duckdb-warehouse.ts'
import { chaosSeconds, expectGuarantees, printChaos } from './chaos-report.ts'
import { runChaos } from './chaos-run.ts'
import { superviseEdge } from './edge-supervisor.ts'
import { startFaultProxy } from './fault-proxy.ts'
import { chaosSeed, createPrng } from './prng.ts'

const SECONDS = chaosSeconds(25)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const dir = mkdtempSync(join(tmpdir(), 'eddy-chaos-duckdb-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('chaos on DuckDB: a lossy network, and the edge process SIGKILLed mid-push', () => {
  it(
    'loses no acknowledged write, applies none twice, and every cache converges',
    async () => {
      const seed = chaosSeed()
      const rng = createPrng(seed)
      const dbPath = join(dir, 'warehouse.duckdb')
      let target = ''
      const edge = await superviseEdge({ duckdb: dbPath }, (url) => {
        target = url
        proxy.target = url
      })
      const proxy = await startFaultProxy({ target: target || edge.url, rng: rng.fork(1) })
      let midPush = 0
      let stopped = false
      try {
        const result = await runChaos({
          name: 'duckdb',
          seed,
          rng,
          proxy,
          clients: 8,
          durationMs: SECONDS * 1000,
          async disrupt(r, until) {
            let kills = 0
            for (;;) {
              await sleep(r.int(3000, 6000))
              if (Date.now() > until - 1500) return kills
              // Aim at a push the edge is processing: wait (a little) until one is in flight.
              const waitUntil = Date.now() + 2000
              while (proxy.inflightPushes() === 0 && Date.now() < waitUntil) await sleep(1)
              await sleep(r.int(0, 4))
              if (proxy.inflightPushes() > 0) midPush += 1
              await edge.kill()
              kills += 1
            }
          },
          edgeReady: async () => {},
          async openWarehouse() {
            stopped = true
            await edge.stop()
            return openDuckDbWarehouse({ schema: demoSchema, path: dbPath })
          },
        })
        printChaos('duckdb', result, `edge kills (mid-push ${midPush})`)
        expect(edge.crashes).toEqual([])
        expectGuarantees(result)
      } finally {
        await proxy.close()
        if (!stopped) await edge.stop()
      }
    },
    2 * SECONDS * 1000 + 180_000,
  )
})
