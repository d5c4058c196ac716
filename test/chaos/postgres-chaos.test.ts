import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { openPostgresWarehouse } from '../../edge/warehouse/postgres/postgres-warehouse.ts'
import { chaosSeconds, expectGuarantees, printChaos } from './chaos-report.ts'
import { runChaos } from './chaos-run.ts'
import { superviseEdge } from './edge-supervisor.ts'
import { startFaultProxy } from './fault-proxy.ts'
import { startChaosPostgres } from './pg-server.ts'
import { chaosSeed, createPrng } from './prng.ts'

const SECONDS = chaosSeconds(20)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('chaos on PostgreSQL: a lossy network, and the database crashed mid-batch', () => {
  it(
    'loses no acknowledged write, applies none twice, and every cache converges',
    async () => {
      const seed = chaosSeed()
      const rng = createPrng(seed ^ 0x5eed)
      const pg = await startChaosPostgres()
      // The real Node entry with EDDY_PG_URL, as a process: a driver crash must not take the test down
      // (it is counted, and fails the test below).
      let target = ''
      const edge = await superviseEdge({ postgres: pg.url }, (url) => {
        target = url
        proxy.target = url
      })
      const proxy = await startFaultProxy({ target: target || edge.url, rng: rng.fork(1) })
      let midBatch = 0
      try {
        const result = await runChaos({
          name: 'postgres',
          seed,
          rng,
          proxy,
          clients: 8,
          durationMs: SECONDS * 1000,
          async disrupt(r, until) {
            let crashes = 0
            for (;;) {
              await sleep(r.int(1500, 3500))
              if (Date.now() > until - 1500) return crashes
              const waitUntil = Date.now() + 2000
              while (proxy.inflightPushes() === 0 && Date.now() < waitUntil) await sleep(1)
              await sleep(r.int(0, 4))
              if (proxy.inflightPushes() > 0) midBatch += 1
              await pg.crash()
              crashes += 1
              await sleep(r.int(100, 800))
              await pg.start()
            }
          },
          async edgeReady() {
            // The pool reconnects on its own; wait until a health check goes through.
            for (let i = 0; i < 100; i++) {
              const res = await fetch(`${edge.url}/sync/health`).catch(() => undefined)
              if (res?.ok === true) return
              await sleep(100)
            }
            throw new Error('the edge did not reach PostgreSQL again')
          },
          openWarehouse: () => openPostgresWarehouse({ schema: demoSchema, url: pg.url }),
        })
        printChaos('postgres', result, `postgres crashes (mid-batch ${midBatch})`)
        expectGuarantees(result)
        // The edge process must outlive every PostgreSQL crash: requests answer 503 while the server
        // is away, and the pool reconnects on its own (edge/warehouse/postgres/postgres-warehouse.ts retires a pool
        // whose connection closed). Any exit is a failure; its log says why.
        console.log(`chaos[postgres] edge process exits: ${edge.crashes.length}`)
        expect(edge.crashes).toEqual([])
      } finally {
        await proxy.close()
        await edge.stop()
        await pg.destroy()
      }
    },
    2 * SECONDS * 1000 + 180_000,
  )
})
