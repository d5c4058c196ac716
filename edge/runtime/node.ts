/**
 * edge/runtime: where the sync app runs. Node: `startNodeServer` (this file), the API in-process
 * beside static files. Cloudflare Workers: `createWorker` (`worker.ts`), the app per isolate on D1
 * or per request on PostgreSQL.
 */
import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { serveStatic } from '@hono/node-server/serve-static'
import { Hono } from 'hono'
import type { Schema } from '../../shared/schema.ts'
import { createSyncApp, type SyncAppOptions } from '../http/app.ts'
import type { AuthOptions } from '../http/auth.ts'
import type { Warehouse } from '../warehouse/warehouse.ts'

export interface NodeServerOptions {
  readonly warehouse: Warehouse
  /** Default: the warehouse's schema. */
  readonly schema?: Schema | undefined
  /** 0 (the default) picks a free port. */
  readonly port?: number | undefined
  /** Default 127.0.0.1. */
  readonly hostname?: string | undefined
  readonly auth?: AuthOptions | undefined
  readonly cors?: SyncAppOptions['cors']
  readonly limits?: SyncAppOptions['limits']
  readonly now?: (() => number) | undefined
  /** Static files served at `/` (e.g. `dist/demo`); when absent or missing, `/` is a small page. */
  readonly staticDir?: string | undefined
  /** How long `close()` lets open requests finish before it cuts every connection (default 5000 ms). */
  readonly closeGraceMs?: number | undefined
}

export interface NodeServer {
  readonly url: string
  readonly port: number
  /**
   * Stops accepting requests, closes idle keep-alive connections, lets open requests finish for
   * `closeGraceMs`, then closes every connection left (a stalled client or a half-sent request
   * must not hold the shutdown forever). The warehouse stays open: its owner closes it.
   */
  close(): Promise<void>
}

/** Where the sync API answers; everything else is the static site. */
const BASE = '/sync'
const CLOSE_GRACE_MS = 5000

const LANDING = `<!doctype html><meta charset="utf-8"><title>Eddy edge</title>
<h1>Eddy edge</h1><p>The sync API is at <a href="${BASE}/health">${BASE}/health</a>.</p>`

/** Serves the sync API (and the demo's static files) on Node, in-process. */
export async function startNodeServer(opts: NodeServerOptions): Promise<NodeServer> {
  const sync = createSyncApp({
    schema: opts.schema ?? opts.warehouse.schema,
    warehouse: opts.warehouse,
    base: BASE,
    auth: opts.auth,
    cors: opts.cors,
    limits: opts.limits,
    now: opts.now,
  })
  const site = new Hono()
  const dir = opts.staticDir
  if (dir !== undefined && existsSync(dir)) {
    site.use('/*', serveStatic({ root: dir }))
  } else {
    site.get('/', (c) => c.html(LANDING))
  }
  // Everything else is the API's business, so unknown paths answer its JSON 404.
  site.all('*', (c) => sync.fetch(c.req.raw))
  const fetch = (req: Request): Response | Promise<Response> => {
    const path = new URL(req.url).pathname
    return path === BASE || path.startsWith(`${BASE}/`) ? sync.fetch(req) : site.fetch(req)
  }
  const hostname = opts.hostname ?? '127.0.0.1'
  return new Promise((resolveStart, reject) => {
    const server = serve({ fetch, port: opts.port ?? 0, hostname }, (info: AddressInfo) => {
      const host = info.family === 'IPv6' ? `[${info.address}]` : info.address
      resolveStart({
        url: `http://${host}:${info.port}`,
        port: info.port,
        close: () =>
          new Promise<void>((done, fail) => {
            const cut = setTimeout(() => {
              if ('closeAllConnections' in server) server.closeAllConnections()
            }, opts.closeGraceMs ?? CLOSE_GRACE_MS)
            server.close((err) => {
              clearTimeout(cut)
              if (err) fail(err)
              else done()
            })
            if ('closeIdleConnections' in server) server.closeIdleConnections()
          }),
      })
    })
    server.once('error', reject)
  })
}
