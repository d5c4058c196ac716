import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { demoSchema } from '../demo/schema.ts'
import { createSyncApp } from '../edge/http/app.ts'
import { openDuckDbWarehouse } from '../edge/warehouse/duckdb/duckdb-warehouse.ts'
import { must } from '../shared/errors.ts'
import { launchProfile, openPage, REPO, startServer } from '../test/browser/harness.ts'
import { call } from './browser-bench.ts'
import { GROUP_BY_SQL } from './data.ts'
import type { BenchApi } from './page/main.ts'
import type { ProfileResult, ProfileStep } from './page/query-profile.ts'
import { seedOrders } from './seed-orders.ts'

/**
 * `npx tsx bench/query-profile.ts [--layout | --eddy | --isolated | --hydrated] [rows...]`: where the analytics
 * round's time goes, in one Chromium page (production build of the bench page). By default: the
 * GROUP BY on raw DuckDB-WASM in memory, on a raw OPFS file, and on Eddy's own cache file (filled
 * like the bench's 1M round) read raw and through `eddy.query`, with `EXPLAIN ANALYZE` and the
 * cache table's storage layout. `--layout`: one file, the rows stored with and without FSST and
 * uncompressed, queried in alternation. `--eddy`: two caches (DuckDB's default compression vs the
 * cache's settings) open at once and asked in turn. `--isolated`: a cross-origin isolated page,
 * DuckDB-WASM's `eh` vs threaded `coi` bundle, in memory and on OPFS. `--hydrated [--before=<dir>]`:
 * the bench's 100k round, its cache filled by `sync()` from a real edge (see `hydrated`). Prints a
 * report; not part of `npm run bench`.
 */
const DIST = join(REPO, '.cache', 'bench-dist')
const isolated = process.argv.includes('--isolated')
const sizes = process.argv
  .slice(2)
  .filter((a) => !a.startsWith('--'))
  .map(Number)
  .filter((n) => n > 0)
const ns = sizes.length > 0 ? sizes : [100_000, 1_000_000]
const REPS = 10

