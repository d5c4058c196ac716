import { createEngine, type Engine } from '../../client/engine/engine.ts'
import { MemoryCache } from '../../client/testing/memory-cache.ts'
import { demoSchema } from '../../demo/schema.ts'
import type { Warehouse } from '../../edge/warehouse/warehouse.ts'
import { canonicalKey } from '../../shared/digest.ts'
import { isEddyError } from '../../shared/errors.ts'
import type { Row, Table } from '../../shared/schema.ts'
import { type FaultCounts, type FaultProxy, faultTotal } from './fault-proxy.ts'
import type { Prng } from './prng.ts'

/**
 * One chaos run: many real engines (Node, fake-indexeddb outboxes, the memory cache) write random
 * upserts, deletes and tx groups on a small key set of the demo's LWW tables and sync through the
 * fault proxy while `disrupt` breaks the edge or its warehouse. Then faults stop, every engine syncs
 * twice, and the result is checked against a model of every acknowledged write.
 */
export interface ChaosOptions {
  readonly name: string
  readonly seed: number
  readonly rng: Prng
  readonly proxy: FaultProxy
  readonly clients: number
  readonly durationMs: number
  /** Called in a loop while clients run (kill the edge, restart PostgreSQL, ...); counts its own disruptions. */
  readonly disrupt: (rng: Prng, until: number) => Promise<number>
  /** Called once the clients are done and faults are off: the warehouse, readable (the edge may be stopped). */
  readonly openWarehouse: () => Promise<Warehouse>
  /** Waits until the edge answers again (after the last disruption). */
  readonly edgeReady: () => Promise<void>
}

export interface ChaosResult {
  seed: number
  ops: number
  writes: number
  syncs: number
  failedSyncs: number
  faults: number
  disruptions: number
  counts: FaultCounts
  lost: number
  duplicated: number
  diverged: number
  pendingLeft: number
  rejected: number
  problems: string[]
}

const TABLES = ['orders', 'metrics'] as const
const ORDER_KEYS = Array.from({ length: 5 }, (_, i) => `00000000-0000-4000-8000-00000000000${i}`)
const METRIC_KEYS = ['m0', 'm1', 'm2', 'm3', 'm4']
const STATUSES = ['pending', 'paid', 'shipped', 'cancelled']

/** A write the engine acknowledged: the columns it set and the stamp it got. */
interface Ack {
  client: string
  table: string
  keyText: string
  op: 'upsert' | 'delete'
  set: Row
  hlc: string
}

type Planned = { table: string; op: 'upsert' | 'delete'; row: Row }

