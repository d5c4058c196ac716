import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { demoSchema } from '../demo/schema.ts'
import { createSyncApp } from '../edge/http/app.ts'
import { openDuckDbWarehouse } from '../edge/warehouse/duckdb/duckdb-warehouse.ts'
import { launchProfile, openPage, REPO, startServer } from '../test/browser/harness.ts'
import type { BenchApi, BenchWindow } from './page/main.ts'
import type { GroupAnswer } from './page/timing.ts'
import { seedOrders } from './seed-orders.ts'
import { type Summary, summarize } from './stats.ts'

/**
 * The browser section: one headless Chromium (Debian's, the harness's flags) on a persistent
 * profile in a temp folder (so IndexedDB and OPFS are on disk, as for a user), the production build
 * of `bench/page/`, served same-origin with the real edge (`createSyncApp` on an in-memory DuckDB
 * warehouse) at `/sync`.
 */
export const DIST = join(REPO, '.cache', 'bench-dist')

export interface BrowserSizes {
  readonly writes: number
  readonly pgliteWrites: number
  readonly bulk: number
  readonly bulkReps: number
  readonly hydrate: number
  readonly queryReps: number
  readonly coldReps: number
  /** The 1M analytics round (full run only). */
  readonly million: number | undefined
}

export interface GroupFigures {
  readonly rows: number
  readonly eddy: Summary
  readonly pglite: Summary
  readonly dexieJs: Summary
  readonly rxdbJs: Summary | undefined
  readonly rawDuckdb: Summary | undefined
}

export interface BrowserFigures {
  readonly chromium: string
  readonly persistence: string
  readonly writeAck: { eddy: Summary; dexie: Summary; pglite: Summary; rxdb: Summary }
  /** DuckDB-WASM's own floor: a SELECT 1 round trip and a one-row upsert transaction. */
  readonly duckdbFloor: { select: Summary; upsertTx: Summary }
  readonly bulk: { rows: number; eddy: Summary; dexie: Summary; pglite: Summary; rxdb: Summary }
  /**
   * `fetchMs`: the same Arrow pages fetched from the edge with no cache behind them (edge + HTTP);
   * `keyedLoadMs`: raw DuckDB-WASM putting the rows into a keyed OPFS table, durable. Both for
   * reading the hydrate figure; the ratio stays Eddy / `insertArrowTable`.
   */
  readonly hydrate: { rows: number; eddyMs: number; rawInsert: Summary; fetchMs: number; keyedLoadMs: number }
  readonly analytics: GroupFigures[]
  readonly cold: { rows: number; eddy: Summary; raw: Summary }
}

export const QUICK: BrowserSizes = {
  writes: 100,
  pgliteWrites: 40,
  bulk: 10_000,
  bulkReps: 1,
  hydrate: 20_000,
  queryReps: 5,
  coldReps: 2,
  million: undefined,
}
export const FULL: BrowserSizes = {
  writes: 200,
  pgliteWrites: 200,
  bulk: 10_000,
  bulkReps: 3,
  hydrate: 100_000,
  queryReps: 10,
  coldReps: 7,
  million: 1_000_000,
}

// Row series (key prefixes): each store gets rows it has never seen.
const S = { writes: 0x1000, bulk: 0x1100, data: 0x2000, million: 0x3000 } as const

type Fn = keyof BenchApi
type Args<K extends Fn> = Parameters<BenchApi[K]>
type Out<K extends Fn> = Awaited<ReturnType<BenchApi[K]>>

/** Calls `window.bench[name](...args)` in the page. */
export async function call<K extends Fn>(page: Page, name: K, ...args: Args<K>): Promise<Out<K>> {
  return page.evaluate(
    ([n, a]) => {
      const api = (window as unknown as BenchWindow).bench as unknown as Record<
        string,
        (...x: unknown[]) => Promise<unknown>
      >
      const fn = api[n]
      if (fn === undefined) throw new Error(`no bench function ${n}`)
      return fn(...a)
    },
    [name, args] as [string, unknown[]],
  ) as Promise<Out<K>>
}

