import { defineConfig } from 'vitest/config'

// Each project is a layer of the test pyramid; `npm test` runs them all.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['shared/**/*.test.ts', 'client/**/*.test.ts', 'edge/**/*.test.ts'],
          environment: 'node',
        },
      },
    ],
  },
})
