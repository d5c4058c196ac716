import { join } from 'node:path'
import { demoSchema } from '../demo/schema.ts'
import type { createSyncApp } from '../edge/http/app.ts'
import type { openDuckDbWarehouse } from '../edge/warehouse/duckdb/duckdb-warehouse.ts'
import { launchProfile, openPage, REPO, startServer } from '../test/browser/harness.ts'
import { call } from './browser-bench.ts'
import { seedOrders } from './seed-orders.ts'

/**
 * `npx tsx bench/hydrate-profile.ts [rows] [rounds]`: the bench's hydrate round alone, repeated,
 * in one Chromium page (production build of the bench page) against the real edge on an in-memory
 * DuckDB warehouse: per round, Eddy's `sync()` on a fresh profile, the same Arrow pages fetched
 * with no cache behind them, and raw DuckDB-WASM's keyed durable load of the same rows. Also the
 * edge's own time per Arrow page (request in to answer built). Prints a report; not part of
 * `npm run bench`.
 */
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const ROWS = Number(args[0] ?? 100_000)
const ROUNDS = Number(args[1] ?? 3)
const before = process.argv.find((a) => a.startsWith('--before='))?.slice('--before='.length)
const PREFIX = 0x2000

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : (s[Math.floor((s.length - 1) / 2)] ?? Number.NaN)
}

/**
 * One side of the run: a tree's bench page built for production and its own edge (`createSyncApp`
 * on an in-memory DuckDB warehouse) seeded with the same rows. `root` is this repository, or
 * with `--before=<dir>` a checkout of an earlier commit (its `node_modules` linked), so the two
 * trees' clients and edges take turns in one Chromium.
 */
async function openSide(root: string): Promise<{
  dist: string
  app: { fetch(r: Request): Promise<Response> | Response }
  close(): Promise<void>
}> {
  const { build } = await import('vite')
  const dist = join(root, '.cache', 'bench-dist')
  process.env.EDDY_BENCH_OUT = dist
  await build({ configFile: join(root, 'bench', 'vite.config.ts'), logLevel: 'error' })
  const appModule = (await import(join(root, 'edge', 'app.ts'))) as { createSyncApp: typeof createSyncApp }
  const warehouseModule = (await import(join(root, 'edge', 'duckdb-warehouse.ts'))) as {
    openDuckDbWarehouse: typeof openDuckDbWarehouse
  }
  const warehouse = await warehouseModule.openDuckDbWarehouse({ schema: demoSchema })
  await warehouse.migrate()
  await seedOrders(warehouse, PREFIX, ROWS)
  return {
    dist,
    app: appModule.createSyncApp({ schema: demoSchema, warehouse }),
    close: () => warehouse.close(),
  }
}

async function main(): Promise<void> {
  const here = await openSide(REPO)
  const { app } = here
  const server = await startServer(here.dist)
  let edgeMs: number[] = []
  server.setEdge(async (req) => {
    const t0 = performance.now()
    const res = await app.fetch(req)
    if ((req.headers.get('accept') ?? '').includes('arrow')) edgeMs.push(performance.now() - t0)
    return res
  })
  const profile = await launchProfile(process.env.JS_FLAGS ? [`--js-flags=${process.env.JS_FLAGS}`] : [])
  const page = await openPage(profile.context, `${server.origin}/`, 'bench ready')
  page.on('console', (m) => {
    if (m.text().startsWith('[hydrate]')) console.log(`    ${m.text()}`)
  })
  const out = { eddy: [] as number[], fetch: [] as number[], keyed: [] as number[] }
  try {
    if (process.argv.includes('--load')) {
      // the cache's DuckDB work alone: pages fetched first, then loadArrow per page + CHECKPOINT,
      // twice on one DuckDB-WASM instance (cold code, then warm)
      for (let round = 0; round < ROUNDS; round++) {
        const passes = await call(
          page,
          'profileCacheLoad',
          `prof-load-${Date.now().toString(36)}.duckdb`,
          25_000,
          2,
        )
        const line = passes.map((steps) => {
          const total = steps.reduce((a, b) => a + b, 0)
          return `${total.toFixed(0)} ms (${steps.map((x) => x.toFixed(0)).join(' ')})`
        })
        console.log(`loadArrow 25000/page + CHECKPOINT: cold ${line[0]} | warm ${line[1]}`)
      }
      return
    }
    if (before !== undefined) {
      // the same hydrate from two builds of the page (this tree and `--before`), in turns
      const them = await openSide(before)
      const other = await startServer(them.dist)
      other.setEdge((req) => them.app.fetch(req))
      const otherPage = await openPage(profile.context, `${other.origin}/`, 'bench ready')
      const times = { before: [] as number[], after: [] as number[] }
      try {
        for (let round = 0; round < ROUNDS; round++) {
          const order = round % 2 === 0 ? (['before', 'after'] as const) : (['after', 'before'] as const)
          for (const side of order) {
            const p = side === 'before' ? otherPage : page
            await call(p, 'eddyOpen', `prof-ab-${Date.now().toString(36)}-${round}`)
            const h = await call(p, 'eddyHydrate')
            await call(p, 'eddyClose')
            if (h.rows !== ROWS) throw new Error(`${side}: hydrated ${h.rows} rows, expected ${ROWS}`)
            times[side].push(h.ms)
          }
          console.log(
            `round ${round}: before ${times.before.at(-1)?.toFixed(0)} ms, after ${times.after.at(-1)?.toFixed(0)} ms`,
          )
        }
      } finally {
        await other.close()
        await them.close()
      }
      console.log(
        `median of ${ROUNDS}: before ${median(times.before).toFixed(0)} ms, after ${median(times.after).toFixed(0)} ms`,
      )
      return
    }
    for (let round = 0; round < ROUNDS; round++) {
      edgeMs = []
      await call(page, 'eddyOpen', `prof-h-${Date.now().toString(36)}-${round}`)
      const h = await call(page, 'eddyHydrate')
      await call(page, 'eddyClose')
      if (h.rows !== ROWS) throw new Error(`hydrated ${h.rows} rows, expected ${ROWS}`)
      const eddyEdge = edgeMs.map((x) => x.toFixed(0)).join(' ')
      edgeMs = []
      const f = await call(page, 'hydrateFetch')
      const fetchEdge = edgeMs.map((x) => x.toFixed(0)).join(' ')
      const k = await call(page, 'rawKeyedLoad', `prof-keyed-${round}.duckdb`, PREFIX, ROWS)
      out.eddy.push(h.ms)
      out.fetch.push(f.ms)
      out.keyed.push(k.ms)
      console.log(
        `round ${round}: eddy ${h.ms.toFixed(0)} ms (edge per page ${eddyEdge}) | fetch alone ${f.ms.toFixed(0)} ms (${fetchEdge}) | raw keyed load ${k.ms.toFixed(0)} ms`,
      )
    }
    console.log(
      `median of ${ROUNDS}: eddy ${median(out.eddy).toFixed(0)} | fetch ${median(out.fetch).toFixed(0)} | keyed ${median(out.keyed).toFixed(0)} ms`,
    )
  } finally {
    await profile.dispose()
    await server.close()
    await here.close()
  }
}

await main()
