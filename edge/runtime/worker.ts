/** The Cloudflare Workers runtime (see the comment on `Env` below); Node's is `node.ts`. */
import type { D1Database, ExecutionContext } from '@cloudflare/workers-types'
import { EddyError, isEddyError } from '../../shared/errors.ts'
import type { Schema } from '../../shared/schema.ts'
import { createSyncApp, type SyncAppOptions } from '../http/app.ts'
import { openD1Warehouse } from '../warehouse/d1/d1-warehouse.ts'
import { openPostgresWarehouse } from '../warehouse/postgres/postgres-warehouse.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'

/**
 * The Cloudflare Workers runtime: `createWorker({ schema })` is the whole entry file of a Worker that
 * serves the sync API of PROTOCOL.md at `/sync` with that schema, on the D1 database bound as `DB`,
 * or on PostgreSQL over TCP when one is configured.
 *
 * - `EDDY_JWT_SECRET` (a secret: `wrangler secret put EDDY_JWT_SECRET`): when set, every route but
 *   health needs an HS256 bearer token; when unset the API is open, as `npm start` is locally.
 *   `auth` in the options takes precedence.
 * - `EDDY_CORS_ORIGINS` (a var): comma-separated origins allowed to call the API from a browser.
 *   `cors` in the options takes precedence.
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
 *
 * On either, each push commits in a transaction of its own (`push.groupCommit` is always false):
 * Workers tie every promise to the request that created it, so one request may not commit another's.
 */
export interface Env {
  readonly DB?: D1Database
  readonly HYPERDRIVE?: { readonly connectionString: string }
  readonly EDDY_PG_URL?: string
  readonly EDDY_JWT_SECRET?: string
  readonly EDDY_CORS_ORIGINS?: string
}

/** What a Worker is built from: its tables, and the sync app's options the environment does not set. */
export interface WorkerOptions extends Omit<SyncAppOptions, 'warehouse' | 'schema'> {
  readonly schema: Schema
}

/** What the Workers runtime calls: the module's default export. */
export interface EddyWorker {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response>
}

type SyncApp = ReturnType<typeof createSyncApp>

/** The sync app's options in a Worker: the environment's where the options leave them unset. */
export function appOptions(opts: WorkerOptions, env: Env): Omit<SyncAppOptions, 'warehouse'> {
  const secret = env.EDDY_JWT_SECRET?.trim()
  const origins = (env.EDDY_CORS_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '')
  return {
    ...opts,
    base: opts.base ?? '/sync',
    auth: opts.auth ?? (secret === undefined || secret === '' ? undefined : { secret }),
    cors: opts.cors ?? (origins.length === 0 ? undefined : { origins }),
    // a push may not wait for another request's transaction here (see `PushTuning.groupCommit`)
    push: { ...opts.push, groupCommit: false },
  }
}

function postgresUrl(env: Env): string | undefined {
  const url = (env.HYPERDRIVE?.connectionString ?? env.EDDY_PG_URL)?.trim()
  return url === undefined || url === '' ? undefined : url
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

/**
 * The warehouse with every method's failure passed through `socketFailure`, and every other member
 * (optional ones such as `pullColumns` and `writesElsewhere` included) kept as it is: a member
 * left out here would silently switch the app to a slower path.
 */
export function mapSocketFailures(w: Warehouse): Warehouse {
  const mapped: Record<string, unknown> = {}
  for (const [name, member] of Object.entries(w)) {
    mapped[name] =
      typeof member === 'function'
        ? async (...args: unknown[]) => {
            try {
              return await member.apply(w, args)
            } catch (e) {
              throw socketFailure(e)
            }
          }
        : member
  }
  return mapped as unknown as Warehouse
}

/** One request on PostgreSQL: its own connection, its own app, migrated once per isolate and URL. */
async function servePostgres(
  opts: WorkerOptions,
  migrated: Set<string>,
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  url: string,
): Promise<Response> {
  let warehouse: Warehouse | undefined
  let app: SyncApp
  try {
    warehouse = mapSocketFailures(await openPostgresWarehouse({ schema: opts.schema, url, max: 1 }))
    if (!migrated.has(url)) {
      await warehouse.migrate()
      migrated.add(url)
    }
    app = createSyncApp({ ...appOptions(opts, env), warehouse })
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

/**
 * A Worker serving the sync API for `opts.schema`; `export default createWorker({ schema })` is a
 * complete entry file. Bad options (an invalid schema) throw here, when the Worker's module loads.
 */
export function createWorker(opts: WorkerOptions): EddyWorker {
  /** PostgreSQL URLs whose schema this isolate has migrated. */
  const migrated = new Set<string>()
  let d1: { readonly db: D1Database; readonly app: Promise<SyncApp> } | undefined

  function d1App(env: Env, db: D1Database): Promise<SyncApp> {
    if (d1 === undefined || d1.db !== db) {
      const app = (async () => {
        const warehouse = openD1Warehouse({ db, schema: opts.schema })
        await warehouse.migrate()
        return createSyncApp({ ...appOptions(opts, env), warehouse })
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

  return {
    async fetch(request, env, ctx) {
      const pg = postgresUrl(env)
      if (pg !== undefined) return servePostgres(opts, migrated, request, env, ctx, pg)
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
}