type Fn = keyof BenchApi
async function tryCall<K extends Fn>(
  page: Page,
  name: K,
  ...args: Parameters<BenchApi[K]>
): Promise<Awaited<ReturnType<BenchApi[K]>> | []> {
  try {
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<never>((_, fail) => {
      timer = setTimeout(() => fail(new Error('no answer within 120 s')), 120_000)
    })
    try {
      return await Promise.race([call(page, name, ...args), late])
    } finally {
      clearTimeout(timer)
    }
  } catch (e) {
    console.log(`  ${name} failed: ${String(e).split('\n')[0]}`)
    return []
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : (s[Math.floor((s.length - 1) / 2)] ?? Number.NaN)
}

/** A table like the demo's `orders` (text amounts), `n` rows generated in DuckDB itself. */
function fill(table: string, n: number): string {
  return `CREATE OR REPLACE TABLE ${table} AS SELECT
    uuid()::VARCHAR AS order_id, (1 + h % 1000)::INTEGER AS customer_id,
    printf('%d.%02d', (500 + h % 50000) // 100, (500 + h % 50000) % 100) AS total_amount,
    ['pending','paid','shipped','cancelled'][1 + ((h >> 20) % 4)::INTEGER] AS status,
    strftime(TIMESTAMP '2025-01-01' + to_seconds((h % 31536000)::BIGINT), '%Y-%m-%dT%H:%M:%S.000Z') AS created_at
    FROM (SELECT hash(i) AS h FROM range(${n}) t(i))`
}

const NO_CAST = 'SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status'
const CAST_ONLY = 'SELECT sum(CAST(total_amount AS DECIMAL(18,2))) AS total FROM orders'

function print(label: string, res: readonly ProfileResult[]): void {
  for (const r of res) {
    if (r.ms.length > 0)
      console.log(
        `  ${label} | ${median(r.ms).toFixed(1)} ms median of ${r.ms.length} | ${r.sql.slice(0, 90)}`,
      )
  }
}

function printPlan(res: readonly ProfileResult[]): void {
  for (const r of res) {
    if (!r.sql.startsWith('EXPLAIN ANALYZE')) continue
    for (const row of r.rows) console.log(String(row.explain_value ?? JSON.stringify(row)))
  }
}

const storageSummary = (table: string): string =>
  `SELECT column_name, count(DISTINCT row_group_id) AS row_groups, count(*) AS segments,
     string_agg(DISTINCT compression, ',') AS compression, sum(count) AS tuples
   FROM pragma_storage_info('${table}') GROUP BY column_name ORDER BY column_name`

const rowGroupSizes = (table: string): string =>
  `SELECT count(*) AS row_groups, min(c) AS min_rows, max(c) AS max_rows FROM
     (SELECT row_group_id, max(count) AS c FROM pragma_storage_info('${table}') WHERE column_name = 'status' GROUP BY row_group_id)`

async function main(): Promise<void> {
  const { build } = await import('vite')
  process.env.EDDY_BENCH_OUT = DIST
  await build({ configFile: join(REPO, 'bench', 'vite.config.ts'), logLevel: 'error' })
  const server = await startServer(DIST, { isolated })
  const profile = await launchProfile()
  try {
    if (process.argv.includes('--hydrated')) {
      await hydrated(server, profile.context)
      return
    }
    const page = await openPage(profile.context, `${server.origin}/`, 'bench ready')
    console.log(`crossOriginIsolated: ${await call(page, 'profileIsolated')}`)
    const queries = (from: string): ProfileStep[] => [
      { sql: GROUP_BY_SQL.replace('FROM orders', `FROM ${from}`), reps: REPS },
      { sql: NO_CAST.replace('FROM orders', `FROM ${from}`), reps: REPS },
      { sql: CAST_ONLY.replace('FROM orders', `FROM ${from}`), reps: REPS },
      { sql: `EXPLAIN ANALYZE ${GROUP_BY_SQL.replace('FROM orders', `FROM ${from}`)}`, reps: 0 },
    ]
    if (isolated) {
      await threads(page)
      return
    }
    if (process.argv.includes('--eddy')) {
      await eddyLayouts(page)
      return
    }
    if (process.argv.includes('--load')) {
      // the bulk load (loadArrow + its CHECKPOINT) into a fresh file, FSST on vs off, in turns
      for (const n of ns) {
        const s: Record<string, number[]> = { fsst: [], nofsst: [] }
        for (let round = 0; round < 3; round++) {
          s.fsst?.push(await call(page, 'eddyPreload', `prof-load-a-${n}-${round}`, 0x3000, n, []))
          s.nofsst?.push(await call(page, 'eddyPreload', `prof-load-b-${n}-${round}`, 0x3000, n))
        }
        console.log(`  load ${n}: FSST ${JSON.stringify(s.fsst)} s, without ${JSON.stringify(s.nofsst)} s`)
      }
      return
    }
    if (process.argv.includes('--micro')) {
      for (const n of ns) {
        const steps: ProfileStep[] = [{ sql: fill('orders', n), reps: 0 }]
        for (const sql of [
          'SELECT 1 AS x',
          'SELECT count(*) AS n FROM orders',
          'SELECT status, count(*) AS n FROM orders GROUP BY status',
          NO_CAST,
          CAST_ONLY,
          GROUP_BY_SQL,
        ])
          steps.push({ sql, reps: 20 })
        print(`micro ${n}`, await call(page, 'profileSql', ':memory:', steps))
      }
      return
    }
    if (process.argv.includes('--layout')) {
      await layouts(page)
      return
    }
    for (const n of ns) {
      console.log(`\n=== ${n} rows`)
      const mem = await call(page, 'profileSql', ':memory:', [
        { sql: fill('orders', n), reps: 0 },
        ...queries('orders'),
      ])
      print('raw memory', mem)
      printPlan(mem)

      const file = `opfs://prof-raw-${n}.duckdb`
      await call(page, 'profileSql', file, [
        { sql: fill('orders', n), reps: 0 },
        { sql: 'CHECKPOINT', reps: 0 },
      ])
      const opfs = await call(page, 'profileSql', file, [
        ...queries('orders'),
        { sql: rowGroupSizes('orders'), reps: 0 },
      ])
      print('raw opfs ', opfs)
      console.log(`  raw opfs layout: ${JSON.stringify(opfs.at(-1)?.rows)}`)

      const name = `prof-eddy-${n}`
      const loadS = await call(page, 'eddyPreload', name, 0x3000, n)
      console.log(`  eddyPreload: ${loadS.toFixed(1)} s`)
      const eddyRaw = await call(page, 'profileSql', `opfs://${name}.duckdb`, [
        ...queries('orders'),
        { sql: GROUP_BY_SQL.replace('FROM orders', 'FROM _eddy_orders'), reps: REPS },
        { sql: storageSummary('_eddy_orders'), reps: 0 },
        { sql: rowGroupSizes('_eddy_orders'), reps: 0 },
      ])
      print('eddy file raw', eddyRaw)
      printPlan(eddyRaw)
      console.log(`  eddy file layout: ${JSON.stringify(eddyRaw.at(-1)?.rows)}`)
      for (const r of eddyRaw.at(-2)?.rows ?? []) console.log(`    ${JSON.stringify(r)}`)

      await call(page, 'eddyOpen', name)
      const q = await call(page, 'eddyQuery', REPS)
      console.log(`  eddy.query | ${median(q.ms).toFixed(1)} ms median of ${q.ms.length}`)
      await call(page, 'eddyClose')
    }
  } finally {
    await profile.dispose()
    await server.close()
  }
}

const HYDRATE_PREFIX = 0x2000

/**
 * The bench's analytics round at 100k, its way: a fresh profile's `sync()` pulls the rows from a
 * real edge (`createSyncApp` on an in-memory DuckDB warehouse), then, per round and in turns,
 * `eddy.query` on that instance (the view and the physical table) and its `SELECT 1` round trip,
 * raw DuckDB-WASM on the same OPFS file once Eddy closed it, Eddy reopened on that file, and raw
 * DuckDB-WASM in memory (the bench's baseline). `--peers`: the bench's PGlite, Dexie and RxDB loads
 * of the same rows run in the page after the first hydrate, as in the bench. With `--before=<dir>` (a checkout of an earlier
 * tree, its `node_modules` linked) the same round runs from that tree's page too, the two pages
 * taking turns in one Chromium.
 */
async function hydrated(
  server: Awaited<ReturnType<typeof startServer>>,
  context: Awaited<ReturnType<typeof launchProfile>>['context'],
): Promise<void> {
  const n = sizes[0] ?? 100_000
  const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 3)
  const reps = 20
  const peerEach = process.argv.includes('--peer-each')
  const peers = peerEach || process.argv.includes('--peers')
  const course = process.argv.includes('--course')
  const fresh = process.argv.includes('--fresh')
  const idleS = Number(process.argv.find((a) => a.startsWith('--idle='))?.slice(7) ?? 0)
  const warehouse = await openDuckDbWarehouse({ schema: demoSchema })
  await warehouse.migrate()
  await seedOrders(warehouse, HYDRATE_PREFIX, n)
  const app = createSyncApp({ schema: demoSchema, warehouse })
  server.setEdge((req) => app.fetch(req))
  const sides: Array<{ label: string; page: Page; close?: () => Promise<void> }> = [
    { label: 'this tree', page: await openPage(context, `${server.origin}/`, 'bench ready') },
  ]
  const before = process.argv.find((a) => a.startsWith('--before='))?.slice('--before='.length)
  if (before !== undefined) {
    const { build } = await import('vite')
    const dist = join(before, '.cache', 'bench-dist')
    process.env.EDDY_BENCH_OUT = dist
    await build({ configFile: join(before, 'bench', 'vite.config.ts'), logLevel: 'error' })
    const other = await startServer(dist)
    other.setEdge((req) => app.fetch(req))
    sides.unshift({
      label: 'before',
      page: await openPage(context, `${other.origin}/`, 'bench ready'),
      close: () => other.close(),
    })
  }
  const physicalSql = GROUP_BY_SQL.replace('FROM orders', 'FROM _eddy_orders')
  type Figures = Record<string, number[]>
  const all = new Map<string, Figures>(sides.map((s) => [s.label, {}]))
  const add = (f: Figures, k: string, xs: readonly number[]) => {
    f[k] = [...(f[k] ?? []), ...xs]
  }
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse()
      for (const side of order) {
        const f = must(all.get(side.label), side.label)
        const p = side.page
        const name = `prof-hyd-${Date.now().toString(36)}-${round}`
        await call(p, 'eddyOpen', name)
        const h = await call(p, 'eddyHydrate')
        if (h.rows !== n) throw new Error(`${side.label}: hydrated ${h.rows} rows, expected ${n}`)
        if (course) await call(p, 'rawMemoryOpen', HYDRATE_PREFIX, n)
        if (idleS > 0) await new Promise((ok) => setTimeout(ok, idleS * 1000))
        if (peers && (round === 0 || course)) {
          // the bench loads its peers between the hydrate and Eddy's query: their heaps and
          // background work stay in the page for every later round too (each load its own rows)
          // `--peer-each`: one peer per round (PGlite, Dexie, RxDB in turn), to see whose load it is
          const prefix = HYDRATE_PREFIX + 0x100 * (round + 1)
          const only = peerEach ? ['pglite', 'dexie', 'rxdb'][round % 3] : undefined
          if (only === undefined || only === 'pglite') await call(p, 'pgliteLoad', prefix, n)
          if (only === undefined || only === 'dexie') await call(p, 'dexieLoad', prefix, n)
          if (only === undefined || only === 'rxdb') await call(p, 'rxdbLoad', prefix, n)
          if (only !== undefined) console.log(`  round ${round}: loaded ${only} only`)
        }
        if (course) {
          // the time course after the bench's steps: Eddy and a raw in-memory DuckDB-WASM take
          // turns, 5 queries each, so a transient shows as both sides slow at first (the raw one
          // opened and filled before the peers' loads, as old as Eddy's)
          const line: string[] = []
          const eddyFirst = round % 2 === 0
          for (let slot = 0; slot < 12; slot++) {
            const m0 = eddyFirst ? [] : await call(p, 'rawMemoryQuery', 5)
            const e = median(await call(p, 'eddyTimeSql', GROUP_BY_SQL, 5))
            const m = median(eddyFirst ? await call(p, 'rawMemoryQuery', 5) : m0)
            line.push(`${e.toFixed(0)}/${m.toFixed(0)}`)
          }
          await call(p, 'rawMemoryClose')
          console.log(
            `  ${side.label} round ${round} course (eddy/raw memory, 5 each, ${eddyFirst ? 'eddy' : 'raw'} first): ${line.join(' ')}`,
          )
        }
        const r: Figures = {}
        r.hydrate = [h.ms]
        r['eddy view'] = await call(p, 'eddyTimeSql', GROUP_BY_SQL, reps)
        r['eddy physical'] = await call(p, 'eddyTimeSql', physicalSql, reps)
        r['eddy select 1'] = await call(p, 'eddyRoundTrip', reps)
        r['eddy view again'] = await call(p, 'eddyTimeSql', GROUP_BY_SQL, reps)
        await call(p, 'eddyClose')
        if (fresh) {
          // a freshly opened file, each query's time in order, after the machine settled
          const pause = () => new Promise((ok) => setTimeout(ok, 5000))
          const seq = (xs: readonly number[]) => xs.map((x) => x.toFixed(0)).join(' ')
          for (const [label, sql] of [
            ['raw file view', GROUP_BY_SQL],
            ['raw file physical', physicalSql],
            ['raw file view', GROUP_BY_SQL],
          ] as const) {
            await pause()
            const got = await call(p, 'profileSql', `opfs://${name}.duckdb`, [{ sql, reps: 40 }])
            console.log(`  fresh ${label}: ${seq(got[0]?.ms ?? [])}`)
          }
          await pause()
          const pairs: ProfileStep[] = []
          for (let i = 0; i < 20; i++)
            pairs.push({ sql: GROUP_BY_SQL, reps: 1 }, { sql: physicalSql, reps: 1 })
          const alt = await call(p, 'profileSql', `opfs://${name}.duckdb`, pairs)
          const pick = (sql: string) => alt.filter((x) => x.sql === sql).flatMap((x) => x.ms)
          console.log(`  fresh alternating view:     ${seq(pick(GROUP_BY_SQL))}`)
          console.log(`  fresh alternating physical: ${seq(pick(physicalSql))}`)
          await pause()
          await call(p, 'eddyOpen', name)
          console.log(`  fresh eddy view: ${seq(await call(p, 'eddyTimeSql', GROUP_BY_SQL, 40))}`)
          await call(p, 'eddyClose')
          await pause()
          await call(p, 'rawMemoryOpen', HYDRATE_PREFIX, n)
          console.log(`  fresh raw memory: ${seq(await call(p, 'rawMemoryQuery', 40))}`)
          await call(p, 'rawMemoryClose')
        }
        const file = await call(p, 'profileSql', `opfs://${name}.duckdb`, [
          { sql: GROUP_BY_SQL, reps },
          { sql: physicalSql, reps },
          ...(round === 0
            ? [
                { sql: storageSummary('_eddy_orders'), reps: 0 },
                { sql: rowGroupSizes('_eddy_orders'), reps: 0 },
                { sql: `EXPLAIN ANALYZE ${GROUP_BY_SQL}`, reps: 0 },
              ]
            : []),
        ])
        r['raw file view'] = file[0]?.ms ?? []
        r['raw file physical'] = file[1]?.ms ?? []
        if (round === 0) {
          console.log(`  ${side.label}: hydrated file layout ${JSON.stringify(file[3]?.rows)}`)
          for (const row of file[2]?.rows ?? []) console.log(`    ${JSON.stringify(row)}`)
          printPlan(file.slice(4))
        }
        await call(p, 'eddyOpen', name)
        r['eddy reopened'] = await call(p, 'eddyTimeSql', GROUP_BY_SQL, reps)
        await call(p, 'eddyClose')
        r['raw memory'] = (await call(p, 'rawArrowInsert', HYDRATE_PREFIX, n, 1, reps)).queryMs
        for (const [k, xs] of Object.entries(r)) add(f, k, xs)
        console.log(
          `round ${round} ${side.label}: ${Object.entries(r)
            .map(([k, xs]) => `${k} ${median(xs).toFixed(1)}`)
            .join(' | ')}`,
        )
      }
    }
    for (const [label, f] of all)
      console.log(
        `median over ${rounds} rounds, ${label}: ${Object.entries(f)
          .map(([k, xs]) => `${k} ${median(xs).toFixed(1)}`)
          .join(' | ')}`,
      )
  } finally {
    for (const s of sides) await s.close?.()
    await warehouse.close()
  }
}