function planWrite(rng: Prng): Planned {
  const table = rng.pick(TABLES)
  const op = rng.chance(0.25) ? 'delete' : 'upsert'
  if (table === 'orders') {
    const order_id = rng.pick(ORDER_KEYS)
    if (op === 'delete') return { table, op, row: { order_id } }
    return {
      table,
      op,
      row: {
        order_id,
        customer_id: rng.int(1, 9),
        total_amount: `${rng.int(0, 999)}.${String(rng.int(0, 99)).padStart(2, '0')}`,
        status: rng.pick(STATUSES),
      },
    }
  }
  const metric_id = rng.pick(METRIC_KEYS)
  if (op === 'delete') return { table, op, row: { metric_id } }
  // Partial upserts: only `value`, so other columns keep what the warehouse holds.
  return { table, op, row: { metric_id, value: rng.int(-1000, 1000) / 8 } }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Sync until it succeeds (faults are off by then, but the edge may still be coming back). */
async function syncHard(engine: Engine): Promise<void> {
  let last: unknown
  for (let i = 0; i < 60; i++) {
    try {
      await engine.sync()
      return
    } catch (e) {
      last = e
      await sleep(250)
    }
  }
  throw new Error(`engine ${engine.clientId} could not sync: ${String(last)}`)
}

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const engines: Array<{ engine: Engine; cache: MemoryCache; rng: Prng }> = []
  for (let i = 0; i < o.clients; i++) {
    const cache = new MemoryCache()
    const engine = await createEngine({
      url: `${o.proxy.url}/sync`,
      schema: demoSchema,
      cache,
      dbName: `chaos-${o.name}-${o.seed}-${process.pid}-${i}`,
      autoSync: false,
    })
    engines.push({ engine, cache, rng: o.rng.fork(100 + i) })
  }
  const acks: Ack[] = []
  /** Mutations each client acknowledged (every write of a group counts, repeated keys too). */
  const sent = new Map<string, number>()
  let ops = 0
  let writes = 0
  let syncs = 0
  let failedSyncs = 0
  const problems: string[] = []
  const until = Date.now() + o.durationMs

  /** Records what a committed group left in the cache: the last write per key carries the group's final stamp. */
  async function record(engine: Engine, cache: MemoryCache, planned: readonly Planned[]): Promise<void> {
    const last = new Map<string, Planned>()
    for (const p of planned) {
      const t = demoSchema.table(p.table)
      last.set(`${p.table}\u0000${canonicalKey(t, p.row)}`, p)
    }
    sent.set(engine.clientId, (sent.get(engine.clientId) ?? 0) + planned.length)
    for (const p of last.values()) {
      const t: Table = demoSchema.table(p.table)
      const keyText = canonicalKey(t, p.row)
      const got = (await cache.getRows(t, [p.row])).get(keyText)
      if (got === undefined || got.needsSync !== true) {
        // A just-acknowledged write must be in the cache, pending; a delete leaves a pending tombstone.
        problems.push(
          `${engine.clientId}: write to ${p.table} ${keyText} missing from the cache after its ack`,
        )
        continue
      }
      acks.push({ client: engine.clientId, table: p.table, keyText, op: p.op, set: p.row, hlc: got.hlc })
    }
  }

  // Each client runs its operations one after another; clients run concurrently with each other.
  const clientLoop = async ({ engine, cache, rng }: (typeof engines)[number]): Promise<void> => {
    while (Date.now() < until) {
      ops += 1
      const roll = rng.next()
      try {
        if (roll < 0.5) {
          const p = planWrite(rng)
          if (p.op === 'delete') await engine.delete(p.table, p.row)
          else await engine.put(p.table, p.row)
          writes += 1
          await record(engine, cache, [p])
        } else if (roll < 0.7) {
          const group = Array.from({ length: rng.int(2, 4) }, () => planWrite(rng))
          await engine.transaction((tx) => {
            for (const p of group) {
              if (p.op === 'delete') tx.delete(p.table, p.row)
              else tx.put(p.table, p.row)
            }
          })
          writes += group.length
          await record(engine, cache, group)
        } else {
          syncs += 1
          try {
            await engine.sync()
          } catch (e) {
            // The network and the edge fail on purpose here; anything else is a finding.
            if (!isEddyError(e) || !['offline', 'warehouse_unavailable', 'internal'].includes(e.code))
              problems.push(`${engine.clientId}: sync failed with ${String(e)}`)
            failedSyncs += 1
            // An app would back off too; hammering a dead edge only inflates the counts.
            await sleep(rng.int(50, 250))
          }
        }
      } catch (e) {
        problems.push(`${engine.clientId}: op failed: ${String(e)}`)
      }
      await sleep(rng.int(0, 15))
    }
  }

  const disruptions = o.disrupt(o.rng.fork(7), until)
  await Promise.all(engines.map(clientLoop))
  const disrupted = await disruptions

  // Calm: no more faults, the edge is back; every engine pushes everything, then every engine pulls.
  o.proxy.faults = false
  await o.proxy.drain()
  await o.edgeReady()
  for (const { engine } of engines) await syncHard(engine)
  for (const { engine } of engines) await syncHard(engine)

  let diverged = 0
  let pendingLeft = 0
  let rejected = 0
  for (const { engine } of engines) {
    for (const t of TABLES) diverged += (await engine.divergence(t)).diverged
    pendingLeft += engine.status().pending
    rejected += (await engine.rejected()).length
  }
  for (const { engine } of engines) await engine.close()

  // The model check, on the warehouse itself.
  const w = await o.openWarehouse()
  const tables = TABLES.map((t) => demoSchema.table(t))
  const { changes } = await w.pull({ tables: [...tables], afterVersion: 0n, limit: 10_000_000 })
  const stored = new Map<string, { hlc: string; row: Row | null }>()
  for (const c of changes) {
    const t = demoSchema.table(c.table)
    stored.set(`${c.table}\u0000${canonicalKey(t, c.key)}`, { hlc: c.hlc, row: c.row })
  }
  let lost = 0
  for (const a of acks) {
    const s = stored.get(`${a.table}\u0000${a.keyText}`)
    if (s === undefined || s.hlc < a.hlc) {
      lost += 1
      problems.push(`lost: ${a.table} ${a.keyText} @${a.hlc} (warehouse has ${s?.hlc ?? 'nothing'})`)
      continue
    }
    if (s.hlc !== a.hlc) continue // superseded by a newer write
    const same =
      a.op === 'delete'
        ? s.row === null
        : s.row !== null && Object.entries(a.set).every(([k, v]) => s.row?.[k] === v)
    if (!same) {
      lost += 1
      problems.push(
        `wrong: ${a.table} ${a.keyText} @${a.hlc}: wrote ${JSON.stringify(a.set)}, warehouse ${JSON.stringify(s.row)}`,
      )
    }
  }
  // The audit trail: each acknowledged mutation is processed (applied, stale, conflict, rejected) exactly once.
  const events = await w.events(10_000_000)
  const processed = new Map<string, number>()
  for (const e of events)
    processed.set(
      e.clientId,
      (processed.get(e.clientId) ?? 0) + e.applied + e.stale + e.conflict + e.rejected,
    )
  let duplicated = 0
  for (const [client, n] of sent) {
    const got = processed.get(client) ?? 0
    if (got > n) {
      duplicated += got - n
      problems.push(`duplicated: ${client} acknowledged ${n} mutations, the audit trail processed ${got}`)
    } else if (got < n) {
      lost += n - got
      problems.push(`lost: ${client} acknowledged ${n} mutations, the audit trail processed only ${got}`)
    }
  }
  await w.close()
  return {
    seed: o.seed,
    ops,
    writes,
    syncs,
    failedSyncs,
    faults: faultTotal(o.proxy.counts),
    disruptions: disrupted,
    counts: { ...o.proxy.counts },
    lost,
    duplicated,
    diverged,
    pendingLeft,
    rejected,
    problems,
  }
}
