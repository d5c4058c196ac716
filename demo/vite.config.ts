import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import { precacheManifest } from './precache-plugin.ts'

const root = fileURLToPath(new URL('.', import.meta.url))

/**
 * The demo app's build (`npm run build:demo`): `demo/` → `dist/demo/`, which the Node edge serves at
 * `/`. Two entries: the page, and the service worker at a fixed, unhashed `/sw.js` (its scope is
 * the folder it is served from, and the page registers it by that name).
 */
export default defineConfig(({ command }) => ({
  root,
  // The service worker is registered by builds only (the dev server's modules are not precached).
  // A define rather than `import.meta.env.PROD`: that follows NODE_ENV, which is `test` when a test
  // builds the demo.
  define: { __EDDY_SERVICE_WORKER__: JSON.stringify(command === 'build') },
  base: '/',
  publicDir: false,
  build: {
    outDir: '../dist/demo',
    emptyOutDir: true,
    target: 'es2022',
    // the DuckDB-WASM wasm and workers stay files (the service worker precaches them by name)
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 4096,
    rolldownOptions: {
      input: { index: `${root}index.html`, sw: `${root}sw.ts` },
      output: {
        entryFileNames: (chunk) => (chunk.name === 'sw' ? 'sw.js' : 'assets/[name]-[hash].js'),
      },
    },
  },
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['@duckdb/duckdb-wasm'] },
  server: { proxy: { '/sync': 'http://127.0.0.1:8787' } },
  plugins: [precacheManifest()],
}))
