import { readFileSync } from 'node:fs'
import { demoSchema } from '../demo/schema.ts'
import { columnsToArrow, pullColumnPage } from '../edge/pull/arrow-pull.ts'
import { openPostgresWarehouse } from '../edge/warehouse/postgres/postgres-warehouse.ts'
import type { Warehouse } from '../edge/warehouse/warehouse.ts'
import { startPostgres } from '../test/setup/postgres.ts'
import { seedOrders } from './seed-orders.ts'

/**
 * `npx tsx bench/pg-arrow-pull.ts [rows] [rounds] [pageRows]`: the edge's part of a first load
 * from PostgreSQL alone. Every Arrow page of `rows` orders (the client's 25,000-row pages by
 * default) read and encoded as the edge answers them, through the row path (`pull`'s rows
 * converted) and through the column reader (`pullColumns`), taking turns in one process against
 * one server (test/setup/postgres.ts, or `EDDY_PG_URL`). Checks that both give the same bytes,
 * then prints the median wall time and this process's CPU time of each. Not part of `npm run bench`.
 */
const args = process.argv.slice(2)
const ROWS = Number(args[0] ?? 100_000)
const ROUNDS = Number(args[1] ?? 7)
const PAGE = Number(args[2] ?? 25_000)

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor((s.length - 1) / 2)] ?? Number.NaN
}

/** Every page of the orders, encoded; the streams concatenated. */
async function pullAll(w: Warehouse): Promise<Uint8Array[]> {
  const orders = demoSchema.table('orders')
  const out: Uint8Array[] = []
  let after = 0n
  for (;;) {
    const page = await pullColumnPage(w, { table: orders, afterVersion: after, limit: PAGE })
    out.push(columnsToArrow(orders, page.columns))
    if (!page.hasMore) return out
    after = page.lastVersion ?? after
  }
}

const sameBytes = (a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean =>
  a.length === b.length && a.every((x, i) => Buffer.compare(x, b[i] ?? new Uint8Array(0)) === 0)

async function main(): Promise<void> {
  const pg = await startPostgres()
  const searchPath = `eddy_pg_arrow_${process.pid}`
  // one connection, so its server process's CPU time is the reads' own
  const w = await openPostgresWarehouse({ schema: demoSchema, url: pg.url, searchPath, max: 1 })
  try {
    await w.migrate()
    await seedOrders(w, 0x2000, ROWS, 25_000)
    // what autovacuum would have done by then: without statistics the planner sorts the whole table
    const { default: postgres } = await import('postgres')
    const admin = postgres(pg.url, { onnotice: () => {}, connection: { search_path: searchPath } })
    await admin.unsafe('ANALYZE orders')

    const { pullColumns: _, ...rest } = w
    const sides: Record<string, Warehouse> = { 'row path': rest, 'column reader': w }
    const first = await Promise.all(Object.values(sides).map(pullAll))
    if (!sameBytes(must0(first[0]), must0(first[1]))) throw new Error('the two paths differ')
    const backend = await admin.unsafe(
      `SELECT pid FROM pg_stat_activity
       WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
    )
    await admin.end()
    const pid = backend.length === 1 ? Number(backend[0]?.pid) : undefined
    const serverMs = new Map(Object.keys(sides).map((name) => [name, [] as number[]]))
    const wall = new Map(Object.keys(sides).map((name) => [name, [] as number[]]))
    const cpu = new Map(Object.keys(sides).map((name) => [name, [] as number[]]))
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, side] of Object.entries(sides)) {
        const c0 = process.cpuUsage()
        const s0 = serverCpuMs(pid)
        const t0 = performance.now()
        await pullAll(side)
        serverMs.get(name)?.push(serverCpuMs(pid) - s0)
        const t = performance.now() - t0
        const c = process.cpuUsage(c0)
        wall.get(name)?.push(t)
        cpu.get(name)?.push((c.user + c.system) / 1000)
      }
    }
    const bytes = must0(first[1]).reduce((n, x) => n + x.byteLength, 0)
    console.log(
      `${ROWS} orders in pages of ${PAGE} (${bytes} bytes of Arrow), median of ${ROUNDS} alternating rounds:`,
    )
    for (const name of Object.keys(sides))
      console.log(
        `  ${name.padEnd(14)} ${median(wall.get(name) ?? []).toFixed(0)} ms wall, ${median(cpu.get(name) ?? []).toFixed(0)} ms CPU in Node, ${median(serverMs.get(name) ?? []).toFixed(0)} ms CPU in its PostgreSQL process`,
      )
    const ratio = median(wall.get('row path') ?? []) / median(wall.get('column reader') ?? [])
    console.log(`  row path / column reader: ${ratio.toFixed(2)}x (wall)`)
  } finally {
    await w.close()
    await pg.stop()
  }
}

/** A server process's CPU time so far (user + system, from /proc; 10 ms ticks), NaN when unknown. */
function serverCpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN
  try {
    // the fields after the command name (which is in parentheses); utime and stime are the 12th and 13th
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return Number.NaN
  }
}

function must0<T>(x: T | undefined): T {
  if (x === undefined) throw new Error('missing')
  return x
}

await main()
