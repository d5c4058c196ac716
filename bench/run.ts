import { cpus, loadavg } from 'node:os'
import { type BrowserFigures, FULL, QUICK, runBrowserBench } from './browser-bench.ts'
import { type AdapterFigures, runEdgeBench } from './edge-bench.ts'
import { round, type Summary } from './stats.ts'

/**
 * `npm run bench` (about 15 minutes) and `npm run bench -- --quick` (under 3): every section in
 * one run, a readable table, then exactly one line `BENCH_JSON {...}` (issue 6's keys plus the raw
 * figures behind each ratio). `--only=edge` or `--only=browser` runs one section (no JSON line
 * keys for the other); `--million=N` resizes the large analytics round. Progress goes to stderr,
 * the results to stdout.
 */
const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
const only = argv.find((a) => a.startsWith('--only='))?.slice('--only='.length)
/** `--million=N` sets the size of the large analytics round (0 skips it); the full run uses 1,000,000. */
const millionArg = argv.find((a) => a.startsWith('--million='))?.slice('--million='.length)
const log = (line: string): void => {
  process.stderr.write(`${line}\n`)
}

const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2))
const fmtS = (s: Summary): string => `${ms(s.median)} / ${ms(s.p90)} / ${ms(s.p99)}`
const ratio = (x: number): string => x.toFixed(2)

function table(title: string, head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`
  return [
    `\n${title}`,
    line(head),
    `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
  ].join('\n')
}

/** Flat `prefix_median_ms`, `_p90_ms`, `_p99_ms` keys. */
function flat(prefix: string, s: Summary): Record<string, number> {
  return {
    [`${prefix}_median_ms`]: round(s.median),
    [`${prefix}_p90_ms`]: round(s.p90),
    [`${prefix}_p99_ms`]: round(s.p99),
  }
}

