import { type Context, Hono } from 'hono'
import { cors } from 'hono/cors'
import * as v from 'valibot'
import { bucketHashes, bucketOf, canonicalKey, DEFAULT_BUCKETS } from '../../shared/digest.ts'
import { EddyError, type ErrorCode, isEddyError } from '../../shared/errors.ts'
import { createHlc } from '../../shared/hlc.ts'
import {
  DEFAULT_LIMITS,
  digestBody,
  isPushBody,
  PROTOCOL_VERSION,
  type PullResponse,
  pushBody,
  resolveBody,
} from '../../shared/protocol.ts'
import { reconcile, type StoredRow } from '../../shared/reconcile.ts'
import type { Row, Schema, Table } from '../../shared/schema.ts'
import { validateWrite } from '../../shared/validators.ts'
import {
  ARROW_DEFAULT_LIMIT,
  ARROW_HEADERS,
  ARROW_MAX_LIMIT,
  ARROW_STREAM,
  acceptsArrow,
  columnsMaxHlc,
  columnsToArrow,
  emptyColumnPage,
  pullColumnPage,
} from '../pull/arrow-pull.ts'
import { decodeCursor, encodeCursor } from '../pull/cursor.ts'
import { applyBatch } from '../push/apply-batch.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'
import { type AuthOptions, type Caller, createVerifier } from './auth.ts'

export interface SyncAppOptions {
  readonly schema: Schema
  readonly warehouse: Warehouse
  /** Without it every route is open (the local default); with it a bearer token is required but for health. */
  readonly auth?: AuthOptions | undefined
  readonly limits?: { readonly maxBodyBytes?: number; readonly maxMutations?: number } | undefined
  /** Origins allowed to call the API from a browser; no CORS headers at all when unset. */
  readonly cors?: { readonly origins: readonly string[] } | undefined
  /** The server clock (ms); injected so tests control clock-drift checks and retention. */
  readonly now?: (() => number) | undefined
  /** Mount path of the API (default `/sync`). */
  readonly base?: string | undefined
  /** Retention runs after every this many pushes (default 100) when the schema sets `retention`. */
  readonly pruneEvery?: number | undefined
  /** Where unexpected errors are reported (default `console.error`); callers only ever see a code. */
  readonly onError?: ((error: unknown) => void) | undefined
}

type Env = { Variables: { caller: Caller | undefined } }

const STATUS: Partial<Record<ErrorCode, 400 | 401 | 403 | 404 | 405 | 413 | 415 | 503>> = {
  bad_request: 400,
  bad_cursor: 400,
  unknown_table: 400,
  unknown_column: 400,
  invalid_value: 400,
  clock_skew: 400,
  tx_aborted: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  too_large: 413,
  unsupported_media_type: 415,
  warehouse_unavailable: 503,
}

const PULL_DEFAULT_LIMIT = 1000
const PULL_MAX_LIMIT = 10_000

/** Routes and their methods, for telling 405 from 404. */
const ROUTES: ReadonlyArray<{ path: RegExp; methods: readonly string[] }> = [
  { path: /^\/push$/, methods: ['POST'] },
  { path: /^\/pull$/, methods: ['GET'] },
  { path: /^\/health$/, methods: ['GET'] },
  { path: /^\/events$/, methods: ['GET'] },
  { path: /^\/conflicts$/, methods: ['GET'] },
  { path: /^\/conflicts\/[^/]+\/resolve$/, methods: ['POST'] },
  { path: /^\/digest$/, methods: ['POST'] },
]

function fail(code: ErrorCode, message: string): EddyError {
  return new EddyError(code, message)
}

function errorResponse(c: Context, e: EddyError): Response {
  const status = STATUS[e.code] ?? 500
  return c.json({ error: { code: e.code, message: e.message } }, status)
}

