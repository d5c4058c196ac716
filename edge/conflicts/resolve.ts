/**
 * edge/conflicts: conflicts a push recorded, as the routes show them. This file serves
 * `GET {base}/conflicts` (scoped like pull) and `POST {base}/conflicts/:id/resolve` (admin), where
 * a resolution is a new write every client pulls; `tenant.ts` decides which tenant a conflict is of.
 */
import { canonicalKey } from '../../shared/digest.ts'
import { EddyError } from '../../shared/errors.ts'
import { createHlc } from '../../shared/hlc.ts'
import { resolveBody } from '../../shared/protocol.ts'
import { reconcile, type StoredRow } from '../../shared/reconcile.ts'
import type { Row, Schema, Table } from '../../shared/schema.ts'
import { validateWrite } from '../../shared/validators.ts'
import { parse, readJson } from '../http/body.ts'
import { type Route, requireAdmin, scopeOf, tenantOnly } from '../http/caller.ts'
import { fail } from '../http/errors.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'

/** Whose writes a resolution is: the edge's own node in its stamps and bookkeeping. */
const EDGE_NODE = 'eddy-edge'

export function conflictsRoute(warehouse: Warehouse): Route {
  return async (c) => {
    // scoped like pull: a tenant sees its rows' conflicts and those its callers caused on shared tables
    return c.json({ conflicts: await warehouse.conflicts(scopeOf(c)) })
  }
}

export interface ResolveRouteOptions {
  readonly schema: Schema
  readonly warehouse: Warehouse
  readonly maxBodyBytes: number
  /** The server clock (ms): a resolution's stamp comes after the stored row's and this clock. */
  readonly now: () => number
  /** Whether auth is on: without it every caller is an admin. */
  readonly authOn: boolean
}

export function resolveRoute(opts: ResolveRouteOptions): Route {
  const { schema, warehouse, maxBodyBytes, authOn } = opts
  const serverClock = createHlc({ nodeId: EDGE_NODE, now: opts.now })
  return async (c) => {
    requireAdmin(c, authOn)
    const id = c.req.param('id')
    const body = parse(resolveBody, await readJson(c, maxBodyBytes))
    const tenant = tenantOnly(scopeOf(c))
    const record = (await warehouse.conflicts(tenant)).find((x) => String(x.id) === id)
    if (record === undefined) throw fail('not_found', `no conflict ${id}`)
    const table = schema.table(record.table)
    const key = validateWrite(table, 'delete', record.key, undefined).key
    const resolved = await warehouse.write(async (tx) => {
      const current = (await tx.readRows(table, [key])).get(canonicalKey(table, key))
      if (current !== undefined) serverClock.receive(current.hlc)
      const hlc = serverClock.now()
      let write: { op: 'upsert' | 'delete'; values: Row }
      if ('keep' in body && body.keep === 'warehouse') {
        // Re-stamp what the warehouse holds, so clients that applied the losing write locally pull it back.
        write =
          current === undefined || current.deleted
            ? { op: 'delete', values: {} }
            : { op: 'upsert', values: current.values }
      } else if ('keep' in body) {
        write =
          record.incoming === null ? { op: 'delete', values: {} } : { op: 'upsert', values: record.incoming }
      } else {
        write = { op: 'upsert', values: body.values }
      }
      const checked = validateWrite(table, write.op, key, stripKey(table, write.values))
      const first = checked.errors[0]
      if (first !== undefined) throw new EddyError(first.code, first.message, { field: first.field })
      const col = table.tenantColumn
      if (tenant !== undefined && col !== undefined && Object.hasOwn(checked.values, col)) {
        if (String(checked.values[col]) !== tenant)
          throw fail('forbidden', `${col} must be the caller's tenant`)
      }
      const outcome = reconcile(
        table,
        current,
        write.op === 'delete'
          ? { op: 'delete', key, hlc }
          : { op: 'upsert', key, values: checked.values, hlc },
      )
      if (outcome.status === 'rejected')
        throw new EddyError(outcome.error.code, outcome.error.message, { field: outcome.error.field })
      if (outcome.status !== 'applied') throw new EddyError('internal', 'a resolution must apply')
      const row: StoredRow = outcome.row
      await tx.writeRows(table, [{ key, row, clientId: EDGE_NODE }])
      // removed with the write, so a resolution is never half done; gone meanwhile: resolved by another call
      if (!(await tx.deleteConflict(String(record.id)))) throw fail('not_found', `no conflict ${id}`)
      return row
    })
    return c.json({ resolved: record.id, row: resolved.deleted ? null : resolved.values, hlc: resolved.hlc })
  }
}

/** Values without the key columns (a resolution writes to the conflict's key, whatever the values say). */
function stripKey(table: Table, values: Row): Row {
  const out: Row = {}
  for (const [k, val] of Object.entries(values)) {
    if (!table.primaryKey.includes(k)) Object.defineProperty(out, k, { value: val, enumerable: true })
  }
  return out
}