function browserReport(b: BrowserFigures, json: Record<string, number | string>): string {
  const out: string[] = []
  const w = b.writeAck
  out.push(
    table(
      `Write acknowledgement, single-row put (ms: median / p90 / p99; n = ${w.eddy.n}, PGlite ${w.pglite.n})`,
      ['store', 'latency', 'vs raw Dexie'],
      [
        [`Eddy write-back put (${b.persistence} cache)`, fmtS(w.eddy), ratio(w.eddy.median / w.dexie.median)],
        ['raw Dexie put (strict)', fmtS(w.dexie), '1.00'],
        ['PGlite idb:// INSERT', fmtS(w.pglite), ratio(w.pglite.median / w.dexie.median)],
        ['RxDB (Dexie storage) insert', fmtS(w.rxdb), ratio(w.rxdb.median / w.dexie.median)],
        [
          'floor: raw DuckDB-WASM one-row upsert tx',
          fmtS(b.duckdbFloor.upsertTx),
          ratio(b.duckdbFloor.upsertTx.median / w.dexie.median),
        ],
        [
          'floor: raw DuckDB-WASM SELECT 1',
          fmtS(b.duckdbFloor.select),
          ratio(b.duckdbFloor.select.median / w.dexie.median),
        ],
      ],
    ),
  )
  const k = b.bulk
  out.push(
    table(
      `Bulk write, ${k.rows} rows (ms, median of ${k.eddy.n} for Eddy and Dexie, 1 for the peers)`,
      ['store', 'time', 'vs raw Dexie'],
      [
        ['Eddy transaction', ms(k.eddy.median), ratio(k.eddy.median / k.dexie.median)],
        ['raw Dexie bulkPut (strict)', ms(k.dexie.median), '1.00'],
        ['PGlite INSERTs in one transaction', ms(k.pglite.median), ratio(k.pglite.median / k.dexie.median)],
        ['RxDB bulkInsert', ms(k.rxdb.median), ratio(k.rxdb.median / k.dexie.median)],
      ],
    ),
  )
  out.push(
    table(
      `Hydrate ${b.hydrate.rows} rows (ms)`,
      ['path', 'time', 'ratio'],
      [
        [
          'Eddy sync() pulling from the edge',
          ms(b.hydrate.eddyMs),
          ratio(b.hydrate.eddyMs / b.hydrate.rawInsert.median),
        ],
        ['raw insertArrowTable (median of 3)', ms(b.hydrate.rawInsert.median), '1.00'],
        [
          'for reading: the Arrow pages alone (edge + HTTP)',
          ms(b.hydrate.fetchMs),
          ratio(b.hydrate.fetchMs / b.hydrate.rawInsert.median),
        ],
        [
          'for reading: raw DuckDB-WASM, keyed OPFS table, durable',
          ms(b.hydrate.keyedLoadMs),
          ratio(b.hydrate.keyedLoadMs / b.hydrate.rawInsert.median),
        ],
      ],
    ),
  )
  for (const a of b.analytics) {
    const rows: string[][] = [
      ['Eddy query (DuckDB-WASM cache)', fmtS(a.eddy), '1.00'],
      ['PGlite GROUP BY', fmtS(a.pglite), ratio(a.pglite.median / a.eddy.median)],
      ['Dexie toArray + JS aggregation', fmtS(a.dexieJs), ratio(a.dexieJs.median / a.eddy.median)],
    ]
    if (a.rxdbJs)
      rows.push([
        'RxDB find (first after open) + JS aggregation',
        fmtS(a.rxdbJs),
        ratio(a.rxdbJs.median / a.eddy.median),
      ])
    if (a.rawDuckdb)
      rows.push(['raw DuckDB-WASM GROUP BY', fmtS(a.rawDuckdb), ratio(a.rawDuckdb.median / a.eddy.median)])
    out.push(
      table(
        `Analytics: GROUP BY status, count + sum, ${a.rows} orders (ms)`,
        ['store', 'latency', 'x Eddy time'],
        rows,
      ),
    )
  }
  out.push(
    table(
      `Cold start with ${b.cold.rows} cached rows: navigation start to first query answer (ms, n = ${b.cold.eddy.n})`,
      ['path', 'median / p90 / p99', 'ratio'],
      [
        [
          'Eddy reload (createEddy + query)',
          fmtS(b.cold.eddy),
          ratio(b.cold.eddy.median / b.cold.raw.median),
        ],
        ['raw DuckDB-WASM instantiate + open (OPFS) + query', fmtS(b.cold.raw), '1.00'],
      ],
    ),
  )

  Object.assign(json, {
    chromium: b.chromium,
    write_ack_ratio: round(w.eddy.median / w.dexie.median),
    ...flat('write_ack_eddy', w.eddy),
    ...flat('write_ack_dexie', w.dexie),
    ...flat('write_ack_pglite', w.pglite),
    ...flat('write_ack_rxdb', w.rxdb),
    ...flat('duckdb_wasm_upsert_tx', b.duckdbFloor.upsertTx),
    ...flat('duckdb_wasm_select1', b.duckdbFloor.select),
    bulk_write_ratio: round(k.eddy.median / k.dexie.median),
    bulk_rows: k.rows,
    ...flat('bulk_eddy', k.eddy),
    ...flat('bulk_dexie', k.dexie),
    bulk_pglite_ms: round(k.pglite.median),
    bulk_rxdb_ms: round(k.rxdb.median),
    hydrate_ratio: round(b.hydrate.eddyMs / b.hydrate.rawInsert.median),
    hydrate_rows: b.hydrate.rows,
    hydrate_eddy_ms: round(b.hydrate.eddyMs),
    ...flat('hydrate_raw_insert', b.hydrate.rawInsert),
    hydrate_fetch_ms: round(b.hydrate.fetchMs),
    hydrate_raw_keyed_load_ms: round(b.hydrate.keyedLoadMs),
    cold_start_ratio: round(b.cold.eddy.median / b.cold.raw.median),
    ...flat('cold_start_eddy', b.cold.eddy),
    ...flat('cold_start_raw', b.cold.raw),
  })
  for (const a of b.analytics) {
    const tag = a.rows >= 1_000_000 ? '1m' : a.rows >= 100_000 ? '100k' : `${a.rows}`
    const speedKey = a.rows >= 1_000_000 ? 'query_speedup_vs_pglite_1m' : 'query_speedup_vs_pglite'
    Object.assign(json, {
      [speedKey]: round(a.pglite.median / a.eddy.median),
      [`query_rows_${tag}`]: a.rows,
      ...flat(`query_${tag}_eddy`, a.eddy),
      ...flat(`query_${tag}_pglite`, a.pglite),
      ...flat(`query_${tag}_dexie_js`, a.dexieJs),
      ...(a.rxdbJs ? flat(`query_${tag}_rxdb_js`, a.rxdbJs) : {}),
      ...(a.rawDuckdb ? flat(`query_${tag}_raw_duckdb`, a.rawDuckdb) : {}),
    })
  }
  return out.join('\n')
}