/**
 * The analytics round's timed GROUP BYs: Eddy, PGlite and (when `per.raw` > 0, on the instance
 * `rawMemoryOpen` filled) raw DuckDB-WASM in memory take turns, `slots` times, `per[store]`
 * queries a slot after one untimed warm-up, the order rotating each slot. The first queries after the peers' loads run
 * while the page and the browser still finish those loads' deferred work (`bench/query-profile.ts
 * --hydrated --course`: 30–60 ms where the same GROUP BY takes 10–20 ms a second later, for
 * whichever store asks first), so each store gets its share of that rather than one paying alone.
 */
async function groupByInTurns(
  page: Page,
  slots: number,
  per: { eddy: number; pglite: number; raw: number },
): Promise<{
  e: { ms: number[]; answer: GroupAnswer }
  p: { ms: number[]; answer: GroupAnswer }
  rawMs: number[]
}> {
  const e = { ms: [] as number[], answer: {} as GroupAnswer }
  const p = { ms: [] as number[], answer: {} as GroupAnswer }
  const rawMs: number[] = []
  const turns: Array<() => Promise<void>> = [
    async () => {
      const q = await call(page, 'eddyQuery', per.eddy)
      e.ms.push(...q.ms)
      e.answer = q.answer
    },
    async () => {
      const q = await call(page, 'pgliteQuery', per.pglite)
      p.ms.push(...q.ms)
      p.answer = q.answer
    },
    async () => {
      if (per.raw > 0) rawMs.push(...(await call(page, 'rawMemoryQuery', per.raw)))
    },
  ]
  for (let slot = 0; slot < slots; slot++)
    for (let i = 0; i < turns.length; i++) await turns[(slot + i) % turns.length]?.()
  return { e, p, rawMs }
}

