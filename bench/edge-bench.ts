import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import autocannon from 'autocannon'
import { demoSchema } from '../demo/schema.ts'
import { startNodeServer } from '../edge/runtime/node.ts'
import { openDuckDbWarehouse } from '../edge/warehouse/duckdb/duckdb-warehouse.ts'
import { openPostgresWarehouse } from '../edge/warehouse/postgres/postgres-warehouse.ts'
import type { RowWrite, Warehouse } from '../edge/warehouse/warehouse.ts'
import { formatHlc } from '../shared/hlc.ts'
import type { Mutation, PushBody, PushResponse } from '../shared/protocol.ts'
import { startPostgres } from '../test/setup/postgres.ts'
import { type OrderRow, orderRows } from './data.ts'
import { type Summary, summarize } from './stats.ts'

/**
 * The edge section: rows/s of one push of N mutations through the edge on Node (HTTP on loopback,
 * `startNodeServer`, the same Hono app as `npm start`) against a direct, set-based load of the same
 * number of fresh rows into the same warehouse adapter (`write` + `writeRows`, the adapter's own
 * staging upsert), interleaved in one run. Then the edge under load: 32 autocannon connections,
 * each a client pushing small batches with its own clientId and rising seqs, against the real
 * `demo/server.ts` entry in a child process (so the load generator does not share the edge's loop).
 */
const REPO = resolve(import.meta.dirname, '..')
const ORDERS = demoSchema.table('orders')

export interface PushFigures {
  readonly size: number
  readonly edgeMs: Summary
  readonly directMs: Summary
  readonly edgeRowsPerSec: number
  readonly directRowsPerSec: number
  readonly ratio: number
}

export interface LoadFigures {
  readonly connections: number
  readonly durationS: number
  readonly batch: number
  readonly requests: number
  readonly reqPerSec: number
  readonly rowsPerSec: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  readonly errors: number
  readonly non2xx: number
}

export interface AdapterFigures {
  readonly adapter: 'duckdb' | 'postgres'
  readonly push: PushFigures[]
  readonly load: LoadFigures
}

export interface EdgeOptions {
  readonly quick: boolean
  readonly log: (line: string) => void
}

let series = 0x2000_0000
/** A fresh row series (its own key prefix): every rep writes rows the warehouse has never seen. */
const freshRows = (n: number): OrderRow[] => orderRows(++series, n)

function pushBodyOf(clientId: string, rows: readonly OrderRow[], firstSeq: number, wall: number): PushBody {
  const mutations: Mutation[] = rows.map((r, i) => {
    const { order_id, ...values } = r
    return {
      seq: firstSeq + i,
      table: 'orders',
      op: 'upsert',
      key: { order_id },
      values,
      hlc: formatHlc({ wall, counter: i, node: clientId }),
    }
  })
  return { clientId, mutations }
}

/** The rows as `reconcile` would hand them to the adapter for fresh keys. */
function rowWrites(rows: readonly OrderRow[], clientId: string, wall: number): RowWrite[] {
  return rows.map((r, i) => ({
    key: { order_id: r.order_id },
    row: { values: r, hlc: formatHlc({ wall, counter: i, node: clientId }), deleted: false },
    clientId,
  }))
}