function edgeReport(adapters: readonly AdapterFigures[], json: Record<string, number | string>): string {
  const out: string[] = []
  const rows: string[][] = []
  for (const a of adapters) {
    for (const p of a.push) {
      rows.push([
        `${a.adapter}, ${p.size} mutations`,
        `${fmtS(p.edgeMs)}`,
        Math.round(p.edgeRowsPerSec).toLocaleString('en-US'),
        `${fmtS(p.directMs)}`,
        Math.round(p.directRowsPerSec).toLocaleString('en-US'),
        ratio(p.ratio),
      ])
      const tag = `${a.adapter}_${p.size >= 10_000 ? '10k' : '1k'}`
      Object.assign(json, {
        [`push_${tag}_edge_rows_per_s`]: Math.round(p.edgeRowsPerSec),
        [`push_${tag}_direct_rows_per_s`]: Math.round(p.directRowsPerSec),
        [`push_${tag}_ratio`]: round(p.ratio),
        ...flat(`push_${tag}_edge`, p.edgeMs),
        ...flat(`push_${tag}_direct`, p.directMs),
      })
      if (p.size === 10_000) json[`push_ratio_${a.adapter}`] = round(p.ratio)
    }
  }
  out.push(
    table(
      'Edge push on Node (loopback HTTP) vs a direct load into the same adapter (ms: median / p90 / p99)',
      ['adapter, push size', 'edge ms', 'edge rows/s', 'direct ms', 'direct rows/s', 'ratio'],
      rows,
    ),
  )
  out.push(
    table(
      'Edge under load: 32 autocannon connections, each a client pushing 10-row batches (demo/server.ts child process)',
      ['adapter', 'req/s', 'rows/s', 'p50 ms', 'p90 ms', 'p99 ms', 'requests', 'errors + non-2xx'],
      adapters.map((a) => [
        a.adapter,
        a.load.reqPerSec.toFixed(1),
        Math.round(a.load.rowsPerSec).toLocaleString('en-US'),
        String(a.load.p50Ms),
        String(a.load.p90Ms),
        String(a.load.p99Ms),
        String(a.load.requests),
        String(a.load.errors + a.load.non2xx),
      ]),
    ),
  )
  for (const a of adapters) {
    Object.assign(json, {
      [`load_${a.adapter}_req_per_s`]: round(a.load.reqPerSec, 1),
      [`load_${a.adapter}_rows_per_s`]: Math.round(a.load.rowsPerSec),
      [`load_${a.adapter}_p50_ms`]: a.load.p50Ms,
      [`load_${a.adapter}_p90_ms`]: a.load.p90Ms,
      [`load_${a.adapter}_p99_ms`]: a.load.p99Ms,
      [`load_${a.adapter}_errors`]: a.load.errors + a.load.non2xx,
      [`load_${a.adapter}_requests`]: a.load.requests,
    })
  }
  json.load_connections = adapters[0]?.load.connections ?? 0
  json.load_batch = adapters[0]?.load.batch ?? 0
  return out.join('\n')
}

async function main(): Promise<void> {
  const started = performance.now()
  const json: Record<string, number | string> = { mode: quick ? 'quick' : 'full' }
  const load0 = loadavg()[0] ?? 0
  const parts: string[] = []
  if (only === undefined || only === 'edge') {
    log(`== edge section (${quick ? 'quick' : 'full'})`)
    parts.push(edgeReport(await runEdgeBench({ quick, log }), json))
  }
  if (only === undefined || only === 'browser') {
    log(`== browser section (${quick ? 'quick' : 'full'})`)
    const base = quick ? QUICK : FULL
    const million = millionArg === undefined ? base.million : Number(millionArg) || undefined
    parts.push(browserReport(await runBrowserBench({ ...base, million }, log), json))
  }
  const seconds = (performance.now() - started) / 1000
  Object.assign(json, {
    node: process.version,
    cores: cpus().length,
    load_avg_start: round(load0, 2),
    load_avg_end: round(loadavg()[0] ?? 0, 2),
    duration_s: round(seconds, 1),
  })
  process.stdout.write(
    `# Eddy bench (${quick ? 'quick' : 'full'}): Node ${process.version}, ${cpus().length} cores, ` +
      `${json.chromium === undefined ? '' : `Chromium ${json.chromium}, `}load average ${round(load0, 2)} -> ${json.load_avg_end}, ${seconds.toFixed(0)} s\n`,
  )
  process.stdout.write(`${parts.join('\n')}\n\n`)
  process.stdout.write(`BENCH_JSON ${JSON.stringify(json)}\n`)
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error('bench failed:', e)
    process.exit(1)
  },
)
