import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import {
  boundaryViolations,
  graphOf,
  importCycles,
  isShipped,
  readSources,
  specifiersOf,
} from './import-graph.ts'

/**
 * docs/architecture.md's import rules, kept by a test: `shared/` imports nothing else of the
 * repository, `client/` and `edge/` only `shared/`, no shipped module imports test code or test
 * tooling, and no import cycle runs through shipped code (type-only imports included).
 */
const root = resolve(import.meta.dirname, '../..')
const graph = graphOf(readSources(root, ['shared', 'client', 'edge', 'demo', 'bench', 'test', 'scripts']))

describe('the repository', () => {
  it('keeps the one-way import rules', () => {
    expect(boundaryViolations(graph)).toEqual([])
  })

  it('has no import cycle in shipped code', () => {
    expect(importCycles(graph, isShipped)).toEqual([])
  })

  it('resolves every relative import of shipped code to a file', () => {
    const missing = [...graph]
      .filter(([from]) => isShipped(from))
      .flatMap(([from, m]) =>
        m.local.filter((to) => !existsSync(resolve(root, to))).map((to) => `${from} -> ${to}`),
      )
    expect(missing).toEqual([])
  })
})

describe('the checker', () => {
  it('reads static, type-only, re-exported, side-effect and dynamic imports', () => {
    const source = [
      "import { a } from './a.ts'",
      "import type { B } from '../b.ts'",
      "export { c } from './c.ts'",
      "export type * from './d.ts'",
      "import './e.ts'",
      "const f = await import('./f.ts')",
      'import {\n  g,\n  type H,\n} from "./g.ts"',
      "import { describe } from 'vitest'",
    ].join('\n')
    expect(specifiersOf(source)).toEqual([
      './a.ts',
      '../b.ts',
      './c.ts',
      './d.ts',
      './e.ts',
      './f.ts',
      './g.ts',
      'vitest',
    ])
  })

  it('reports a planted boundary violation, test tooling in shipped code, and shipped code importing a test', () => {
    const planted = graphOf(
      new Map([
        ['shared/schema.ts', "import type { Engine } from '../client/types.ts'"],
        ['client/engine/engine.ts', "import { createSyncApp } from '../../edge/http/app.ts'"],
        [
          'edge/push/apply-batch.ts',
          "import fc from 'fast-check'\nimport { x } from '../testing/contract.ts'",
        ],
        ['client/engine/engine.test.ts', "import { startEdge } from '../../test/support/edge.ts'"],
        ['demo/server.ts', "import { startNodeServer } from '../edge/runtime/node.ts'"],
      ]),
    )
    expect(boundaryViolations(planted).map((v) => `${v.from} -> ${v.to}`)).toEqual([
      'shared/schema.ts -> client/types.ts',
      'client/engine/engine.ts -> edge/http/app.ts',
      'edge/push/apply-batch.ts -> edge/testing/contract.ts',
      'edge/push/apply-batch.ts -> fast-check',
    ])
  })

  it('reports a planted cycle, type-only imports included, and ignores cycles through tests', () => {
    const planted = graphOf(
      new Map([
        ['client/engine/engine.ts', "import { openOutbox } from '../outbox/outbox.ts'"],
        ['client/outbox/outbox.ts', "import type { RejectedWrite } from '../engine/engine.ts'"],
        ['client/types.ts', "import type { Row } from '../shared/schema.ts'"],
        ['client/sync/a.test.ts', "import { b } from './b.ts'"],
        ['client/sync/b.ts', "import { a } from './a.test.ts'"],
      ]),
    )
    expect(importCycles(planted, isShipped)).toEqual([['client/engine/engine.ts', 'client/outbox/outbox.ts']])
  })
})

describe("Biome's noImportCycles rule", () => {
  it('fails `npm run check` on a planted cycle of type-only imports', async () => {
    // inside the repository, so the project's biome.json applies; removed afterwards
    const dir = await mkdtemp(join(root, 'client', 'planted-cycle-'))
    try {
      await writeFile(join(dir, 'a.ts'), "import type { B } from './b.ts'\nexport type A = { b?: B }\n")
      await writeFile(join(dir, 'b.ts'), "import type { A } from './a.ts'\nexport type B = { a?: A }\n")
      const biome = join(root, 'node_modules', '.bin', 'biome')
      const run = promisify(execFile)(biome, ['lint', '--only=suspicious/noImportCycles', dir], { cwd: root })
      const failed = await run.then(
        () => undefined,
        (e: { code?: number; stdout?: string; stderr?: string }) => e,
      )
      expect(failed?.code).toBe(1)
      expect(`${failed?.stdout}${failed?.stderr}`).toContain('noImportCycles')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
