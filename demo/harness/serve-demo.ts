import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openDuckDbWarehouse } from '../../edge/duckdb-warehouse.ts'
import { type NodeServer, startNodeServer } from '../../edge/node.ts'
import { seedDemo } from '../../edge/seed.ts'
import type { Warehouse } from '../../edge/warehouse.ts'
import { demoSchema } from '../schema.ts'

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
  /** Stops the server (the page then sees the edge as unreachable); idempotent. */
  stop(): Promise<void>
  /** Stops the server, closes the warehouse and removes the data folder. */
  close(): Promise<void>
}

export async function serveDemo(staticDir: string): Promise<DemoServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'eddy-demo-data-'))
  const warehouse = await openDuckDbWarehouse({ schema: demoSchema, path: join(dataDir, 'warehouse.duckdb') })
  let server: NodeServer | undefined
  let seeded = 0
  try {
    await warehouse.migrate()
    seeded = await seedDemo(warehouse, demoSchema)
    server = await startNodeServer({ warehouse, schema: demoSchema, port: 0, staticDir })
  } catch (e) {
    await warehouse.close()
    await rm(dataDir, { recursive: true, force: true })
    throw e
  }
  const running = server
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= running.close()
    return stopped
  }
  return {
    url: running.url,
    warehouse,
    seeded,
    stop,
    async close() {
      await stop()
      await warehouse.close()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}
