import { expect } from 'vitest'
import type { ChaosResult } from './chaos-run.ts'

/** Seconds of client activity: `EDDY_CHAOS_DURATION` (the soak sets it), else the `npm test` size. */
export function chaosSeconds(fallback: number): number {
  const given = process.env.EDDY_CHAOS_DURATION
  const n = given === undefined || given === '' ? fallback : Number(given)
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`EDDY_CHAOS_DURATION must be a positive number of seconds`)
  return n
}

/** One line with everything a reader needs, the seed first so a failure can be replayed. */
export function printChaos(name: string, r: ChaosResult, disruption: string): void {
  const c = r.counts
  console.log(
    `chaos[${name}] seed=${r.seed} (EDDY_CHAOS_SEED=${r.seed} replays) ops=${r.ops} writes=${r.writes} ` +
      `syncs=${r.syncs} (failed ${r.failedSyncs}) requests=${c.requests} faults=${r.faults} ` +
      `(dropped requests ${c.droppedRequests}, dropped responses ${c.droppedResponses}, delayed ${c.delayed}, ` +
      `duplicated ${c.duplicated}, replayed later ${c.replayed}, cut while edge down ${c.edgeDown}) ` +
      `${disruption}=${r.disruptions} lost=${r.lost} duplicated=${r.duplicated} diverged=${r.diverged}`,
  )
}

/** The guarantees: nothing lost, nothing applied twice, every cache equal to the warehouse, nothing stuck. */
export function expectGuarantees(r: ChaosResult): void {
  expect(r.problems.slice(0, 20)).toEqual([])
  expect(r.lost).toBe(0)
  expect(r.duplicated).toBe(0)
  expect(r.diverged).toBe(0)
  expect(r.pendingLeft).toBe(0)
  expect(r.rejected).toBe(0)
  // The run did attack: faults of every kind, and acknowledged writes to check.
  expect(r.writes).toBeGreaterThan(0)
  expect(r.faults).toBeGreaterThan(0)
  expect(r.counts.droppedRequests + r.counts.droppedResponses).toBeGreaterThan(0)
  expect(r.counts.duplicated + r.counts.replayed).toBeGreaterThan(0)
  expect(r.disruptions).toBeGreaterThan(0)
}
