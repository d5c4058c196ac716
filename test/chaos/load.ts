import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { demoSchema } from '../../demo/schema.ts'
import { openDuckDbWarehouse } from '../../edge/warehouse/duckdb/duckdb-warehouse.ts'
import { openPostgresWarehouse } from '../../edge/warehouse/postgres/postgres-warehouse.ts'
import type { Warehouse } from '../../edge/warehouse/warehouse.ts'
import { formatHlc } from '../../shared/hlc.ts'
import { spawnEdge } from './edge-process.ts'
import { startChaosPostgres } from './pg-server.ts'

/**
 * `npm run load`: a bounded closed loop against POST /sync/push of the real Node edge (a separate
 * process, so the load generator does not share its CPU budget with the event loop it measures).
 * `EDDY_LOAD_CONNECTIONS` (64) loops, each its own clientId, push one mutation at a time, each to
 * a fresh key, for `EDDY_LOAD_SECONDS` (30), on DuckDB and on PostgreSQL (`EDDY_LOAD_TARGETS`).
 * Then the warehouse is read directly: every acknowledged mutation must be a row (lost = 0) and the
 * audit trail must count each exactly once. Prints a table and one JSON line per target.
 */
const CONNECTIONS = Number(process.env.EDDY_LOAD_CONNECTIONS ?? 64)
const SECONDS = Number(process.env.EDDY_LOAD_SECONDS ?? 30)
const BATCH = Number(process.env.EDDY_LOAD_BATCH ?? 1)
const TARGETS = (process.env.EDDY_LOAD_TARGETS ?? 'duckdb,postgres').split(',').map((s) => s.trim())

interface LoadResult {
  target: string
  connections: number
  seconds: number
  batch: number
  requests: number
  errors: number
  reqPerSec: number
  mutationsPerSec: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  acked: number
  stored: number
  audited: number
  lost: number
  duplicated: number
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
  return sorted[Math.max(0, i)] ?? 0
}

async function drive(
  url: string,
): Promise<{ latencies: number[]; errors: number; acked: number; elapsedMs: number }> {
  const latencies: number[] = []
  let errors = 0
  let acked = 0
  const started = performance.now()
  const until = started + SECONDS * 1000
  const loop = async (c: number): Promise<void> => {
    const clientId = `load-${c}`
    let seq = 0
    while (performance.now() < until) {
      const mutations = Array.from({ length: BATCH }, () => {
        seq += 1
        return {
          seq,
          table: 'metrics',
          op: 'upsert',
          key: { metric_id: `${clientId}-${seq}` },
          values: { value: seq },
          hlc: formatHlc({ wall: Date.now(), counter: seq % 1000, node: clientId }),
        }
      })
      const t0 = performance.now()
      try {
        const res = await fetch(`${url}/sync/push`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ clientId, mutations }),
        })
        const body = (await res.json()) as { results?: Array<{ status: string }> }
        latencies.push(performance.now() - t0)
        if (res.status !== 200 || body.results?.some((r) => r.status !== 'applied') !== false) errors += 1
        else acked += mutations.length
      } catch {
        latencies.push(performance.now() - t0)
        errors += 1
      }
    }
  }
  await Promise.all(Array.from({ length: CONNECTIONS }, (_, c) => loop(c)))
  return { latencies, errors, acked, elapsedMs: performance.now() - started }
}

async function verify(w: Warehouse): Promise<{ stored: number; audited: number }> {
  const { changes } = await w.pull({
    tables: [demoSchema.table('metrics')],
    afterVersion: 0n,
    limit: 100_000_000,
  })
  const stored = changes.filter((c) => c.row !== null && String(c.key.metric_id).startsWith('load-')).length
  const events = await w.events(100_000_000)
  const audited = events
    .filter((e) => e.clientId.startsWith('load-'))
    .reduce((n, e) => n + e.applied + e.stale + e.conflict + e.rejected, 0)
  return { stored, audited }
}

async function runTarget(target: string): Promise<LoadResult> {
  let edgeUrl: string
  let finish: () => Promise<Warehouse>
  let cleanup: () => Promise<void>
  if (target === 'duckdb') {
    const dir = mkdtempSync(join(tmpdir(), 'eddy-load-'))
    const path = join(dir, 'warehouse.duckdb')
    const edge = await spawnEdge({ duckdb: path })
    edgeUrl = edge.url
    finish = async () => {
      await edge.stop()
      return openDuckDbWarehouse({ schema: demoSchema, path })
    }
    cleanup = async () => rmSync(dir, { recursive: true, force: true })
  } else if (target === 'postgres') {
    const pg = await startChaosPostgres()
    const edge = await spawnEdge({ postgres: pg.url })
    edgeUrl = edge.url
    finish = async () => {
      await edge.stop()
      return openPostgresWarehouse({ schema: demoSchema, url: pg.url })
    }
    cleanup = () => pg.destroy()
  } else {
    throw new Error(`unknown load target '${target}' (duckdb, postgres)`)
  }
  try {
    const run = await drive(edgeUrl)
    const w = await finish()
    const { stored, audited } = await verify(w)
    await w.close()
    const sorted = [...run.latencies].sort((a, b) => a - b)
    const secs = run.elapsedMs / 1000
    return {
      target,
      connections: CONNECTIONS,
      seconds: Math.round(secs * 10) / 10,
      batch: BATCH,
      requests: run.latencies.length,
      errors: run.errors,
      reqPerSec: Math.round(run.latencies.length / secs),
      mutationsPerSec: Math.round((run.latencies.length * BATCH) / secs),
      p50Ms: Math.round(percentile(sorted, 50) * 10) / 10,
      p99Ms: Math.round(percentile(sorted, 99) * 10) / 10,
      maxMs: Math.round((sorted.at(-1) ?? 0) * 10) / 10,
      acked: run.acked,
      stored,
      audited,
      lost: Math.max(0, run.acked - stored),
      duplicated: Math.max(0, audited - run.acked - run.errors * BATCH),
    }
  } finally {
    await cleanup()
  }
}

const results: LoadResult[] = []
for (const t of TARGETS) {
  console.log(`load: ${t}, ${CONNECTIONS} connections, ${SECONDS} s, ${BATCH} mutation(s) per push ...`)
  results.push(await runTarget(t))
}
console.log(
  '\n| warehouse | connections | seconds | requests | errors | req/s | p50 ms | p99 ms | max ms | lost | duplicated |',
)
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const r of results) {
  console.log(
    `| ${r.target} | ${r.connections} | ${r.seconds} | ${r.requests} | ${r.errors} | ${r.reqPerSec} | ${r.p50Ms} | ${r.p99Ms} | ${r.maxMs} | ${r.lost} | ${r.duplicated} |`,
  )
}
for (const r of results) console.log(JSON.stringify(r))
const bad = results.filter((r) => r.errors > 0 || r.lost > 0 || r.duplicated > 0 || r.stored !== r.acked)
if (bad.length > 0) {
  console.error(`load: FAILED for ${bad.map((r) => r.target).join(', ')}`)
  process.exit(1)
}
