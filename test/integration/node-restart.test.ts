import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { formatHlc } from '../../shared/hlc.ts'
import type { Mutation, PullResponse, PushResponse } from '../../shared/protocol.ts'
import { freePort } from '../setup/postgres.ts'

const root = resolve(import.meta.dirname, '../..')
const dir = mkdtempSync(join(tmpdir(), 'eddy-restart-'))
const dbPath = join(dir, 'warehouse.duckdb')
const running = new Set<ChildProcess>()

afterAll(() => {
  for (const p of running) p.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

interface Started {
  readonly url: string
  readonly proc: ChildProcess
  readonly output: () => string
}

/** `npm start`'s entry as a real process, on a free loopback port, with the warehouse in a temp folder. */
async function startEdge(seed: boolean): Promise<Started> {
  const port = await freePort()
  // `node --import tsx` keeps it one process, so a kill reaches the server itself (the tsx CLI forks a child)
  const proc = spawn(process.execPath, ['--import', 'tsx', 'demo/server.ts'], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      EDDY_DUCKDB_PATH: dbPath,
      EDDY_SEED: seed ? 'on' : 'off',
      EDDY_PG_URL: '',
      EDDY_JWT_SECRET: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(proc)
  proc.once('exit', () => running.delete(proc))
  let out = ''
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  await new Promise<void>((ok, fail) => {
    const check = setInterval(() => {
      if (/API at http/.test(out)) {
        clearInterval(check)
        ok()
      }
    }, 50)
    proc.once('exit', (code) => {
      clearInterval(check)
      fail(new Error(`edge exited with ${code}: ${out}`))
    })
  })
  return { url: `http://127.0.0.1:${port}`, proc, output: () => out }
}

function exited(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode)
  return new Promise((ok) => proc.once('exit', (code) => ok(code)))
}

const stamp = (n: number): string => formatHlc({ wall: Date.now() - 120_000 + n, counter: 0, node: 'tab-r' })

function batch(seq0: number, n: number): Mutation[] {
  return Array.from({ length: n }, (_, i) => ({
    seq: seq0 + i,
    table: 'metrics',
    op: 'upsert',
    key: { metric_id: `r-${seq0 + i}` },
    values: { value: seq0 + i },
    hlc: stamp(seq0 + i),
  }))
}

async function push(url: string, mutations: Mutation[]): Promise<PushResponse> {
  const res = await fetch(`${url}/sync/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ clientId: 'tab-r', mutations }),
  })
  expect(res.status).toBe(200)
  return (await res.json()) as PushResponse
}

async function pullAll(url: string, tables: string): Promise<PullResponse['changes']> {
  const changes: PullResponse['changes'] = []
  let cursor = ''
  for (;;) {
    const res = await fetch(
      `${url}/sync/pull?tables=${tables}&limit=10000&cursor=${encodeURIComponent(cursor)}`,
    )
    const page = (await res.json()) as PullResponse
    changes.push(...page.changes)
    cursor = page.cursor
    if (!page.hasMore) return changes
  }
}

async function digestCount(url: string, table: string): Promise<number> {
  const res = await fetch(`${url}/sync/digest`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ table, buckets: 1 }),
  })
  const { buckets } = (await res.json()) as { buckets: string[] }
  return Number.parseInt(buckets[0]?.split('-')[0] ?? 'x', 16)
}

describe('the Node entry survives restarts', () => {
  it('seeds once, loses no acknowledged push when killed mid-run, and keeps lastSeq', async () => {
    const first = await startEdge(true)
    expect(first.output()).toMatch(/seeded 111000 rows/)
    expect(await digestCount(first.url, 'customers')).toBe(1000)
    expect(await digestCount(first.url, 'products')).toBe(10_000)
    expect(await digestCount(first.url, 'orders')).toBe(100_000)

    const acked: number[] = []
    let seq = 1
    for (let i = 0; i < 10; i++) {
      const r = await push(first.url, batch(seq, 20))
      expect(r.lastSeq).toBe(seq + 19)
      acked.push(...r.results.filter((x) => x.status === 'applied').map((x) => x.seq))
      seq += 20
    }
    // One more batch in flight while the process is killed outright: it either committed or not.
    const inflight = batch(seq, 20)
    const pending = push(first.url, inflight).then(
      () => true,
      () => false,
    )
    first.proc.kill('SIGKILL')
    await exited(first.proc)
    await pending

    const second = await startEdge(true)
    expect(second.output()).toMatch(/existing data kept/)
    expect(await digestCount(second.url, 'orders')).toBe(100_000)
    const rows = new Map((await pullAll(second.url, 'metrics')).map((c) => [c.key.metric_id, c]))
    for (const s of acked)
      expect(rows.get(`r-${s}`)?.row).toEqual({ metric_id: `r-${s}`, value: s, updated_at: null })
    // the in-flight batch is all or nothing, and its resend is answered accordingly
    const present = inflight.filter((m) => rows.has(String(m.key.metric_id))).length
    expect([0, inflight.length]).toContain(present)
    const resent = await push(second.url, inflight)
    expect(resent.results.map((r) => r.status)).toEqual(
      inflight.map(() => (present === 0 ? 'applied' : 'duplicate')),
    )
    const empty = await push(second.url, [])
    expect(empty.lastSeq).toBe(seq + 19)

    // a graceful stop (SIGTERM) closes the warehouse and exits 0; the next start sees everything
    second.proc.kill('SIGTERM')
    expect(await exited(second.proc)).toBe(0)
    const third = await startEdge(false)
    const after = await pullAll(third.url, 'metrics')
    expect(after).toHaveLength(acked.length + inflight.length)
    expect((await push(third.url, batch(1, 1))).results[0]?.status).toBe('duplicate')
    third.proc.kill('SIGINT')
    expect(await exited(third.proc)).toBe(0)
  })
})
