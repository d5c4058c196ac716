import { readFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type * as Esbuild from 'esbuild'

const root = resolve(import.meta.dirname, '../..')

/** What wrangler.toml declares for the runtime, so the tests run the worker as it is deployed. */
export function wranglerConfig(): { main: string; compatibilityDate: string; compatibilityFlags: string[] } {
  const toml = readFileSync(join(root, 'wrangler.toml'), 'utf8')
  const str = (key: string): string | undefined =>
    new RegExp(`^${key}\\s*=\\s*"([^"]*)"`, 'm').exec(toml)?.[1]
  const flags = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(toml)?.[1] ?? ''
  const main = str('main')
  const compatibilityDate = str('compatibility_date')
  if (main === undefined || compatibilityDate === undefined)
    throw new Error('wrangler.toml needs main and compatibility_date')
  return {
    main,
    compatibilityDate,
    compatibilityFlags: [...flags.matchAll(/"([^"]+)"/g)].map((m) => m[1] ?? ''),
  }
}

/**
 * Bundles the Workers entry the way `wrangler deploy` does (wrangler's own esbuild, its target and
 * its `workerd, worker, browser` conditions), offline, into a temporary folder. Returns the file.
 */
export async function bundleWorker(): Promise<string> {
  const { main, compatibilityFlags } = wranglerConfig()
  // wrangler's esbuild, resolved from wrangler itself, whatever npm hoisted at the top level
  const esbuild = createRequire(createRequire(import.meta.url).resolve('wrangler/package.json'))(
    'esbuild',
  ) as typeof Esbuild
  const outdir = await mkdtemp(join(tmpdir(), 'eddy-worker-'))
  const outfile = join(outdir, 'worker.js')
  await esbuild.build({
    entryPoints: [join(root, main)],
    outfile,
    bundle: true,
    format: 'esm',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    // the runtime provides these modules (node:* only with the nodejs_compat flag)
    external: ['cloudflare:*', ...(compatibilityFlags.includes('nodejs_compat') ? ['node:*'] : [])],
    logLevel: 'silent',
  })
  return outfile
}
