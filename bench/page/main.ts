import * as eddySide from './eddy-side.ts'
import * as hydrateProfile from './hydrate-profile.ts'
import * as peers from './peers.ts'
import * as profile from './query-profile.ts'

/**
 * The bench page (built for production with `bench/vite.config.ts`). It only exposes the
 * measurements as `window.bench`; `bench/browser-bench.ts` drives them from Node. With
 * `?cold=eddy&name=N` or `?cold=raw&file=F` it times a cold start from navigation start instead.
 */
export const benchApi = { ...eddySide, ...peers, ...profile, ...hydrateProfile }
export type BenchApi = typeof benchApi

export interface BenchWindow {
  bench: BenchApi
  cold?: { ms: number; rows: number }
  benchError?: string
}

const w = window as unknown as BenchWindow
w.bench = benchApi
const q = new URLSearchParams(location.search)
const cold = q.get('cold')
const run =
  cold === 'eddy'
    ? eddySide.eddyCold(q.get('name') ?? 'bench')
    : cold === 'raw'
      ? eddySide.rawCold(q.get('file') ?? 'bench-raw.duckdb')
      : undefined
if (run === undefined) {
  document.title = 'bench ready'
} else {
  run.then(
    (r) => {
      w.cold = r
      document.title = 'bench ready'
    },
    (e: unknown) => {
      w.benchError = String(e)
      document.title = `error: ${String(e)}`
    },
  )
}