/** Reads a JSON body: 415 unless JSON, 413 past `maxBytes` (counted before parsing), 400 if malformed. */
async function readJson(c: Context, maxBytes: number): Promise<unknown> {
  const type = c.req.header('content-type') ?? ''
  if (!/^application\/json\s*(;|$)/i.test(type))
    throw fail('unsupported_media_type', 'the body must be application/json')
  const declared = Number(c.req.header('content-length') ?? Number.NaN)
  if (Number.isFinite(declared) && declared > maxBytes)
    throw fail('too_large', `the body is larger than ${maxBytes} bytes`)
  if (Number.isFinite(declared)) {
    // A declared length within the limit bounds what the server reads, so the body is taken whole:
    // on Node, `@hono/node-server` then reads the socket directly, where a Web stream of a 2 MB
    // body costs several times as much.
    const whole = new Uint8Array(await c.req.raw.arrayBuffer())
    if (whole.byteLength > maxBytes) throw fail('too_large', `the body is larger than ${maxBytes} bytes`)
    return parseJsonBytes(whole)
  }
  const body = c.req.raw.body
  if (body === null) throw fail('bad_request', 'the body is empty')
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel()
      throw fail('too_large', `the body is larger than ${maxBytes} bytes`)
    }
    chunks.push(value)
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    bytes.set(chunk, at)
    at += chunk.byteLength
  }
  return parseJsonBytes(bytes)
}

/** UTF-8 JSON: 400 `bad_request` for bytes that are not UTF-8 or text that is not JSON. */
function parseJsonBytes(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    throw fail('bad_request', 'the body is not valid JSON')
  }
}

function parse<T extends v.GenericSchema>(schema: T, input: unknown): v.InferOutput<T> {
  const r = v.safeParse(schema, input)
  if (r.success) return r.output
  const issue = r.issues[0]
  const path = issue.path?.map((p) => String(p.key)).join('.') ?? ''
  throw fail('bad_request', path === '' ? issue.message : `${path}: ${issue.message}`)
}

function intParam(text: string | undefined, name: string, fallback: number, max: number): number {
  if (text === undefined || text === '') return fallback
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1)
    throw fail('bad_request', `${name} must be a positive integer`)
  return Math.min(Number(text), max)
}

/**
 * The sync API of PROTOCOL.md as a Hono app, mounted at `base` (default `/sync`). It runs the same
 * on Node and in workerd. Every failure answers `{"error": {"code", "message"}}` with its status;
 * unexpected ones answer 500 `internal` and go to `onError`, never to the caller.
 */
