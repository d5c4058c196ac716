import type { D1Database, ExecutionContext } from '@cloudflare/workers-types'
import { demoSchema } from '../demo/schema.ts'
import { EddyError, isEddyError } from '../shared/errors.ts'
import { createSyncApp } from './app.ts'
import { createD1Warehouse } from './d1-warehouse.ts'

/**
 * The Cloudflare Workers entry: the sync API of PROTOCOL.md at `/sync`, on the D1 database bound as
 * `DB` (see wrangler.toml), with the demo schema.
 *
 * - `EDDY_JWT_SECRET` (a secret: `wrangler secret put EDDY_JWT_SECRET`): when set, every route but
 *   health needs an HS256 bearer token; when unset the API is open, as `npm start` is locally.
 * - `EDDY_CORS_ORIGINS` (a var): comma-separated origins allowed to call the API from a browser.
 *
 * The app and its warehouse are built, and the schema migrated, once per isolate (on its first
 * request). If D1 cannot be reached then, that request answers 503 and the next one tries again.
 */
export interface Env {
  readonly DB: D1Database
  readonly EDDY_JWT_SECRET?: string
  readonly EDDY_CORS_ORIGINS?: string
}

type SyncApp = ReturnType<typeof createSyncApp>

let ready: { readonly db: D1Database; readonly app: Promise<SyncApp> } | undefined

async function build(env: Env): Promise<SyncApp> {
  const warehouse = createD1Warehouse(env.DB, demoSchema)
  await warehouse.migrate()
  const secret = env.EDDY_JWT_SECRET?.trim()
  const origins = (env.EDDY_CORS_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '')
  return createSyncApp({
    schema: demoSchema,
    warehouse,
    base: '/sync',
    auth: secret === undefined || secret === '' ? undefined : { secret },
    cors: origins.length === 0 ? undefined : { origins },
  })
}

function appFor(env: Env): Promise<SyncApp> {
  if (ready === undefined || ready.db !== env.DB) {
    const app = build(env)
    const entry = { db: env.DB, app }
    ready = entry
    // A failed start is not cached: the next request builds again.
    app.catch(() => {
      if (ready === entry) ready = undefined
    })
  }
  return ready.app
}

function errorJson(e: EddyError, status: number): Response {
  return new Response(JSON.stringify({ error: { code: e.code, message: e.message } }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  })
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    let app: SyncApp
    try {
      app = await appFor(env)
    } catch (e) {
      if (isEddyError(e, 'invalid_config')) {
        console.error(e)
        return errorJson(new EddyError('internal', 'the sync service is misconfigured'), 500)
      }
      console.error(e)
      return errorJson(new EddyError('warehouse_unavailable', 'the D1 warehouse is unavailable'), 503)
    }
    return app.fetch(request, env, ctx)
  },
}
