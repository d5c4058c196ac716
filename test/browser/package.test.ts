import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Browser } from 'playwright-core'
import * as v from 'valibot'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type NodeServer, startNodeServer } from '../../edge/runtime/node.ts'
import { openDuckDbWarehouse } from '../../edge/warehouse/duckdb/duckdb-warehouse.ts'
import type { Warehouse } from '../../edge/warehouse/warehouse.ts'
import { pullResponse } from '../../shared/protocol.ts'
import { defineSchema } from '../../shared/schema.ts'
import { launchBrowser, REPO } from './harness.ts'

/**
 * The embeddable bundle as a consumer meets it: the library build (`vite.lib.config.ts`, what
 * `npm run build` runs) and its declarations (`tsconfig.build.json`) written into a copy of the
 * package in a temp folder (the repo's real `package.json`, so its `exports` map is what resolves);
 * a tiny consumer app beside it that imports `createEddy` from `eddy/client` through
 * `node_modules/eddy`, type-checked against the emitted `.d.ts` and built with a stock Vite config;
 * that app served by the real Node edge (in-memory DuckDB warehouse) and opened in Chromium, where
 * it writes a row through the built client; the row must then come back from `GET /sync/pull`.
 */
const run = promisify(execFile)

/** The consumer's own table, declared in its own code (and given to the edge as the same spec). */
const SPEC = {
  tables: {
    notes: {
      primaryKey: ['note_id'],
      columns: { note_id: { type: 'text' }, body: { type: 'text' } },
      sync: 'write-back',
    },
  },
} as const

const MAIN_TS = `import { createEddy, type Eddy, type EddyOptions } from 'eddy/client'
import { defineSchema } from 'eddy/shared'

// the declarations resolve all the way down: an unresolved import would make these types \`any\`
// (silently, under skipLibCheck), and then each expected error below would be missing
// @ts-expect-error a schema is a Schema
export const notSchema: EddyOptions['schema'] = 42
// @ts-expect-error a row is a record
export const notRow: Awaited<ReturnType<Eddy['query']>>[number] = 42
// @ts-expect-error a status is an object
export const notStatus: ReturnType<Eddy['status']> = 42
export const wrong = (schema: EddyOptions['schema']): EddyOptions => ({
  // @ts-expect-error a url must be a string
  url: 1,
  schema,
})

const schema = defineSchema(${JSON.stringify(SPEC)})
const params = new URLSearchParams(location.search)

async function main(): Promise<void> {
  const eddy: Eddy = await createEddy({ url: '/sync', schema, persistence: 'memory', autoSync: false })
  await eddy.put('notes', { note_id: params.get('id') ?? '', body: params.get('body') ?? '' })
  const report = await eddy.sync()
  const local = await eddy.query('SELECT body FROM notes')
  document.body.textContent = JSON.stringify({ pending: eddy.status().pending, local, report })
  document.title = 'done'
}
main().catch((e: unknown) => {
  document.title = \`error: \${String(e)}\`
})
`

const INDEX_HTML = `<!doctype html><meta charset="utf-8"><title>consumer</title>
<script type="module" src="./main.ts"></script>`

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'ESNext',
    moduleResolution: 'Bundler',
    lib: ['ES2024', 'DOM'],
    types: [],
    strict: true,
    noEmit: true,
    // \`eddy/shared\` (defineSchema) ships as TypeScript source with \`.ts\` import paths
    allowImportingTsExtensions: true,
    // the library's declarations themselves are checked too
    skipLibCheck: false,
  },
  include: ['main.ts'],
}

let tmp: string
let app: string
let warehouse: Warehouse
let server: NodeServer
let browser: Browser

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'eddy-package-'))
  // the package: the real package.json, the library build and declarations, `shared` for defineSchema
  const pkg = join(tmp, 'eddy')
  const outDir = join(pkg, 'dist', 'client')
  await mkdir(pkg, { recursive: true })
  await cp(join(REPO, 'package.json'), join(pkg, 'package.json'))
  await symlink(join(REPO, 'shared'), join(pkg, 'shared'), 'dir')
  // the package's own dependencies, as an install would lay them out (valibot for the wire types)
  await symlink(join(REPO, 'node_modules'), join(pkg, 'node_modules'), 'dir')
  const { build } = await import('vite')
  await build({
    configFile: join(REPO, 'vite.lib.config.ts'),
    logLevel: 'warn',
    build: { outDir },
  })
  const tsc = join(REPO, 'node_modules', '.bin', 'tsc')
  await run(tsc, ['-p', join(REPO, 'tsconfig.build.json'), '--declarationDir', join(outDir, 'types')])

  // the consumer app: its own folder, `eddy` installed as a link, a stock Vite config
  app = join(tmp, 'app')
  await mkdir(join(app, 'node_modules'), { recursive: true })
  await symlink(pkg, join(app, 'node_modules', 'eddy'), 'dir')
  await writeFile(join(app, 'main.ts'), MAIN_TS)
  await writeFile(join(app, 'index.html'), INDEX_HTML)
  await writeFile(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG))
  await run(tsc, ['-p', join(app, 'tsconfig.json')]).catch((e: { stdout?: string }) => {
    throw new Error(`the consumer does not type-check against the declarations:\n${e.stdout ?? e}`)
  })
  await build({
    root: app,
    configFile: false,
    logLevel: 'warn',
    build: { outDir: join(app, 'dist'), emptyOutDir: true },
  })

  warehouse = await openDuckDbWarehouse({ schema: defineSchema(SPEC) })
  await warehouse.migrate()
  server = await startNodeServer({ warehouse, staticDir: join(app, 'dist') })
  browser = await launchBrowser()
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
  await warehouse?.close()
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

describe('the embeddable client bundle in a consumer app', () => {
  it("ships the wasm and both workers into the consumer's build (nothing from a CDN)", async () => {
    const files = await readdir(join(app, 'dist'), { recursive: true })
    expect(files.some((f) => f.endsWith('.wasm'))).toBe(true)
    expect(files.filter((f) => /db\.worker.*\.js$/.test(f))).toHaveLength(1)
    expect(files.filter((f) => /duckdb-browser-eh\.worker.*\.js$/.test(f))).toHaveLength(1)
  })

  it('writes a row through the built client that the edge then serves on /sync/pull', async () => {
    const id = crypto.randomUUID()
    const body = `from the consumer ${id.slice(0, 8)}`
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(String(e)))
    const cdn: string[] = []
    page.on('request', (r) => {
      if (!r.url().startsWith(server.url)) cdn.push(r.url())
    })
    await page.goto(`${server.url}/?${new URLSearchParams({ id, body })}`)
    await page.waitForFunction(() => document.title === 'done' || document.title.startsWith('error:'), null, {
      timeout: 60_000,
    })
    expect(await page.title(), errors.join('; ')).toBe('done')
    const seen = JSON.parse((await page.textContent('body')) ?? '{}') as {
      pending: number
      local: Array<{ body: string }>
    }
    expect(seen.pending).toBe(0)
    expect(seen.local).toEqual([{ body }])
    expect(cdn).toEqual([])

    const res = await fetch(`${server.url}/sync/pull?tables=notes`)
    expect(res.status).toBe(200)
    const changes = v.parse(pullResponse, await res.json()).changes
    expect(changes.map((c) => [c.key, c.row])).toEqual([[{ note_id: id }, { note_id: id, body }]])
    await page.close()
  })
})
