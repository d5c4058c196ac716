import { existsSync } from 'node:fs'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { defineConfig, type Plugin } from 'vite'

/**
 * The embeddable client library (`npm run build` → `dist/client/`): `client/index.ts` as one ESM
 * entry (`index.js`), its worker, and DuckDB-WASM's wasm + worker as files beside it.
 *
 * Not Vite's library mode: that inlines every asset as base64 (the ~30 MB wasm included). A plain
 * build with a script entry and a relative `base` instead writes every asset reference as
 * `new URL('<file>', import.meta.url)`, the pattern a consumer's bundler (Vite, Rollup, webpack 5)
 * recognises and copies along, so the consumer serves everything itself (offline, no CDN).
 * Dependencies are bundled, so the consumer needs nothing else installed. The output is not
 * minified: the consumer's build minifies it, and the URL rewrite below needs Vite's plain output.
 *
 * Declarations come from `tsc -p tsconfig.build.json` (into `dist/client/types/`), run after this.
 */
const root = import.meta.dirname

/** Vite 8 writes a worker reference as `new URL(new URL('f', import.meta.url).href, '' + import.meta.url)`. */
const NESTED_URL =
  /new URL\(\s*(?:\/\*\s*@vite-ignore\s*\*\/\s*)?new URL\((["'`])([^"'`]+)\1,\s*import\.meta\.url\)\.href,\s*(["'`])\3\s*\+\s*import\.meta\.url\s*\)/g
/** A bare relative name (`'x.wasm'`) that a consumer's resolver could take for a package. */
const BARE_URL = /new URL\((["'`])(?![./])([^"'`:]+)\1,\s*import\.meta\.url\)/g

/**
 * Rewrites every asset and worker reference in the written files to the one form bundlers follow,
 * `new URL('./file', import.meta.url)`, so that a consumer's Vite bundles `db.worker` as a worker
 * (and with it copies the wasm and DuckDB's worker it references) instead of copying it verbatim.
 */
function portableUrls(): Plugin {
  return {
    name: 'eddy:portable-urls',
    apply: 'build',
    async writeBundle(options) {
      const dir = options.dir ?? ''
      const files = await readdir(dir, { recursive: true })
      for (const f of files.filter((x) => x.endsWith('.js'))) {
        const path = join(dir, f)
        const code = await readFile(path, 'utf8')
        let out = code
          .replace(
            NESTED_URL,
            (_m, _q, file: string) => `new URL(${JSON.stringify(dot(file))}, import.meta.url)`,
          )
          .replace(
            BARE_URL,
            (_m, _q, file: string) => `new URL(${JSON.stringify(dot(file))}, import.meta.url)`,
          )
        // DuckDB's prebuilt worker names a map its package does not ship (the consumer's dev server warns)
        const map = /\n?\/\/# sourceMappingURL=(\S+)\s*$/.exec(out)
        if (map?.[1] !== undefined && !map[1].startsWith('data:') && !existsSync(join(dirname(path), map[1])))
          out = out.slice(0, map.index)
        // a Vite that writes worker URLs some other way must fail this build, not the consumer's
        if (/["'`]{2}\s*\+\s*import\.meta\.url/.test(out))
          throw new Error(`eddy:portable-urls: an unrecognised URL form is left in ${f}`)
        if (out !== code) await writeFile(path, out)
      }
    },
  }
}

const dot = (file: string): string => (file.startsWith('.') ? file : `./${file}`)

export default defineConfig({
  root,
  base: './',
  publicDir: false,
  worker: { format: 'es' },
  plugins: [portableUrls()],
  build: {
    outDir: resolve(root, 'dist/client'),
    emptyOutDir: true,
    target: 'es2022',
    minify: false,
    sourcemap: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 4096,
    copyPublicDir: false,
    rolldownOptions: {
      input: { index: resolve(root, 'client/index.ts') },
      // keep the entry's exports (a script entry of an app build would otherwise drop them)
      preserveEntrySignatures: 'exports-only',
      output: {
        entryFileNames: '[name].js',
        chunkFileNames: 'assets/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
})
