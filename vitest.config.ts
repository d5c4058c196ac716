import { defineConfig } from 'vitest/config'

// One project per layer of the test pyramid; `npm test` runs them all.
// Each helper/owner edits only its own project entry.
export default defineConfig({
  test: {
    projects: [
      {
        // fast, pure Node: shared core, client modules with fake-indexeddb, edge in-process on DuckDB
        test: {
          name: 'unit',
          include: [
            'shared/**/*.test.ts',
            'client/**/*.test.ts',
            'edge/**/*.test.ts',
            'test/architecture/**/*.test.ts',
          ],
          // beside their adapters, but needing a server or workerd: the integration and workerd projects run them
          exclude: ['**/*.pg.test.ts', '**/*.workerd.test.ts', '**/node_modules/**'],
          environment: 'node',
          // property and contract tests take seconds; on a loaded 2-core machine the 5 s default is too tight
          testTimeout: 30_000,
        },
      },
      {
        // the edge against real servers: PostgreSQL started by the setup, the Node entry as a process
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'edge/**/*.pg.test.ts'],
          environment: 'node',
          // one PostgreSQL server for the run (Debian's, as the postgres user), or EDDY_PG_URL
          globalSetup: ['test/setup/postgres.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        // the Workers entry and the D1 adapter inside workerd (Miniflare)
        test: {
          name: 'workerd',
          include: ['test/workerd/**/*.test.ts', 'edge/**/*.workerd.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        // hostile input, auth and tenants: the edge in-process on a DuckDB file, checksummed before and after
        test: {
          name: 'hostile',
          include: ['test/hostile/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        // fault injection: a lossy proxy, edge kills, PostgreSQL restarts, many real engines (EDDY_CHAOS_SEED replays)
        test: {
          name: 'chaos',
          include: ['test/chaos/**/*.test.ts'],
          environment: 'node',
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 120_000,
        },
      },
      {
        // real headless Chromium (Debian's /usr/bin/chromium via playwright-core)
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          environment: 'node',
          // builds the pages once (vite build into .cache/browser-dist)
          globalSetup: ['test/browser/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
})