export function createSyncApp(opts: SyncAppOptions): Hono<Env> {
  const { schema, warehouse } = opts
  const base = (opts.base ?? '/sync').replace(/\/+$/, '')
  const now = opts.now ?? Date.now
  const maxBodyBytes = opts.limits?.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes
  const maxMutations = opts.limits?.maxMutations ?? DEFAULT_LIMITS.maxMutations
  const pruneEvery = opts.pruneEvery ?? 100
  const report = opts.onError ?? ((e: unknown) => console.error('eddy edge:', e))
  const verify = opts.auth === undefined ? undefined : createVerifier(opts.auth)
  const serverClock = createHlc({ nodeId: 'eddy-edge', now })
  const retention = schema.retention
  const hasRetention = retention.keepEvents !== undefined || retention.maxAgeMs !== undefined
  let pushes = 0

  const app = new Hono<Env>()

  app.onError((err, c) => {
    if (isEddyError(err) && STATUS[err.code] !== undefined) return errorResponse(c, err)
    report(err)
    return errorResponse(c, new EddyError('internal', 'internal error'))
  })

  app.notFound((c) => {
    const path = c.req.path
    if (path.startsWith(`${base}/`)) {
      const route = ROUTES.find((r) => r.path.test(path.slice(base.length)))
      if (route !== undefined) {
        c.header('Allow', route.methods.join(', '))
        return errorResponse(c, fail('method_not_allowed', `${c.req.method} is not allowed here`))
      }
    }
    return errorResponse(c, fail('not_found', 'no such route'))
  })

  if (opts.cors !== undefined) {
    const origins = [...opts.cors.origins]
    app.use(
      `${base}/*`,
      cors({
        origin: (origin) => (origins.includes(origin) ? origin : null),
        allowMethods: ['GET', 'POST', 'OPTIONS'],
        allowHeaders: ['Authorization', 'Content-Type'],
        // the Arrow bulk pull pages through headers
        exposeHeaders: Object.values(ARROW_HEADERS),
        maxAge: 600,
      }),
    )
  }

  app.use(`${base}/*`, async (c, next) => {
    c.set('caller', undefined)
    if (verify !== undefined && c.req.path !== `${base}/health`) {
      c.set('caller', await verify(c.req.header('authorization')))
    }
    await next()
  })

  /**
   * The caller's tenant scope: undefined means unscoped (no auth, or an admin without a tenant
   * claim); null means a caller without a tenant, who may not touch tenant-scoped tables at all.
   */
  const scopeOf = (c: Context<Env>): string | null | undefined => {
    const caller = c.get('caller')
    if (caller === undefined) return undefined
    return caller.tenant ?? (caller.admin ? undefined : null)
  }
  const tenantOnly = (scope: string | null | undefined): string | undefined =>
    typeof scope === 'string' ? scope : undefined

  const requireAdmin = (c: Context<Env>): void => {
    const caller = c.get('caller')
    if (verify !== undefined && caller?.admin !== true)
      throw fail('forbidden', 'this route needs the admin role')
  }

  const tablesOf = (names: string | undefined): Table[] => {
    if (names === undefined || names.trim() === '') return [...schema.tables.values()]
    const list = [...new Set(names.split(',').map((s) => s.trim()))]
    return list.map((n) => {
      const t = schema.tables.get(n)
      if (t === undefined) throw fail('unknown_table', `unknown table '${n}'`)
      return t
    })
  }

  app.get(`${base}/health`, async (c) => {
    await warehouse.health()
    return c.json({ ok: true, warehouse: warehouse.kind, protocol: PROTOCOL_VERSION })
  })

  app.post(`${base}/push`, async (c) => {
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
  })

  /**
   * The Arrow bulk form of pull (see `arrow-pull.ts`): exactly one table per request, the same
   * cursor rules and tenant scoping as JSON pull, pages of up to ARROW_MAX_LIMIT rows.
   */
  const pullArrow = async (c: Context<Env>): Promise<Response> => {
    const names = (c.req.query('tables') ?? '').split(',').map((s) => s.trim())
    const [name] = names
    if (names.length !== 1 || name === undefined || name === '')
      throw fail('bad_request', 'an Arrow pull names exactly one table')
    const table = tablesOf(name)[0]
    if (table === undefined) throw fail('unknown_table', `unknown table '${name}'`)
    const limit = intParam(c.req.query('limit'), 'limit', ARROW_DEFAULT_LIMIT, ARROW_MAX_LIMIT)
    const cursorText = c.req.query('cursor')
    const after = cursorText === undefined || cursorText === '' ? 0n : decodeCursor(cursorText, [table.name])
    const resumeText = c.req.query('resume')
    const resume = resumeText === undefined ? undefined : tablesOf(resumeText).map((t) => t.name)
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

  app.get(`${base}/pull`, async (c) => {
    // one URL, two forms: a shared cache must key the answer by Accept
    c.header('Vary', 'Accept')
    if (acceptsArrow(c.req.header('accept'))) return pullArrow(c)
    const tables = tablesOf(c.req.query('tables'))
    const names = tables.map((t) => t.name)
    const limit = intParam(c.req.query('limit'), 'limit', PULL_DEFAULT_LIMIT, PULL_MAX_LIMIT)
    const cursorText = c.req.query('cursor')
    const after = cursorText === undefined || cursorText === '' ? 0n : decodeCursor(cursorText, names)
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
  })

  app.get(`${base}/events`, async (c) => {
    requireAdmin(c)
    const limit = intParam(c.req.query('limit'), 'limit', 100, 1000)
    // an admin with a tenant claim sees the pushes of that tenant's callers; one without sees all
    return c.json({ events: await warehouse.events(limit, tenantOnly(scopeOf(c))) })
  })

  app.get(`${base}/conflicts`, async (c) => {
    // scoped like pull: a tenant sees its rows' conflicts and those its callers caused on shared tables
    return c.json({ conflicts: await warehouse.conflicts(scopeOf(c)) })
  })

  app.post(`${base}/conflicts/:id/resolve`, async (c) => {
    requireAdmin(c)
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
      await tx.writeRows(table, [{ key, row, clientId: 'eddy-edge' }])
      // removed with the write, so a resolution is never half done; gone meanwhile: resolved by another call
      if (!(await tx.deleteConflict(String(record.id)))) throw fail('not_found', `no conflict ${id}`)
      return row
    })
    return c.json({ resolved: record.id, row: resolved.deleted ? null : resolved.values, hlc: resolved.hlc })
  })

  app.post(`${base}/digest`, async (c) => {
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
  })

  return app
}

/** Values without the key columns (a resolution writes to the conflict's key, whatever the values say). */
function stripKey(table: Table, values: Row): Row {
  const out: Row = {}
  for (const [k, val] of Object.entries(values)) {
    if (!table.primaryKey.includes(k)) Object.defineProperty(out, k, { value: val, enumerable: true })
  }
  return out
}
