import { resolve } from 'node:path'
import { defineConfig } from 'vite'

/**
 * The bench page's production build: the real client (`client/index.ts`, its worker, the
 * DuckDB-WASM assets) plus the peers, which only this page imports. `EDDY_BENCH_OUT` moves the
 * output (default `.cache/bench-dist`).
 */
const root = resolve(import.meta.dirname, 'page')

export default defineConfig({
  root,
  base: '/',
  publicDir: false,
  worker: { format: 'es' },
  logLevel: 'warn',
  // RxDB ships its own Dexie (4.4.2); two Dexie copies in one page refuse to load, so every import
  // resolves to the project's.
  resolve: { dedupe: ['dexie'] },
  build: {
    outDir: process.env.EDDY_BENCH_OUT ?? resolve(import.meta.dirname, '../.cache/bench-dist'),
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 16384,
    rollupOptions: { input: { bench: resolve(root, 'index.html') } },
  },
})
