import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { startNodeServer } from '../edge/runtime/node.ts'
import { openDuckDbWarehouse } from '../edge/warehouse/duckdb/duckdb-warehouse.ts'
import type { Warehouse } from '../edge/warehouse/warehouse.ts'
import type { Schema } from '../shared/schema.ts'
import { demoSchema } from './schema.ts'
import { seedDemo } from './seed.ts'

/** Opens the warehouse `npm start` uses: PostgreSQL when `EDDY_PG_URL` is set, else DuckDB on disk. */
async function openConfiguredWarehouse(schema: Schema): Promise<Warehouse> {
  const pgUrl = process.env.EDDY_PG_URL
  if (pgUrl !== undefined && pgUrl !== '') {
    // imported only when asked for, so the DuckDB path never loads the PostgreSQL driver
    const { openPostgresWarehouse } = await import('../edge/warehouse/postgres/postgres-warehouse.ts')
    return openPostgresWarehouse({ schema, url: pgUrl })
  }
  const path = resolve(process.env.EDDY_DUCKDB_PATH ?? './data/warehouse.duckdb')
  mkdirSync(dirname(path), { recursive: true })
  return openDuckDbWarehouse({ schema, path })
}

/**
 * `npm start`: the demo's API on `PORT` (default 8787) with the demo schema, seeded on a first start
 * (`EDDY_SEED=off` skips it), auth when `EDDY_JWT_SECRET` is set, the built demo (`dist/demo`) at `/`.
 * SIGINT/SIGTERM close the server, then the warehouse, so the DuckDB file is left consistent.
 */
async function main(): Promise<void> {
  const schema = demoSchema
  const warehouse = await openConfiguredWarehouse(schema)
  await warehouse.migrate()
  const seeded = process.env.EDDY_SEED === 'off' ? 0 : await seedDemo(warehouse, schema)
  const secret = process.env.EDDY_JWT_SECRET
  const server = await startNodeServer({
    warehouse,
    schema,
    port: Number(process.env.PORT ?? 8787),
    hostname: process.env.HOST ?? '127.0.0.1',
    auth: secret === undefined || secret === '' ? undefined : { secret },
    staticDir: resolve('dist/demo'),
  })
  console.log(`Eddy edge listening on ${server.url}`)
  console.log(
    `warehouse ${warehouse.kind}, tables ${[...schema.tables.keys()].join(', ')}, ` +
      `${seeded > 0 ? `seeded ${seeded} rows` : 'existing data kept'}, auth ${secret ? 'on' : 'off'}, ` +
      `API at ${server.url}/sync`,
  )
  let stopping = false
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return
    stopping = true
    console.log(`${signal}: shutting down`)
    await server.close()
    await warehouse.close()
    process.exit(0)
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      stop(signal).catch((e: unknown) => {
        console.error('shutdown failed', e)
        process.exit(1)
      })
    })
  }
}

const entry = process.argv[1]
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) {
  main().catch((e: unknown) => {
    console.error('eddy edge failed to start:', e)
    process.exit(1)
  })
}
