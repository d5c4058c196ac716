/**
 * edge/pull: changes going out to clients. This file is the pull route, `GET {base}/pull`: one URL,
 * two forms chosen by `Accept`. JSON pages of changes across tables, or the Arrow bulk form of one
 * table for first loads (`arrow-pull.ts`); both with the same cursors (`cursor.ts`) and tenant
 * scoping. Beside it the digest route (`digest-route.ts`), which a client compares its cache with.
 */
import type { Context } from 'hono'
import { DEFAULT_LIMITS, type PullResponse } from '../../shared/protocol.ts'
import type { Schema } from '../../shared/schema.ts'
import { type AppEnv, type Route, scopeOf, tenantOnly } from '../http/caller.ts'
import { fail } from '../http/errors.ts'
import { intParam, tablesOf } from '../http/params.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'
import {
  ARROW_HEADERS,
  ARROW_STREAM,
  acceptsArrow,
  columnsMaxHlc,
  columnsToArrow,
  emptyColumnPage,
  pullColumnPage,
} from './arrow-pull.ts'
import { decodeCursor, encodeCursor } from './cursor.ts'

/** A page's `limit` (bounded) and the version its `cursor` (issued for `tables`) continues after. */
function pageQuery(
  c: Context<AppEnv>,
  tables: readonly string[],
  defaultLimit: number,
  maxLimit: number,
): { limit: number; after: bigint } {
  const limit = intParam(c.req.query('limit'), 'limit', defaultLimit, maxLimit)
  const cursorText = c.req.query('cursor')
  const after = cursorText === undefined || cursorText === '' ? 0n : decodeCursor(cursorText, tables)
  return { limit, after }
}

export function pullRoute(schema: Schema, warehouse: Warehouse): Route {
  return async (c) => {
    // one URL, two forms: a shared cache must key the answer by Accept
    c.header('Vary', 'Accept')
    if (acceptsArrow(c.req.header('accept'))) return pullArrow(c, schema, warehouse)
    const tables = tablesOf(schema, c.req.query('tables'))
    const names = tables.map((t) => t.name)
    const { limit, after } = pageQuery(c, names, DEFAULT_LIMITS.pullLimit, DEFAULT_LIMITS.maxPullLimit)
    const scope = scopeOf(c)
    const { changes, hasMore } = await warehouse.pull({
      // a caller without a tenant gets nothing from tenant-scoped tables
      tables: scope === null ? tables.filter((t) => t.tenantColumn === undefined) : tables,
      afterVersion: after,
      limit,
      tenant: tenantOnly(scope),
    })
    const last = changes.at(-1)?.version ?? after
    const body: PullResponse = {
      changes: changes.map((ch) => ({ table: ch.table, key: ch.key, row: ch.row, hlc: ch.hlc })),
      cursor: encodeCursor(last, names),
      hasMore,
    }
    return c.json(body)
  }
}

/**
 * The Arrow bulk form of pull (see `arrow-pull.ts`): exactly one table per request, the same
 * cursor rules and tenant scoping as JSON pull, pages of up to `maxArrowPullLimit` rows.
 */
async function pullArrow(c: Context<AppEnv>, schema: Schema, warehouse: Warehouse): Promise<Response> {
  const names = (c.req.query('tables') ?? '').split(',').map((s) => s.trim())
  const [name] = names
  if (names.length !== 1 || name === undefined || name === '')
    throw fail('bad_request', 'an Arrow pull names exactly one table')
  const table = tablesOf(schema, name)[0]
  if (table === undefined) throw fail('unknown_table', `unknown table '${name}'`)
  const { limit, after } = pageQuery(
    c,
    [table.name],
    DEFAULT_LIMITS.arrowPullLimit,
    DEFAULT_LIMITS.maxArrowPullLimit,
  )
  const resumeText = c.req.query('resume')
  const resume = resumeText === undefined ? undefined : tablesOf(schema, resumeText).map((t) => t.name)
  const scope = scopeOf(c)
  // Read before the page: every version at or below it is committed, so a hydration that starts
  // now includes it, and JSON pulls may continue after it.
  const high = resume === undefined ? undefined : await warehouse.highWater?.()
  // a caller without a tenant gets nothing from a tenant-scoped table
  const page =
    scope === null && table.tenantColumn !== undefined
      ? emptyColumnPage(table)
      : await pullColumnPage(warehouse, { table, afterVersion: after, limit, tenant: tenantOnly(scope) })
  const { columns } = page
  const headers: Record<string, string> = {
    'content-type': ARROW_STREAM,
    [ARROW_HEADERS.cursor]: encodeCursor(page.lastVersion ?? after, [table.name]),
    [ARROW_HEADERS.hasMore]: String(page.hasMore),
    [ARROW_HEADERS.rows]: String(columns.hlc.length),
  }
  const max = columnsMaxHlc(columns)
  if (max !== undefined) headers[ARROW_HEADERS.maxHlc] = max
  if (resume !== undefined && high !== undefined)
    headers[ARROW_HEADERS.resumeCursor] = encodeCursor(high, resume)
  return c.body(columnsToArrow(table, columns), 200, headers)
}
