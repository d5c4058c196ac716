/**
 * Group commit: the pushes of one warehouse that arrive while another is being written wait, then
 * commit together in one transaction (`applyPushes`); a push alone, or one whose group failed,
 * commits in a transaction of its own (`writeAlone`).
 */
import { must } from '../../shared/errors.ts'
import type { PushResponse } from '../../shared/protocol.ts'
import type { Warehouse, WarehouseTx } from '../warehouse/warehouse.ts'
import { applyPushes, type PushOutcome } from './apply-pushes.ts'
import type { CheckedPush } from './check-push.ts'
import { NotStreamable, streamOne } from './stream-one.ts'

/** Pushes in one group transaction together hold at most this many mutations (one larger push runs alone). */
const MAX_GROUP_MUTATIONS = 2000

interface Waiting {
  readonly push: CheckedPush
  readonly resolve: (r: PushResponse) => void
  readonly reject: (e: unknown) => void
}

/**
 * Group commit for the pushes of one warehouse. A push that arrives while none is being written
 * starts at once; pushes that arrive meanwhile wait, and then are applied together by
 * `applyPushes` in ONE warehouse transaction (one reconcile, one read and one write per table, one
 * BEGIN/COMMIT and durable flush for all of them), with per-push results, lastSeq and audit events
 * exactly as if they had committed one after another. A push refused with a 403 is refused alone.
 * If the group's transaction throws, it rolls back and each of its pushes runs again in a
 * transaction of its own, so a failing push fails alone and takes nothing of the others with it.
 */
class PushQueue {
  private readonly waiting: Waiting[] = []
  private draining = false

  constructor(private readonly warehouse: Warehouse) {}

  submit(push: CheckedPush): Promise<PushResponse> {
    return new Promise<PushResponse>((resolve, reject) => {
      this.waiting.push({ push, resolve, reject })
      if (!this.draining) void this.drain()
    })
  }

  private async drain(): Promise<void> {
    this.draining = true
    try {
      for (let next = this.take(); next.length > 0; next = this.take()) {
        if (next.length === 1) await this.alone(must(next[0], 'push'))
        else await this.together(next)
      }
    } finally {
      this.draining = false
    }
  }

  /** The waiting pushes of the next group: in arrival order, up to MAX_GROUP_MUTATIONS together. */
  private take(): Waiting[] {
    let total = 0
    let n = 0
    for (const w of this.waiting) {
      const size = w.push.body.mutations.length
      if (n > 0 && total + size > MAX_GROUP_MUTATIONS) break
      total += size
      n += 1
    }
    return this.waiting.splice(0, n)
  }

  private async alone(w: Waiting): Promise<void> {
    try {
      w.resolve(await writeAlone(this.warehouse, w.push))
    } catch (e) {
      w.reject(e)
    }
  }

  private async together(group: readonly Waiting[]): Promise<void> {
    let out: PushOutcome[]
    try {
      out = await this.warehouse.write((tx) =>
        applyPushes(
          tx,
          group.map((w) => w.push),
        ),
      )
    } catch {
      for (const w of group) await this.alone(w)
      return
    }
    group.forEach((w, i) => {
      const o = must(out[i], 'push outcome')
      if ('refused' in o) w.reject(o.refused)
      else w.resolve(o.response)
    })
  }
}

const queues = new WeakMap<Warehouse, PushQueue>()

/** Queues a push behind the one its warehouse is writing, to commit with the others waiting then. */
export function groupCommit(warehouse: Warehouse, push: CheckedPush): Promise<PushResponse> {
  let queue = queues.get(warehouse)
  if (queue === undefined) {
    queue = new PushQueue(warehouse)
    queues.set(warehouse, queue)
  }
  return queue.submit(push)
}

/**
 * One push in a transaction of its own. A push left unchecked by `streamable` is first written by
 * `streamOne`; if that finds it needs more (a stored row, a key repeated in another spelling), the
 * transaction rolls back and the push runs again through `applyPushes`.
 */
export async function writeAlone(warehouse: Warehouse, push: CheckedPush): Promise<PushResponse> {
  if (push.checks === undefined) {
    try {
      return await warehouse.write((tx) =>
        tx.writeNewer === undefined ? applyOne(tx, push) : streamOne(tx, push),
      )
    } catch (e) {
      if (!(e instanceof NotStreamable)) throw e
    }
  }
  return warehouse.write((tx) => applyOne(tx, push))
}

/** One push against an open write transaction; its refusal throws (the transaction rolls back). */
async function applyOne(tx: WarehouseTx, push: CheckedPush): Promise<PushResponse> {
  const o = must((await applyPushes(tx, [push]))[0], 'push outcome')
  if ('refused' in o) throw o.refused
  return o.response
}
