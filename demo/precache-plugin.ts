import { createHash } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import type { Plugin } from 'vite'

const PLACEHOLDER = /(["'`])__EDDY_PRECACHE_MANIFEST__\1/

/**
 * Writes the service worker's precache list at build time: once every file of the build is on
 * disk (the page, the JS chunks, the DuckDB worker and the wasm files the client imports), it lists
 * them, hashes their bytes into a version, and puts both into the built `sw.js` in place of its
 * placeholder. Reading the output folder rather than the bundle catches assets emitted by nested
 * worker builds too. A build without the placeholder fails: a service worker without its list
 * would cache nothing.
 */
export function precacheManifest(options: { sw: string; exclude?: RegExp } = { sw: 'sw.js' }): Plugin {
  const exclude = options.exclude ?? /\.map$/
  return {
    name: 'eddy-precache-manifest',
    apply: 'build',
    async writeBundle(output) {
      const dir = output.dir
      if (dir === undefined) throw new Error('precache-manifest: build output has no dir')
      const files = (await listFiles(dir))
        .map((f) => relative(dir, f).split(sep).join('/'))
        .filter((f) => f !== options.sw && !exclude.test(f))
        .sort()
      const hash = createHash('sha256')
      for (const f of files) {
        hash.update(f)
        hash.update(await readFile(join(dir, f)))
      }
      const manifest = JSON.stringify({ version: hash.digest('hex').slice(0, 16), files })
      const swPath = join(dir, options.sw)
      const code = await readFile(swPath, 'utf8')
      if (!PLACEHOLDER.test(code)) throw new Error(`precache-manifest: no placeholder in ${options.sw}`)
      await writeFile(swPath, code.replace(PLACEHOLDER, JSON.stringify(manifest)))
    },
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await listFiles(path)))
    else if (entry.isFile()) out.push(path)
  }
  return out
}
