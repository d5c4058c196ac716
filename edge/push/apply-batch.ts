/**
 * edge/push: the push route's algorithm. `applyBatch` is its entry: a push is checked
 * (`check-push.ts`), then committed with the pushes waiting beside it (`group-commit.ts`,
 * `apply-pushes.ts`), or written while it is checked (`stream-one.ts`); `push-route.ts` serves it.
 */
import type { PushBody, PushResponse } from '../../shared/protocol.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'
import { arrived, checkPush, type PushContext } from './check-push.ts'
import { groupCommit, writeAlone } from './group-commit.ts'
import { streamable, streamChunkOf } from './stream-one.ts'

/**
 * Applies one push in one warehouse transaction: duplicates, validation, clock drift, tx groups,
 * per-table reconciliation, the set-based writes, conflicts, lastSeq and the audit event all take
 * effect together or not at all. A whole-request failure (403, 503) throws and nothing is applied.
 */
export function applyBatch(warehouse: Warehouse, body: PushBody, ctx: PushContext): Promise<PushResponse> {
  const { schema } = warehouse
  const push =
    warehouse.writesElsewhere === true && streamable(schema, body, streamChunkOf(ctx))
      ? arrived(schema, body, ctx)
      : checkPush(schema, body, ctx)
  return ctx.groupCommit === false ? writeAlone(warehouse, push) : groupCommit(warehouse, push)
}