/**
 * The same rows stored three ways in one OPFS file, queried in alternation: DuckDB's default
 * compression (FSST for the text amounts), FSST disabled, and no compression at all.
 */
async function layouts(page: Page): Promise<void> {
  for (const n of ns) {
    const file = `opfs://prof-layout-${n}.duckdb`
    const settings = await call(page, 'profileSql', file, [
      {
        sql: "SELECT name, value FROM duckdb_settings() WHERE name LIKE '%compress%' OR name IN ('threads', 'memory_limit', 'preserve_insertion_order')",
        reps: 0,
      },
      { sql: fill('base', n), reps: 0 },
      { sql: 'CREATE OR REPLACE TABLE t_default AS SELECT * FROM base', reps: 0 },
      { sql: 'CHECKPOINT', reps: 0 },
      { sql: "SET disabled_compression_methods = 'fsst'", reps: 0 },
      { sql: 'CREATE OR REPLACE TABLE t_nofsst AS SELECT * FROM base', reps: 0 },
      { sql: 'CHECKPOINT', reps: 0 },
      { sql: "SET force_compression = 'uncompressed'", reps: 0 },
      { sql: 'CREATE OR REPLACE TABLE t_plain AS SELECT * FROM base', reps: 0 },
      { sql: 'CHECKPOINT', reps: 0 },
    ])
    console.log(`\n=== ${n} rows: settings ${JSON.stringify(settings[0]?.rows)}`)
    const tables = ['t_default', 't_nofsst', 't_plain']
    const steps: ProfileStep[] = []
    for (const t of tables) steps.push({ sql: storageSummary(t), reps: 0 })
    for (let round = 0; round < 6; round++)
      for (const t of tables) {
        steps.push({ sql: GROUP_BY_SQL.replace('FROM orders', `FROM ${t}`), reps: 5 })
        steps.push({ sql: CAST_ONLY.replace('FROM orders', `FROM ${t}`), reps: 5 })
      }
    const res = await call(page, 'profileSql', file, steps)
    for (const [i, t] of tables.entries())
      console.log(
        `  ${t}: ${JSON.stringify(res[i]?.rows.filter((r) => r.column_name === 'total_amount' || r.column_name === 'status'))}`,
      )
    const by = new Map<string, number[]>()
    for (const r of res.slice(tables.length)) by.set(r.sql, [...(by.get(r.sql) ?? []), ...r.ms])
    for (const [sql, ms] of by)
      console.log(`  ${median(ms).toFixed(1)} ms median of ${ms.length} | ${sql.slice(0, 120)}`)
  }
}

