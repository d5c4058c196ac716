import { mkdtemp, rm } from 'node:fs/promises'
import { type AddressInfo, connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as v from 'valibot'
import { type NodeServer, startNodeServer } from '../../edge/runtime/node.ts'
import { openDuckDbWarehouse } from '../../edge/warehouse/duckdb/duckdb-warehouse.ts'
import type { Warehouse } from '../../edge/warehouse/warehouse.ts'
import { formatHlc } from '../../shared/hlc.ts'
import { DEFAULT_LIMITS, type Mutation, type PushBody, pushResponse } from '../../shared/protocol.ts'
import { demoSchema } from '../schema.ts'
import { demoSeedRows, seedDemo } from '../seed.ts'

/**
 * Node-only helpers for the demo's Chromium test and the screenshot script: build the demo with its
 * own Vite config, and serve it the way `npm start` does (the real edge, the real DuckDB warehouse
 * with the seeded sample data), in-process on a free loopback port, in a temporary data folder.
 */
const CONFIG = fileURLToPath(new URL('../vite.config.ts', import.meta.url))

/** Builds the demo into `outDir` (the service worker's precache list included). */
export async function buildDemo(outDir: string): Promise<void> {
  const { build } = await import('vite')
  await build({ configFile: CONFIG, logLevel: 'warn', build: { outDir, emptyOutDir: true } })
}

export interface DemoServer {
  readonly url: string
  readonly warehouse: Warehouse
  readonly seeded: number
  /** Moves the edge's clock (tests: a client stamp too far ahead of it is refused as `clock_skew`). */
  setClockOffset(ms: number): void
  /** Makes the edge unreachable at once, open connections included; idempotent. */
  stop(): Promise<void>
  /** Stops the server, closes the warehouse and removes the data folder. */
  close(): Promise<void>
}

/**
 * `full`: the edge's own first-start seed (`seedDemo`, 111,000 rows), as `npm start` does.
 * `small`: a slice of the same deterministic rows (all customers, 500 products, 3,000 orders),
 * pushed through the public protocol by a seeding client, for tests that need the page ready in
 * seconds rather than after hydrating 100,000 orders.
 */
export type SeedSize = 'full' | 'small'

export const SMALL_SEED = { customers: 1000, products: 500, orders: 3000 } as const
const SEED_CLIENT = 'demo-seed'

async function pushSmallSeed(url: string): Promise<number> {
  const data = demoSeedRows()
  const hlc = formatHlc({ wall: Date.UTC(2026, 0, 1), counter: 0, node: SEED_CLIENT })
  const mutations: Mutation[] = []
  for (const name of ['customers', 'products', 'orders'] as const) {
    const table = demoSchema.table(name)
    for (const row of data[name].slice(0, SMALL_SEED[name])) {
      const key = Object.fromEntries(table.primaryKey.map((k) => [k, row[k]]))
      mutations.push({ seq: mutations.length + 1, table: name, op: 'upsert', key, values: row, hlc })
    }
  }
  for (let i = 0; i < mutations.length; i += DEFAULT_LIMITS.maxMutations) {
    const body: PushBody = {
      clientId: SEED_CLIENT,
      mutations: mutations.slice(i, i + DEFAULT_LIMITS.maxMutations),
    }
    const res = await fetch(`${url}/sync/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    const answer = v.parse(pushResponse, await res.json())
    const refused = answer.results.find((r) => r.status !== 'applied')
    if (refused) throw new Error(`seed write ${refused.seq} came back ${refused.status}`)
  }
  return mutations.length
}

export async function serveDemo(staticDir: string, seed: SeedSize = 'full'): Promise<DemoServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'eddy-demo-data-'))
  const warehouse = await openDuckDbWarehouse({ schema: demoSchema, path: join(dataDir, 'warehouse.duckdb') })
  let server: NodeServer | undefined
  let seeded = 0
  let clockOffset = 0
  try {
    await warehouse.migrate()
    if (seed === 'full') seeded = await seedDemo(warehouse, demoSchema)
    server = await startNodeServer({
      warehouse,
      schema: demoSchema,
      port: 0,
      staticDir,
      now: () => Date.now() + clockOffset,
    })
    if (seed === 'small') seeded = await pushSmallSeed(server.url)
  } catch (e) {
    await server?.close()
    await warehouse.close()
    await rm(dataDir, { recursive: true, force: true })
    throw e
  }
  const running = server
  const gate = await openGate(new URL(running.url))
  return {
    url: gate.url,
    warehouse,
    seeded,
    setClockOffset(ms) {
      clockOffset = ms
    },
    stop: gate.cut,
    async close() {
      await gate.cut()
      await running.close()
      await warehouse.close()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

/**
 * A loopback TCP gate in front of the edge: the page talks to the edge through it, so a test can
 * make the edge unreachable at once, open keep-alive connections included (a graceful server close
 * waits for those, and a browser keeps them open).
 */
async function openGate(target: URL): Promise<{ url: string; cut(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const gate = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname)
    const drop = (): void => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    sockets.add(client)
    sockets.add(upstream)
    for (const s of [client, upstream]) {
      s.on('error', drop)
      s.on('close', drop)
    }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((ok, fail) => {
    gate.once('error', fail)
    gate.listen(0, '127.0.0.1', ok)
  })
  const { port } = gate.address() as AddressInfo
  let cut: Promise<void> | undefined
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      cut ??= new Promise<void>((ok) => {
        gate.close(() => ok())
        for (const s of sockets) s.destroy()
      })
      return cut
    },
  }
}
