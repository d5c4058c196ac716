/**
 * The push route, `POST {base}/push`: the body read within its limits and checked against the
 * wire schema, the batch applied (`applyBatch`), and the schema's retention run every so many pushes.
 */
import { isPushBody, pushBody } from '../../shared/protocol.ts'
import type { Schema } from '../../shared/schema.ts'
import { parse, readJson } from '../http/body.ts'
import { type Route, scopeOf } from '../http/caller.ts'
import { fail } from '../http/errors.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'
import { applyBatch } from './apply-batch.ts'
import type { PushTuning } from './check-push.ts'

export interface PushRouteOptions {
  readonly schema: Schema
  readonly warehouse: Warehouse
  readonly maxBodyBytes: number
  readonly maxMutations: number
  readonly now: () => number
  /** Retention runs after every this many pushes, when the schema sets `retention`. */
  readonly pruneEvery: number
  readonly tuning: PushTuning
  /** Where a failed prune is reported: the push has committed, so its caller never sees it. */
  readonly report: (error: unknown) => void
}

export function pushRoute(opts: PushRouteOptions): Route {
  const { warehouse, maxBodyBytes, maxMutations, now, pruneEvery, tuning, report } = opts
  const retention = opts.schema.retention
  const hasRetention = retention.keepEvents !== undefined || retention.maxAgeMs !== undefined
  let pushes = 0
  return async (c) => {
    const json = await readJson(c, maxBodyBytes)
    if (
      typeof json === 'object' &&
      json !== null &&
      'mutations' in json &&
      Array.isArray(json.mutations) &&
      json.mutations.length > maxMutations
    ) {
      throw fail('too_large', `a batch may hold at most ${maxMutations} mutations`)
    }
    // the hand-written check passes well-formed pushes through; valibot words every rejection
    const body = isPushBody(json) ? json : parse(pushBody, json)
    const caller = c.get('caller')
    const result = await applyBatch(warehouse, body, {
      ...tuning,
      now,
      subject: caller?.subject,
      tenant: scopeOf(c),
    })
    pushes += 1
    if (hasRetention && pushes % pruneEvery === 0) {
      // The push has committed; a failed prune must not turn it into an error (the client would resend).
      try {
        await warehouse.prune({ keepEvents: retention.keepEvents, maxAgeMs: retention.maxAgeMs, now: now() })
      } catch (e) {
        report(e)
      }
    }
    return c.json(result)
  }
}
