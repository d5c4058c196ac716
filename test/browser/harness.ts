import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join, normalize, resolve } from 'node:path'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { demoSchema } from '../../demo/schema.ts'
import { createSyncApp } from '../../edge/http/app.ts'
import { openDuckDbWarehouse } from '../../edge/warehouse/duckdb/duckdb-warehouse.ts'
import type { Warehouse } from '../../edge/warehouse/warehouse.ts'
import type { Schema } from '../../shared/schema.ts'

/**
 * The Chromium harness: the pages built once with Vite, one loopback HTTP server that serves them
 * and hands `/sync/*` to the edge's fetch handler (same origin, like production), and headless
 * Debian Chromium through playwright-core.
 */
export const REPO = resolve(import.meta.dirname, '../..')
export const DIST = join(REPO, '.cache', 'browser-dist')
const CHROMIUM = '/usr/bin/chromium'
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** vite build into `.cache/browser-dist` (the global setup runs it once per test run). */
export async function buildPages(): Promise<void> {
  const { build } = await import('vite')
  process.env.EDDY_OUT_DIR = DIST
  await build({ configFile: join(REPO, 'vite.config.ts'), logLevel: 'warn' })
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.map': 'application/json',
  '.css': 'text/css',
  '.webmanifest': 'application/manifest+json',
}

export type FetchHandler = (req: Request) => Promise<Response> | Response

/** An interceptor's answer that cuts the connection without a response (a network failure). */
export const DROP = 'drop' as const
export type Interceptor = (
  req: Request,
) => Promise<Response | typeof DROP | undefined> | Response | typeof DROP | undefined

export interface TestServer {
  readonly origin: string
  /** Replaces the `/sync` handler (the edge); null answers 503. */
  setEdge(edge: FetchHandler | null): void
  /** Runs before the edge for every `/sync` request; a Response short-circuits it. */
  setInterceptor(fn: Interceptor | null): void
  close(): Promise<void>
}

async function toRequest(req: IncomingMessage, origin: string): Promise<Request> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  const headers = new Headers()
  for (const [k, v] of Object.entries(req.headers)) {
    if (typeof v === 'string') headers.set(k, v)
    else if (Array.isArray(v)) for (const x of v) headers.append(k, x)
  }
  const method = req.method ?? 'GET'
  return new Request(new URL(req.url ?? '/', origin), {
    method,
    headers,
    ...(method === 'GET' || method === 'HEAD' ? {} : { body: Buffer.concat(chunks) }),
  })
}

async function send(res: ServerResponse, r: Response, extra: Record<string, string>): Promise<void> {
  const headers: Record<string, string> = { ...extra }
  r.headers.forEach((v, k) => {
    headers[k] = v
  })
  res.writeHead(r.status, headers)
  res.end(Buffer.from(await r.arrayBuffer()))
}

/**
 * The headers that make a page cross-origin isolated (`crossOriginIsolated`, SharedArrayBuffer):
 * what an app must serve for Eddy to pick DuckDB-WASM's threaded bundle (docs/embedding.md).
 */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
}

export interface ServerOptions {
  /** Serve every response with `ISOLATION_HEADERS` (a cross-origin isolated page). */
  isolated?: boolean
}

export async function startServer(dist = DIST, options: ServerOptions = {}): Promise<TestServer> {
  const extra = options.isolated === true ? ISOLATION_HEADERS : {}
  let edge: FetchHandler | null = null
  let interceptor: Interceptor | null = null
  let origin = ''
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', origin)
      if (url.pathname === '/sync' || url.pathname.startsWith('/sync/')) {
        const request = await toRequest(req, origin)
        const early = interceptor ? await interceptor(request.clone()) : undefined
        if (early === DROP) {
          res.destroy()
          return
        }
        if (early) return send(res, early, extra)
        if (!edge)
          return send(
            res,
            Response.json({ error: { code: 'warehouse_unavailable', message: 'no edge' } }, { status: 503 }),
            extra,
          )
        return send(res, await edge(request), extra)
      }
      const file = normalize(
        join(dist, decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname)),
      )
      if (!file.startsWith(dist) || !existsSync(file)) {
        res.writeHead(404, { ...extra, 'content-type': 'text/plain' })
        res.end('not found')
        return
      }
      const body = await readFile(file)
      res.writeHead(200, {
        ...extra,
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-cache',
      })
      res.end(body)
    })().catch((e: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.end(String(e))
    })
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    setEdge(e) {
      edge = e
    },
    setInterceptor(fn) {
      interceptor = fn
    },
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections()
        server.close(() => ok())
      }),
  }
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS })
}

/** A browser profile in a fresh folder; `reopen` starts Chromium again on the same profile (a restart). */
export async function launchProfile(extraArgs: readonly string[] = []): Promise<{
  context: BrowserContext
  reopen(): Promise<BrowserContext>
  dispose(): Promise<void>
}> {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-profile-'))
  const open = () =>
    chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, args: [...ARGS, ...extraArgs] })
  let context = await open()
  return {
    get context() {
      return context
    },
    async reopen() {
      await context.close()
      context = await open()
      return context
    },
    async dispose() {
      await context.close().catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Opens a page and waits until its module set `document.title` to the ready marker. */
export async function openPage(context: BrowserContext | Browser, url: string, ready: string): Promise<Page> {
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(String(e)))
  await page.goto(url)
  await page.waitForFunction((t) => document.title === t || document.title.startsWith('error:'), ready, {
    timeout: 60_000,
  })
  const title = await page.title()
  if (title !== ready) throw new Error(`page ${url} failed: ${title} ${errors.join('; ')}`)
  return page
}

export interface TestEdge {
  readonly warehouse: Warehouse
  readonly fetch: FetchHandler
  close(): Promise<void>
}

/** The real edge (`createSyncApp`) over an in-memory DuckDB warehouse, in this process. */
export async function startEdge(
  schema: Schema = demoSchema,
  warehouseSchema: Schema = schema,
): Promise<TestEdge> {
  const warehouse = await openDuckDbWarehouse({ schema: warehouseSchema })
  await warehouse.migrate()
  const app = createSyncApp({ schema, warehouse, onError: () => undefined })
  return { warehouse, fetch: (req) => app.fetch(req), close: () => warehouse.close() }
}
