/**
 * edge/http: the sync API of PROTOCOL.md as a Hono app. This file wires it (`createSyncApp`): errors,
 * CORS, auth, and the routes, each in the folder of its concept (`../push/push-route.ts`,
 * `../pull/pull-route.ts`, `../pull/digest-route.ts`, `../conflicts/resolve.ts`). Beside it: bearer
 * auth (`auth.ts`), the error statuses (`errors.ts`), body reading (`body.ts`), query parameters
 * (`params.ts`) and the caller's scope (`caller.ts`).
 */
import { Hono } from 'hono'
import { cors } from 'hono/cors'
import { EddyError, isEddyError } from '../../shared/errors.ts'
import { DEFAULT_LIMITS, PROTOCOL_VERSION } from '../../shared/protocol.ts'
import type { Schema } from '../../shared/schema.ts'
import { conflictsRoute, resolveRoute } from '../conflicts/resolve.ts'
import { ARROW_HEADERS } from '../pull/arrow-pull.ts'
import { digestRoute } from '../pull/digest-route.ts'
import { pullRoute } from '../pull/pull-route.ts'
import type { PushTuning } from '../push/check-push.ts'
import { pushRoute } from '../push/push-route.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'
import { type AuthOptions, createVerifier } from './auth.ts'
import { type AppEnv, requireAdmin, scopeOf, tenantOnly } from './caller.ts'
import { errorResponse, fail, STATUS } from './errors.ts'
import { intParam } from './params.ts'

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
  /** How pushes are applied: the streamed path's chunk, and whether pushes commit in groups. */
  readonly push?: PushTuning | undefined
  /** Where unexpected errors are reported (default `console.error`); callers only ever see a code. */
  readonly onError?: ((error: unknown) => void) | undefined
}

/** `SyncAppOptions.pruneEvery` when unset. */
const DEFAULT_PRUNE_EVERY = 100

/** The audit trail's page (`GET {base}/events?limit=N`): its default and largest size. */
const EVENTS_LIMIT = 100
const MAX_EVENTS_LIMIT = 1000

/** How long a browser may cache a CORS preflight's answer, in seconds. */
const CORS_MAX_AGE_S = 600

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

/**
 * The sync API of PROTOCOL.md as a Hono app, mounted at `base` (default `/sync`). It runs the same
 * on Node and in workerd. Every failure answers `{"error": {"code", "message"}}` with its status;
 * unexpected ones answer 500 `internal` and go to `onError`, never to the caller.
 */
export function createSyncApp(opts: SyncAppOptions): Hono<AppEnv> {
  const { schema, warehouse } = opts
  const base = (opts.base ?? '/sync').replace(/\/+$/, '')
  const now = opts.now ?? Date.now
  const maxBodyBytes = opts.limits?.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes
  const maxMutations = opts.limits?.maxMutations ?? DEFAULT_LIMITS.maxMutations
  const report = opts.onError ?? ((e: unknown) => console.error('eddy edge:', e))
  const verify = opts.auth === undefined ? undefined : createVerifier(opts.auth)
  const authOn = verify !== undefined

  const app = new Hono<AppEnv>()

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
        maxAge: CORS_MAX_AGE_S,
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

  app.get(`${base}/health`, async (c) => {
    await warehouse.health()
    return c.json({ ok: true, warehouse: warehouse.kind, protocol: PROTOCOL_VERSION })
  })

  app.post(
    `${base}/push`,
    pushRoute({
      schema,
      warehouse,
      maxBodyBytes,
      maxMutations,
      now,
      pruneEvery: opts.pruneEvery ?? DEFAULT_PRUNE_EVERY,
      tuning: opts.push ?? {},
      report,
    }),
  )

  app.get(`${base}/pull`, pullRoute(schema, warehouse))

  app.get(`${base}/events`, async (c) => {
    requireAdmin(c, authOn)
    const limit = intParam(c.req.query('limit'), 'limit', EVENTS_LIMIT, MAX_EVENTS_LIMIT)
    // an admin with a tenant claim sees the pushes of that tenant's callers; one without sees all
    return c.json({ events: await warehouse.events(limit, tenantOnly(scopeOf(c))) })
  })

  app.get(`${base}/conflicts`, conflictsRoute(warehouse))
  app.post(`${base}/conflicts/:id/resolve`, resolveRoute({ schema, warehouse, maxBodyBytes, now, authOn }))
  app.post(`${base}/digest`, digestRoute(schema, warehouse, maxBodyBytes))

  return app
}