/**
 * Through `eddy.query`, side by side: a cache file written with DuckDB's default compression (as
 * every cache was before `CACHE_SETTINGS`) and one written with the cache's settings, in
 * alternating rounds, plus the bench's raw in-memory baseline.
 */
async function eddyLayouts(page: Page): Promise<void> {
  for (const n of ns) {
    console.log(`\n=== ${n} rows through eddy.query`)
    const files = { before: `prof-before-${n}`, after: `prof-after-${n}` }
    await call(page, 'eddyPreload', files.before, 0x3000, n, [])
    await call(page, 'eddyPreload', files.after, 0x3000, n)
    for (const [k, name] of Object.entries(files)) {
      const size = await call(page, 'profileSql', `opfs://${name}.duckdb`, [
        { sql: 'SELECT database_size, used_blocks, block_size FROM pragma_database_size()', reps: 0 },
        { sql: storageSummary('_eddy_orders'), reps: 0 },
      ])
      console.log(`  ${k} file: ${JSON.stringify(size[0]?.rows[0])}`)
      for (const r of size[1]?.rows ?? []) console.log(`    ${JSON.stringify(r)}`)
    }
    const pair = await call(page, 'eddyPairQuery', files.before, files.after, 3 * REPS)
    console.log(
      `  paired: before ${median(pair.a).toFixed(1)} ms, after ${median(pair.b).toFixed(1)} ms (median of ${pair.a.length} each, alternating)`,
    )
    const ms: Record<string, number[]> = { before: [], after: [], raw: [], select1: [] }
    for (let round = 0; round < 3; round++) {
      for (const [k, name] of Object.entries(files)) {
        await call(page, 'eddyOpen', name)
        const q = await call(page, 'eddyQuery', REPS)
        ms[k]?.push(...q.ms)
        if (k === 'after') ms.select1?.push(...(await call(page, 'eddyRoundTrip', REPS)))
        await call(page, 'eddyClose')
      }
      ms.raw?.push(...(await call(page, 'rawArrowInsert', 0x3000, n, 1)).queryMs)
    }
    for (const [k, xs] of Object.entries(ms))
      console.log(`  ${k}: ${median(xs).toFixed(1)} ms median of ${xs.length}`)
  }
}