/** Runs an untimed preparation step and logs how long it took (the run's own budget). */
async function step<T>(log: (line: string) => void, what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now()
  const out = await fn()
  log(`  ${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  return out
}

/** Splits `total` into rounds so the stores take turns (they share the machine's noise). */
function rounds(total: number, parts: number): number[] {
  const out: number[] = []
  for (let i = 0; i < parts; i++)
    out.push(Math.floor(((i + 1) * total) / parts) - Math.floor((i * total) / parts))
  return out.filter((x) => x > 0)
}

function sameAnswer(a: unknown, b: unknown, what: string): void {
  const text = (x: unknown) => JSON.stringify(Object.entries(x as object).sort())
  if (text(a) !== text(b)) throw new Error(`${what}: answers differ: ${text(a)} vs ${text(b)}`)
}

export async function runBrowserBench(
  sizes: BrowserSizes,
  log: (line: string) => void,
): Promise<BrowserFigures> {
  const { build } = await import('vite')
  process.env.EDDY_BENCH_OUT = DIST
  await build({ configFile: join(REPO, 'bench', 'vite.config.ts'), logLevel: 'error' })

  const warehouse = await openDuckDbWarehouse({ schema: demoSchema })
  await warehouse.migrate()
  await seedOrders(warehouse, S.data, sizes.hydrate)
  const app = createSyncApp({
    schema: demoSchema,
    warehouse,
    onError: (e) => log(`edge error: ${String(e)}`),
    // one push may carry the bulk round's 10,000-row transaction whole (the client refuses larger ones)
    limits: { maxMutations: 10_000, maxBodyBytes: 16 * 1024 * 1024 },
  })
  const server = await startServer(DIST)
  server.setEdge((req) => app.fetch(req))
  const profile = await launchProfile()
  try {
    const chromium = profile.context.browser()?.version() ?? 'unknown'
    let page = await openPage(profile.context, `${server.origin}/`, 'bench ready')

    // 1. write acknowledgement, the stores taking turns
    log(`browser: write ack (${sizes.writes} each; PGlite ${sizes.pgliteWrites})`)
    const persistence = await call(page, 'eddyOpen', 'bench-w')
    const ack = { eddy: [] as number[], dexie: [] as number[], pglite: [] as number[], rxdb: [] as number[] }
    await call(page, 'eddyWriteAck', S.writes + 0xf0, 10) // warm-ups
    await call(page, 'dexieWriteAck', S.writes + 0xf1, 10)
    await call(page, 'pgliteWriteAck', S.writes + 0xf2, 3)
    await call(page, 'rxdbWriteAck', S.writes + 0xf3, 10)
    const parts = 4
    const pgParts = rounds(sizes.pgliteWrites, parts)
    for (const [i, n] of rounds(sizes.writes, parts).entries()) {
      ack.eddy.push(...(await call(page, 'eddyWriteAck', S.writes + i * 4, n)))
      ack.dexie.push(...(await call(page, 'dexieWriteAck', S.writes + i * 4 + 1, n)))
      ack.pglite.push(...(await call(page, 'pgliteWriteAck', S.writes + i * 4 + 2, pgParts[i] ?? 0)))
      ack.rxdb.push(...(await call(page, 'rxdbWriteAck', S.writes + i * 4 + 3, n)))
    }

    const floor = await call(page, 'rawRoundTrips', 50)

    // 2. bulk write
    log(`browser: bulk write (${sizes.bulk} rows)`)
    const bulk = { eddy: [] as number[], dexie: [] as number[], pglite: [] as number[], rxdb: [] as number[] }
    for (let i = 0; i < sizes.bulkReps; i++) {
      bulk.eddy.push(await call(page, 'eddyBulk', S.bulk + i * 4, sizes.bulk))
      bulk.dexie.push(await call(page, 'dexieBulk', S.bulk + i * 4 + 1, sizes.bulk))
    }
    bulk.pglite.push(await call(page, 'pgliteBulk', S.bulk + 0xf2, sizes.bulk))
    bulk.rxdb.push(await call(page, 'rxdbBulk', S.bulk + 0xf3, sizes.bulk))
    await call(page, 'eddyClose')

    // 3. hydrate: a fresh Eddy profile pulls every row from the edge; raw insertArrowTable floor
    log(`browser: hydrate (${sizes.hydrate} rows)`)
    await call(page, 'eddyOpen', 'bench-h')
    const hydrated = await call(page, 'eddyHydrate')
    log(`  Eddy hydrate: ${(hydrated.ms / 1000).toFixed(1)} s`)
    if (hydrated.rows !== sizes.hydrate)
      throw new Error(`hydrate: the cache holds ${hydrated.rows} orders, expected ${sizes.hydrate}`)
    const raw = await call(page, 'rawArrowInsert', S.data, sizes.hydrate, 3)
    const fetched = await call(page, 'hydrateFetch')
    const keyed = await call(page, 'rawKeyedLoad', 'bench-keyed.duckdb', S.data, sizes.hydrate)
    log(
      `  edge + HTTP alone: ${(fetched.ms / 1000).toFixed(1)} s; raw keyed OPFS load: ${(keyed.ms / 1000).toFixed(1)} s`,
    )

    // 4. analytics on the same rows in every store
    log(`browser: analytics GROUP BY over ${sizes.hydrate} rows`)
    const analytics: GroupFigures[] = []
    {
      // the raw in-memory floor, filled before the peers' loads like Eddy's cache
      await call(page, 'rawMemoryOpen', S.data, sizes.hydrate)
      await step(log, 'PGlite load', () => call(page, 'pgliteLoad', S.data, sizes.hydrate))
      await step(log, 'Dexie load', () => call(page, 'dexieLoad', S.data, sizes.hydrate))
      await step(log, 'RxDB load', () => call(page, 'rxdbLoad', S.data, sizes.hydrate))
      const { e, p, rawMs } = await groupByInTurns(page, Math.ceil(sizes.queryReps / 2), {
        eddy: 2,
        pglite: 2,
        raw: 2,
      })
      const d = await call(page, 'dexieAgg', Math.min(3, sizes.queryReps))
      const r = await call(page, 'rxdbAgg', Math.min(3, sizes.queryReps))
      for (const [name, x] of [
        ['raw DuckDB', raw.answer],
        ['PGlite', p.answer],
        ['Dexie JS', d.answer],
        ['RxDB JS', r.answer],
      ] as const)
        sameAnswer(e.answer, x, `GROUP BY Eddy vs ${name}`)
      analytics.push({
        rows: sizes.hydrate,
        eddy: summarize(e.ms),
        pglite: summarize(p.ms),
        dexieJs: summarize(d.ms),
        rxdbJs: summarize(r.ms),
        rawDuckdb: summarize(rawMs),
      })
    }
    await call(page, 'rawMemoryClose')
    await call(page, 'eddyClose')

    // 5. cold start: reload with the hydrated cache until the first query answers; raw floor
    log(`browser: cold start (${sizes.hydrate} cached rows)`)
    await call(page, 'rawColdPrepare', 'bench-raw.duckdb', S.data, sizes.hydrate)
    const cold = { eddy: [] as number[], raw: [] as number[] }
    for (let i = 0; i < sizes.coldReps + 1; i++) {
      for (const [kind, url] of [
        ['eddy', `/?cold=eddy&name=bench-h`],
        ['raw', `/?cold=raw&file=bench-raw.duckdb`],
      ] as const) {
        await page.close()
        page = await openPage(profile.context, `${server.origin}${url}`, 'bench ready')
        const got = await page.evaluate(() => (window as unknown as BenchWindow).cold)
        if (got === undefined || got.rows !== sizes.hydrate)
          throw new Error(`cold ${kind}: answered ${JSON.stringify(got)}, expected ${sizes.hydrate} rows`)
        if (i > 0) cold[kind].push(got.ms) // the first round warms the HTTP cache and the wasm compile cache
      }
    }

    // 6. analytics at 1M rows (full run). A million-row pull through the edge takes minutes here
    // (hydrate is measured at 100k above), so Eddy's cache file is filled with the cache's own
    // Arrow bulk load first; the query then runs through createEddy like every other.
    if (sizes.million !== undefined) {
      const n = sizes.million
      log(`browser: analytics GROUP BY over ${n} rows`)
      await page.close()
      page = await openPage(profile.context, `${server.origin}/`, 'bench ready')
      const loadS = await call(page, 'eddyPreload', 'bench-m', S.million, n)
      log(`  Eddy cache bulk load (loadArrow) of ${n} rows: ${loadS.toFixed(1)} s`)
      await call(page, 'eddyOpen', 'bench-m')
      const rows = await call(page, 'eddyCount')
      if (rows !== n) throw new Error(`1M: the cache holds ${rows} orders`)
      await step(log, 'PGlite load', () => call(page, 'pgliteLoad', S.million, n))
      await step(log, 'Dexie load', () => call(page, 'dexieLoad', S.million, n))
      const { e, p } = await groupByInTurns(page, Math.ceil(sizes.queryReps / 2), {
        eddy: 2,
        pglite: 1,
        raw: 0,
      })
      const d = await call(page, 'dexieAgg', 2)
      // the floor: the same rows in an in-memory DuckDB-WASM (same bundle, no Eddy, no OPFS)
      const raw1m = await call(page, 'rawArrowInsert', S.million, n, 1)
      sameAnswer(e.answer, p.answer, 'GROUP BY 1M Eddy vs PGlite')
      sameAnswer(e.answer, d.answer, 'GROUP BY 1M Eddy vs Dexie JS')
      sameAnswer(e.answer, raw1m.answer, 'GROUP BY 1M Eddy vs raw DuckDB')
      analytics.push({
        rows: n,
        eddy: summarize(e.ms),
        pglite: summarize(p.ms),
        dexieJs: summarize(d.ms),
        rxdbJs: undefined,
        rawDuckdb: summarize(raw1m.queryMs),
      })
      await call(page, 'eddyClose')
    }

    return {
      chromium,
      persistence,
      writeAck: {
        eddy: summarize(ack.eddy),
        dexie: summarize(ack.dexie),
        pglite: summarize(ack.pglite),
        rxdb: summarize(ack.rxdb),
      },
      duckdbFloor: { select: summarize(floor.selectMs), upsertTx: summarize(floor.upsertTxMs) },
      bulk: {
        rows: sizes.bulk,
        eddy: summarize(bulk.eddy),
        dexie: summarize(bulk.dexie),
        pglite: summarize(bulk.pglite),
        rxdb: summarize(bulk.rxdb),
      },
      hydrate: {
        rows: sizes.hydrate,
        eddyMs: hydrated.ms,
        rawInsert: summarize(raw.insertMs),
        fetchMs: fetched.ms,
        keyedLoadMs: keyed.ms,
      },
      analytics,
      cold: { rows: sizes.hydrate, eddy: summarize(cold.eddy), raw: summarize(cold.raw) },
    }
  } finally {
    await profile.dispose()
    await server.close()
    await warehouse.close()
  }
}
