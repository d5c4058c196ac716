import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { openPostgresWarehouse } from '../../edge/postgres-warehouse.ts'
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
      // The real Node entry with EDDY_PG_URL, as a process: a driver crash must not take the test down.
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
        // The edge process can die with PostgreSQL: postgres.js 3.4.9 (the latest) throws from a timer
        // when a reserved connection dies mid-transaction (porsager/postgres#1208), and a connection
        // refused while the server is down can surface as an unhandled rejection. The supervisor
        // restarts the edge; these exits are counted, and nothing may be lost or doubled by them.
        // An exit for any other reason is a failure.
        const nextWrite = (log: string) =>
          /Immediate\.nextWrite[\s\S]*postgres\/src\/connection\.js/.test(log)
        const refused = (log: string) =>
          /triggerUncaughtException[\s\S]*connect ECONNREFUSED 127\.0\.0\.1:/.test(log)
        console.log(
          `chaos[postgres] edge process exits: ${edge.crashes.length} (postgres.js #1208: ` +
            `${edge.crashes.filter(nextWrite).length}, unhandled ECONNREFUSED: ${edge.crashes.filter(refused).length})`,
        )
        expect(edge.crashes.filter((log) => !nextWrite(log) && !refused(log))).toEqual([])
      } finally {
        await proxy.close()
        await edge.stop()
        await pg.destroy()
      }
    },
    2 * SECONDS * 1000 + 180_000,
  )
})
