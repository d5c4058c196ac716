import type { D1Database, ExecutionContext } from '@cloudflare/workers-types'
import { demoSchema } from '../demo/schema.ts'
import { EddyError, isEddyError } from '../shared/errors.ts'
import type { Table } from '../shared/schema.ts'
import { createSyncApp, type SyncAppOptions } from './app.ts'
import { createD1Warehouse } from './d1-warehouse.ts'
import { openPostgresWarehouse } from './postgres-warehouse.ts'
import type { PullRequest, Warehouse, WarehouseTx } from './warehouse.ts'

/**
 * The Cloudflare Workers entry: the sync API of PROTOCOL.md at `/sync`, with the demo schema, on the
 * D1 database bound as `DB` (see wrangler.toml), or on PostgreSQL over TCP when one is configured.
 *
 * - `EDDY_JWT_SECRET` (a secret: `wrangler secret put EDDY_JWT_SECRET`): when set, every route but
 *   health needs an HS256 bearer token; when unset the API is open, as `npm start` is locally.
 * - `EDDY_CORS_ORIGINS` (a var): comma-separated origins allowed to call the API from a browser.
 * - `HYPERDRIVE` (a Hyperdrive binding) or `EDDY_PG_URL` (a secret, `postgres://…`): use PostgreSQL
 *   instead of D1. Hyperdrive is the better choice in production: it pools connections near the
 *   database, where a plain URL costs a TCP and auth handshake per request.
 *
 * D1: the app and its warehouse are built, and the schema migrated, once per isolate (on its first
 * request). If D1 cannot be reached then, that request answers 503 and the next one tries again.
 *
 * PostgreSQL: Workers do not let one request use a socket another request opened, so every request
 * opens its own connection (closed after the response) and its own app around it; the schema is
 * migrated once per isolate. Commits stay serialised across isolates by the adapter's advisory lock.
 */
export interface Env {
  readonly DB?: D1Database
  readonly HYPERDRIVE?: { readonly connectionString: string }
  readonly EDDY_PG_URL?: string
  readonly EDDY_JWT_SECRET?: string
  readonly EDDY_CORS_ORIGINS?: string
}

type SyncApp = ReturnType<typeof createSyncApp>

function appOptions(env: Env): Pick<SyncAppOptions, 'schema' | 'base' | 'auth' | 'cors'> {
  const secret = env.EDDY_JWT_SECRET?.trim()
  const origins = (env.EDDY_CORS_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '')
  return {
    schema: demoSchema,
    base: '/sync',
    auth: secret === undefined || secret === '' ? undefined : { secret },
    cors: origins.length === 0 ? undefined : { origins },
  }
}

function postgresUrl(env: Env): string | undefined {
  const url = (env.HYPERDRIVE?.connectionString ?? env.EDDY_PG_URL)?.trim()
  return url === undefined || url === '' ? undefined : url
}

let d1: { readonly db: D1Database; readonly app: Promise<SyncApp> } | undefined

function d1App(env: Env, db: D1Database): Promise<SyncApp> {
  if (d1 === undefined || d1.db !== db) {
    const app = (async () => {
      const warehouse = createD1Warehouse(db, demoSchema)
      await warehouse.migrate()
      return createSyncApp({ ...appOptions(env), warehouse })
    })()
    const entry = { db, app }
    d1 = entry
    // A failed start is not cached: the next request builds again.
    app.catch(() => {
      if (d1 === entry) d1 = undefined
    })
  }
  return d1.app
}

/**
 * workerd reports a failed or lost TCP socket with its own messages (not Node's ECONNREFUSED codes),
 * which the PostgreSQL adapter does not know: map them to `warehouse_unavailable` (503, the client
 * retries) rather than letting them become a 500.
 */
const SOCKET_FAILURE = /proxy request failed|cannot connect to the specified address|network connection lost/i

function socketFailure(e: unknown): unknown {
  if (isEddyError(e)) return e
  for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 4; cur = cur.cause, depth++) {
    if (SOCKET_FAILURE.test(cur.message))
      return new EddyError('warehouse_unavailable', 'the PostgreSQL warehouse is unreachable', { cause: e })
  }
  return e
}

function mapSocketFailures(w: Warehouse): Warehouse {
  const wrap =
    <A extends unknown[], R>(f: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await f(...args)
      } catch (e) {
        throw socketFailure(e)
      }
    }
  return {
    kind: w.kind,
    schema: w.schema,
    migrate: wrap(() => w.migrate()),
    write: <T>(fn: (tx: WarehouseTx) => Promise<T>) => wrap(() => w.write(fn))(),
    pull: wrap((req: PullRequest) => w.pull(req)),
    ...(w.highWater === undefined ? {} : { highWater: wrap(() => w.highWater?.() ?? Promise.resolve(0n)) }),
    digestEntries: wrap((table: Table, tenant?: string) => w.digestEntries(table, tenant)),
    events: wrap((...args: Parameters<Warehouse['events']>) => w.events(...args)),
    conflicts: wrap((...args: Parameters<Warehouse['conflicts']>) => w.conflicts(...args)),
    deleteConflict: wrap((id: string) => w.deleteConflict(id)),
    health: wrap(() => w.health()),
    prune: wrap((opts: Parameters<Warehouse['prune']>[0]) => w.prune(opts)),
    close: wrap(() => w.close()),
  }
}

/** PostgreSQL URLs whose schema this isolate has migrated. */
const migrated = new Set<string>()

async function servePostgres(
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  url: string,
): Promise<Response> {
  let warehouse: Warehouse | undefined
  let app: SyncApp
  try {
    warehouse = mapSocketFailures(await openPostgresWarehouse({ schema: demoSchema, url, max: 1 }))
    if (!migrated.has(url)) {
      await warehouse.migrate()
      migrated.add(url)
    }
    app = createSyncApp({ ...appOptions(env), warehouse })
  } catch (e) {
    if (warehouse !== undefined) ctx.waitUntil(warehouse.close().catch(() => undefined))
    return startFailure(e, 'PostgreSQL')
  }
  try {
    return await app.fetch(request, env, ctx)
  } finally {
    const open = warehouse
    ctx.waitUntil(open.close().catch((e: unknown) => console.error('eddy worker: closing PostgreSQL', e)))
  }
}

/** A request the service could not start for: bad configuration is a 500, anything else a 503. */
function startFailure(e: unknown, store: string): Response {
  console.error(`eddy worker: cannot start on ${store}`, e)
  return isEddyError(e, 'invalid_config')
    ? errorJson(new EddyError('internal', 'the sync service is misconfigured'), 500)
    : errorJson(new EddyError('warehouse_unavailable', `the ${store} warehouse is unavailable`), 503)
}

function errorJson(e: EddyError, status: number): Response {
  return new Response(JSON.stringify({ error: { code: e.code, message: e.message } }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  })
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const pg = postgresUrl(env)
    if (pg !== undefined) return servePostgres(request, env, ctx, pg)
    if (env.DB === undefined) {
      console.error('eddy worker: no warehouse configured (bind a D1 database as DB, or set EDDY_PG_URL)')
      return errorJson(new EddyError('internal', 'the sync service is misconfigured'), 500)
    }
    let app: SyncApp
    try {
      app = await d1App(env, env.DB)
    } catch (e) {
      return startFailure(e, 'D1')
    }
    return app.fetch(request, env, ctx)
  },
}
