import { resolve } from 'node:path'
import { defineConfig } from 'vite'

/**
 * Builds the browser side: the client (`client/index.ts`), its worker (`client/worker/db.worker.ts`) and
 * the DuckDB-WASM wasm + worker as `?url` assets, so everything is served by us (nothing from a CDN)
 * and the app works offline. Entries are HTML pages; the demo adds its own page here.
 *
 * `EDDY_OUT_DIR` moves the output (the browser tests build into an ignored temp folder).
 */
const root = import.meta.dirname

export default defineConfig({
  root,
  base: '/',
  publicDir: false,
  worker: { format: 'es' },
  build: {
    outDir: process.env.EDDY_OUT_DIR ?? resolve(root, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // the DuckDB-WASM wasm must stay a file (it is ~30 MB), never inlined
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      input: {
        'test-page': resolve(root, 'test/browser/page/index.html'),
        'cache-lab': resolve(root, 'test/browser/page/cache.html'),
      },
    },
  },
})