async function timePush(url: string, rows: readonly OrderRow[], clientId: string): Promise<number> {
  const body = JSON.stringify(pushBodyOf(clientId, rows, 1, Date.now()))
  const t0 = performance.now()
  const res = await fetch(`${url}/sync/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  })
  const answer = (await res.json()) as PushResponse
  const ms = performance.now() - t0
  if (!res.ok) throw new Error(`push answered ${res.status}: ${JSON.stringify(answer)}`)
  const applied = answer.results.filter((r) => r.status === 'applied').length
  if (applied !== rows.length) throw new Error(`push applied ${applied} of ${rows.length}`)
  return ms
}

async function timeDirect(
  warehouse: Warehouse,
  rows: readonly OrderRow[],
  clientId: string,
): Promise<number> {
  const writes = rowWrites(rows, clientId, Date.now())
  const t0 = performance.now()
  await warehouse.write((tx) => tx.writeRows(ORDERS, writes))
  return performance.now() - t0
}

/** Edge vs direct, interleaved (edge, direct, edge, ...) so both see the same background load. */
async function pushSection(
  warehouse: Warehouse,
  sizes: readonly number[],
  reps: number,
  log: (line: string) => void,
): Promise<PushFigures[]> {
  const server = await startNodeServer({
    warehouse,
    schema: demoSchema,
    // one push of 10,000 mutations: the bench raises the per-push limits (defaults 1,000 and 1 MiB)
    limits: { maxMutations: 10_000, maxBodyBytes: 16 * 1024 * 1024 },
  })
  const out: PushFigures[] = []
  try {
    // warm-up: JIT, connections, DuckDB/PostgreSQL plans
    await timePush(server.url, freshRows(500), `warm-${series}`)
    await timeDirect(warehouse, freshRows(500), 'warm-direct')
    for (const size of sizes) {
      const edge: number[] = []
      const direct: number[] = []
      for (let i = 0; i < reps; i++) {
        edge.push(await timePush(server.url, freshRows(size), `edge-${size}-${i}`))
        direct.push(await timeDirect(warehouse, freshRows(size), `direct-${size}-${i}`))
      }
      const e = summarize(edge)
      const d = summarize(direct)
      const fig: PushFigures = {
        size,
        edgeMs: e,
        directMs: d,
        edgeRowsPerSec: (size / e.median) * 1000,
        directRowsPerSec: (size / d.median) * 1000,
        ratio: d.median / e.median,
      }
      log(
        `  ${warehouse.kind} ${size}: edge ${e.median.toFixed(1)} ms, direct ${d.median.toFixed(1)} ms, ratio ${fig.ratio.toFixed(2)}`,
      )
      out.push(fig)
    }
  } finally {
    await server.close()
  }
  return out
}

/** `npm start`'s entry (demo/server.ts) in a child process on a free port, on the given warehouse. */
async function spawnEdge(env: Record<string, string>): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(join(REPO, 'node_modules/.bin/tsx'), ['demo/server.ts'], {
    cwd: REPO,
    env: { ...process.env, PORT: '0', EDDY_SEED: 'off', EDDY_JWT_SECRET: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString()
  })
  const url = await new Promise<string>((ok, fail) => {
    let out = ''
    const timer = setTimeout(() => fail(new Error(`edge did not start: ${stderr}`)), 60_000)
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString()
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m?.[1] !== undefined) {
        clearTimeout(timer)
        ok(m[1])
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      fail(new Error(`edge exited (${code}): ${stderr}`))
    })
  })
  return {
    url,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done()
        child.once('exit', () => done())
        child.kill('SIGTERM')
      }),
  }
}

/** 32 connections, each one client (own clientId, rising seqs) pushing `batch` fresh orders per request. */
async function loadSection(url: string, durationS: number, batch: number): Promise<LoadFigures> {
  const connections = 32
  let clients = 0
  const prefix = ++series
  let rowIndex = 0
  const result = await autocannon({
    url: `${url}/sync/push`,
    connections,
    duration: durationS,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        setupRequest(req, context) {
          const ctx = context as { clientId?: string; seq?: number }
          ctx.clientId ??= `load-${prefix}-${++clients}`
          const seq = ctx.seq ?? 1
          ctx.seq = seq + batch
          const rows = orderRows(prefix, batch, rowIndex)
          rowIndex += batch
          return { ...req, body: JSON.stringify(pushBodyOf(ctx.clientId, rows, seq, Date.now())) }
        },
      },
    ],
  })
  return {
    connections,
    durationS,
    batch,
    requests: result.requests.total,
    reqPerSec: result.requests.average,
    rowsPerSec: result.requests.average * batch,
    p50Ms: result.latency.p50,
    p90Ms: result.latency.p90,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  }
}

export async function runEdgeBench(opts: EdgeOptions): Promise<AdapterFigures[]> {
  const { log } = opts
  const sizes = [1000, 10_000]
  const reps = opts.quick ? 3 : 7
  const loadS = opts.quick ? 4 : 10
  const batch = 10
  const out: AdapterFigures[] = []

  log('edge: DuckDB (in-process push vs direct)')
  {
    const warehouse = await openDuckDbWarehouse({ schema: demoSchema })
    await warehouse.migrate()
    let push: PushFigures[]
    try {
      push = await pushSection(warehouse, sizes, reps, log)
    } finally {
      await warehouse.close()
    }
    log('edge: DuckDB under load (demo/server.ts child, autocannon)')
    const dir = await mkdtemp(join(tmpdir(), 'eddy-bench-'))
    const edge = await spawnEdge({ EDDY_DUCKDB_PATH: join(dir, 'load.duckdb'), EDDY_PG_URL: '' })
    let load: LoadFigures
    try {
      load = await loadSection(edge.url, loadS, batch)
    } finally {
      await edge.stop()
      await rm(dir, { recursive: true, force: true })
    }
    out.push({ adapter: 'duckdb', push, load })
  }

  log('edge: PostgreSQL (server from test/setup/postgres.ts)')
  const pg = await startPostgres()
  try {
    const warehouse = await openPostgresWarehouse({ schema: demoSchema, url: pg.url })
    await warehouse.migrate()
    let push: PushFigures[]
    try {
      push = await pushSection(warehouse, sizes, reps, log)
    } finally {
      await warehouse.close()
    }
    log('edge: PostgreSQL under load')
    const edge = await spawnEdge({ EDDY_PG_URL: pg.url })
    let load: LoadFigures
    try {
      load = await loadSection(edge.url, loadS, batch)
    } finally {
      await edge.stop()
    }
    out.push({ adapter: 'postgres', push, load })
  } finally {
    await pg.stop()
  }
  return out
}
