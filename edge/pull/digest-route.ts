/**
 * The digest route, `POST {base}/digest`: a table's (key, hlc) pairs hashed per bucket, or one
 * bucket's pairs, so a client finds where its cache diverged without pulling the table again.
 */
import { bucketHashes, bucketOf, canonicalKey, DEFAULT_BUCKETS } from '../../shared/digest.ts'
import { digestBody } from '../../shared/protocol.ts'
import type { Schema } from '../../shared/schema.ts'
import { parse, readJson } from '../http/body.ts'
import { type Route, scopeOf, tenantOnly } from '../http/caller.ts'
import { fail } from '../http/errors.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'

export function digestRoute(schema: Schema, warehouse: Warehouse, maxBodyBytes: number): Route {
  return async (c) => {
    const body = parse(digestBody, await readJson(c, maxBodyBytes))
    const table = schema.tables.get(body.table)
    if (table === undefined) throw fail('unknown_table', `unknown table '${body.table}'`)
    const buckets = body.buckets ?? DEFAULT_BUCKETS
    if (body.bucket !== undefined && body.bucket >= buckets)
      throw fail('bad_request', `bucket must be below ${buckets}`)
    const scope = scopeOf(c)
    if (scope === null && table.tenantColumn !== undefined)
      throw fail('forbidden', `${table.name} is scoped by tenant, and the caller has none`)
    const entries = await warehouse.digestEntries(table, tenantOnly(scope))
    const keyed = entries.map((e) => ({ key: e.key, hlc: e.hlc, keyText: canonicalKey(table, e.key) }))
    if (body.bucket !== undefined) {
      const only = body.bucket
      return c.json({
        entries: keyed
          .filter((e) => bucketOf(e.keyText, buckets) === only)
          .map((e) => ({ key: e.key, hlc: e.hlc })),
      })
    }
    return c.json({ buckets: bucketHashes(keyed, buckets) })
  }
}
