import { afterAll, describe, expect, it } from 'vitest'
import { formatHlc } from '../../shared/hlc.ts'
import type { Mutation, PullResponse, PushResponse } from '../../shared/protocol.ts'
import { type EdgeProcess, spawnEdge } from '../chaos/edge-process.ts'
import { type ChaosPostgres, startChaosPostgres } from '../chaos/pg-server.ts'

/**
 * The Node edge (`demo/server.ts`, a real process on `EDDY_PG_URL`) while its PostgreSQL server is
 * crashed (`pg_ctl stop -m immediate`) and restarted under a stream of pushes. The server is this
 * test's own, not the integration suite's shared one. The process must stay up through every
 * crash, answer each push with 200 or a JSON 503 `warehouse_unavailable`, reach PostgreSQL again
 * by itself, and keep every write it acknowledged.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const CLIENTS = 3
const BATCH = 5
const CRASHES = 4

let pg: ChaosPostgres | undefined
let edge: EdgeProcess | undefined
afterAll(async () => {
  await edge?.kill()
  await pg?.destroy()
})

function batch(client: string, seq0: number): Mutation[] {
  return Array.from({ length: BATCH }, (_, i) => {
    const seq = seq0 + i
    return {
      seq,
      table: 'metrics',
      op: 'upsert' as const,
      key: { metric_id: `${client}-${seq}` },
      values: { value: seq },
      hlc: formatHlc({ wall: Date.now(), counter: seq, node: client }),
    }
  })
}

interface Answer {
  readonly status: number
  readonly body: unknown
}

/** One push; a refused or reset connection to the edge itself is a failure of the test (the process died). */
async function push(url: string, clientId: string, mutations: Mutation[]): Promise<Answer> {
  const res = await fetch(`${url}/sync/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ clientId, mutations }),
  })
  expect(res.headers.get('content-type') ?? '').toMatch(/^application\/json/)
  return { status: res.status, body: await res.json() }
}

async function pullAll(url: string): Promise<PullResponse['changes']> {
  const changes: PullResponse['changes'] = []
  let cursor = ''
  for (;;) {
    const res = await fetch(
      `${url}/sync/pull?tables=metrics&limit=10000&cursor=${encodeURIComponent(cursor)}`,
    )
    expect(res.status).toBe(200)
    const page = (await res.json()) as PullResponse
    changes.push(...page.changes)
    cursor = page.cursor
    if (!page.hasMore) return changes
  }
}

describe('the Node edge on PostgreSQL survives database crashes', () => {
  it('stays up, answers 200 or 503 while the server is down, recovers, and loses nothing acknowledged', async () => {
    pg = await startChaosPostgres()
    const running = await spawnEdge({ postgres: pg.url })
    edge = running
    let exitLog: string | undefined
    let stop = false
    void running.exited.then((log) => {
      exitLog = log
      stop = true
    })

    const acked = new Map<string, number>()
    const answers = { ok: 0, unavailable: 0 }
    const pusher = async (client: string): Promise<void> => {
      let seq = 1
      while (!stop) {
        const mutations = batch(client, seq)
        const a = await push(running.url, client, mutations)
        if (a.status === 200) {
          answers.ok += 1
          const r = a.body as PushResponse
          for (const x of r.results) {
            if (x.status === 'applied' || x.status === 'duplicate' || x.status === 'stale')
              acked.set(`${client}-${x.seq}`, x.seq)
          }
          expect(r.lastSeq).toBe(seq + BATCH - 1)
          seq += BATCH
        } else {
          // The only other answer allowed: the warehouse is away, retry the same batch later.
          expect({ status: a.status, code: (a.body as { error?: { code?: string } }).error?.code }).toEqual({
            status: 503,
            code: 'warehouse_unavailable',
          })
          answers.unavailable += 1
          await sleep(20)
        }
      }
    }
    // Pulls run a read-only transaction: they too answer 200 or 503 through the crashes.
    const puller = async (): Promise<void> => {
      while (!stop) {
        const res = await fetch(`${running.url}/sync/pull?tables=metrics&limit=50`)
        expect(res.headers.get('content-type') ?? '').toMatch(/^application\/json/)
        const body = (await res.json()) as { error?: { code?: string } }
        if (res.status !== 200) expect([res.status, body.error?.code]).toEqual([503, 'warehouse_unavailable'])
        await sleep(20)
      }
    }
    // A request the edge could not answer at all (connection refused or cut) means the process went down.
    const failures: unknown[] = []
    const pushers = [...Array.from({ length: CLIENTS }, (_, i) => pusher(`crash-${i}`)), puller()].map((p) =>
      p.catch((e: unknown) => {
        failures.push(e)
        stop = true
      }),
    )

    let recovered = false
    try {
      for (let i = 0; i < CRASHES && !stop; i++) {
        // let some pushes through, then crash with pushes in flight
        const before = answers.ok
        const until = Date.now() + 30_000
        while (answers.ok < before + 5 && !stop && Date.now() < until) await sleep(10)
        if (answers.ok < before + 5) break // not back from the last crash: `recovered` stays false
        await pg.crash()
        await sleep(300)
        await pg.start()
      }
      // after the last restart, pushes go through again without restarting the edge
      const before = answers.ok
      const until = Date.now() + 30_000
      while (answers.ok < before + 10 && !stop && Date.now() < until) await sleep(20)
      recovered = answers.ok >= before + 10
    } finally {
      stop = true
      await Promise.all(pushers)
    }
    await sleep(100)
    expect(exitLog).toBeUndefined()
    expect(failures).toEqual([])
    expect(recovered).toBe(true)
    expect(answers.unavailable).toBeGreaterThan(0)

    const rows = new Map((await pullAll(running.url)).map((c) => [String(c.key.metric_id), c.row]))
    const lost = [...acked].filter(([key, value]) => rows.get(key)?.value !== value)
    expect(lost).toEqual([])
    expect(acked.size).toBeGreaterThan(0)
    console.log(
      `postgres crashes: ${CRASHES}, pushes answered 200: ${answers.ok}, 503: ${answers.unavailable}, ` +
        `acknowledged writes: ${acked.size}, lost: ${lost.length}`,
    )
    expect(exitLog).toBeUndefined()
  }, 120_000)
})