/** On an isolated page: eh vs coi side by side, in memory and on OPFS (fresh open, cold reads). */
async function threads(page: Page): Promise<void> {
  const settings = { sql: "SELECT current_setting('threads') AS threads", reps: 0 }
  for (const n of ns) {
    console.log(`\n=== ${n} rows, isolated page`)
    for (const bundle of ['coi', 'eh', 'coi'] as const) {
      const mem = await tryCall(
        page,
        'profileSql',
        ':memory:',
        [
          settings,
          { sql: fill('orders', n), reps: 0 },
          { sql: GROUP_BY_SQL, reps: REPS },
          { sql: CAST_ONLY, reps: REPS },
        ],
        bundle,
      )
      console.log(`  ${bundle} threads=${JSON.stringify(mem[0]?.rows[0])}`)
      print(`${bundle} memory`, mem)
      if (process.argv.includes('--memory-only')) continue
      const file = `opfs://prof-${bundle}-${n}.duckdb`
      console.log(`  ${bundle} opfs: filling ${file}`)
      await tryCall(
        page,
        'profileSql',
        file,
        [
          { sql: fill('orders', n), reps: 0 },
          { sql: 'CHECKPOINT', reps: 0 },
        ],
        bundle,
      )
      console.log(`  ${bundle} opfs: reopening`)
      const cold = await tryCall(page, 'profileSql', file, [{ sql: GROUP_BY_SQL, reps: REPS }], bundle)
      print(`${bundle} opfs`, cold)
      console.log(`  ${bundle} opfs first (cold) answer: ${JSON.stringify(cold[0]?.rows)}`)
    }
  }
}

await main()
