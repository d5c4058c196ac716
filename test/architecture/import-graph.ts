import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

/**
 * The repository's import graph, read from source text: every static import and re-export
 * (type-only ones too, since a type import is still a dependency between modules), and every
 * dynamic `import('…')` with a literal path. Only relative specifiers are edges; packages are
 * listed apart so a rule can forbid them in shipped code.
 */
export interface ModuleImports {
  /** Repository-relative paths of the modules this one imports. */
  readonly local: readonly string[]
  /** Bare package specifiers (`vitest`, `apache-arrow/…`). */
  readonly packages: readonly string[]
}

export type ImportGraph = ReadonlyMap<string, ModuleImports>

const SPECIFIER =
  /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm

/** The specifiers one module names, in source order. */
export function specifiersOf(source: string): string[] {
  const out: string[] = []
  for (const m of source.matchAll(SPECIFIER)) {
    const spec = m[1] ?? m[2] ?? m[3]
    if (spec !== undefined) out.push(spec)
  }
  return out
}

/** Builds the graph from in-memory sources (path → text), resolving relative specifiers. */
export function graphOf(sources: ReadonlyMap<string, string>): ImportGraph {
  const graph = new Map<string, ModuleImports>()
  for (const [path, text] of sources) {
    const local: string[] = []
    const packages: string[] = []
    for (const spec of specifiersOf(text)) {
      if (spec.startsWith('.')) local.push(join(dirname(path), spec.replace(/[?#].*$/, '')))
      else packages.push(spec)
    }
    graph.set(path, { local, packages })
  }
  return graph
}

const SKIP = new Set(['node_modules', 'dist', 'data', '.cache', '.git', '.wrangler'])

/** Reads every `.ts` file under the given top-level folders of `root`. */
export function readSources(root: string, folders: readonly string[]): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (SKIP.has(entry.name)) continue
      const full = join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (entry.name.endsWith('.ts')) out.set(relative(root, full), readFileSync(full, 'utf8'))
    }
  }
  for (const f of folders) walk(resolve(root, f))
  return out
}

/** Test code sits beside shipped code: `*.test.ts` files and `testing/` folders. */
export function isTestCode(path: string): boolean {
  return path.endsWith('.test.ts') || path.split('/').includes('testing')
}

/** Shipped code: the library's three folders, minus their tests and test support. */
export function isShipped(path: string): boolean {
  const top = path.split('/')[0]
  return (top === 'shared' || top === 'client' || top === 'edge') && !isTestCode(path)
}

/** Which top-level folders each shipped folder may import from (itself included). */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  shared: ['shared'],
  client: ['client', 'shared'],
  edge: ['edge', 'shared'],
}

/** Test tooling that must never reach a user's bundle. */
export const TEST_PACKAGES = ['vitest', 'fast-check', 'fake-indexeddb', 'playwright-core', 'miniflare']

export interface Violation {
  readonly from: string
  readonly to: string
  readonly rule: string
}

/** Every import of shipped code that crosses a folder boundary it may not, or reaches test tooling. */
export function boundaryViolations(graph: ImportGraph): Violation[] {
  const out: Violation[] = []
  for (const [from, imports] of graph) {
    if (!isShipped(from)) continue
    const top = from.split('/')[0] ?? ''
    const allowed = ALLOWED[top] ?? []
    for (const to of imports.local) {
      const toTop = to.split('/')[0] ?? ''
      if (!allowed.includes(toTop))
        out.push({ from, to, rule: `${top}/ may import only ${allowed.join(', ')}` })
      else if (isTestCode(to)) out.push({ from, to, rule: 'shipped code may not import test code' })
    }
    for (const pkg of imports.packages) {
      const name = pkg.startsWith('@') ? pkg.split('/').slice(0, 2).join('/') : (pkg.split('/')[0] ?? pkg)
      if (TEST_PACKAGES.includes(name))
        out.push({ from, to: pkg, rule: 'shipped code may not import test tooling' })
    }
  }
  return out
}

/** The import cycles among the given modules (Tarjan's strongly connected components of size > 1, or a self-import). */
export function importCycles(graph: ImportGraph, include: (path: string) => boolean): string[][] {
  const nodes = [...graph.keys()].filter(include)
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: string[] = []
  const cycles: string[][] = []
  let next = 0
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next)
    next += 1
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v)?.local ?? []) {
      if (!graph.has(w) || !include(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0))
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string | undefined
      do {
        w = stack.pop()
        if (w === undefined) break
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      const selfImport = graph.get(v)?.local.includes(v) ?? false
      if (component.length > 1 || selfImport) cycles.push(component.sort())
    }
  }
  for (const v of nodes) if (!index.has(v)) visit(v)
  return cycles
}
