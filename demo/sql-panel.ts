import { barChart, chartable } from './bar-chart.ts'
import { h, replace } from './dom.ts'
import type { DemoEddy } from './eddy-client.ts'
import { errorDetail } from './error-detail.ts'
import { formatCell, formatCount, formatMs } from './format.ts'
import { createPanel } from './panel.ts'

/** Queries worth trying on the local cache; the first one runs when the panel opens. */
export const PRESETS = [
  {
    name: 'Revenue by status',
    sql:
      'SELECT status, count(*) AS orders, round(sum(CAST(total_amount AS DOUBLE)), 2) AS revenue\n' +
      'FROM orders\nGROUP BY status\nORDER BY revenue DESC',
  },
  {
    name: 'Top customers',
    sql:
      'SELECT c.name, count(*) AS orders, round(sum(CAST(o.total_amount AS DOUBLE)), 2) AS revenue\n' +
      'FROM orders o JOIN customers c USING (customer_id)\nGROUP BY c.name\nORDER BY revenue DESC\nLIMIT 10',
  },
  {
    name: 'Stock by price band',
    sql:
      "SELECT CASE WHEN unit_price < 10 THEN 'under 10' WHEN unit_price < 100 THEN '10 to 100'\n" +
      "  ELSE '100 and up' END AS band, sum(units_in_stock) AS units\nFROM products\nGROUP BY band\nORDER BY band",
  },
  {
    name: 'Pending writes',
    sql: 'SELECT order_id, status, total_amount, _hlc FROM orders WHERE _needs_sync',
  },
] as const

const MAX_ROWS_SHOWN = 200

/**
 * A SQL box over the local DuckDB-WASM cache: runs the query with `eddy.query`, shows the rows and
 * the time taken, and draws a bar chart when the result is a small label/number table.
 */
export function createSqlPanel(eddy: DemoEddy): HTMLElement {
  const input = h('textarea', { class: 'sql', rows: 6, spellcheck: 'false', testid: 'sql-input' })
  const run = h('button', { type: 'button', class: 'primary', testid: 'sql-run' }, 'Run')
  const time = h('span', { class: 'sql-time', testid: 'sql-time' })
  const result = h('div', { class: 'scroll short', testid: 'sql-result' })
  const chart = h('div', { class: 'chart-box', testid: 'sql-chart' })
  const presets = h(
    'div',
    { class: 'presets' },
    ...PRESETS.map((p) =>
      h(
        'button',
        {
          type: 'button',
          class: 'small',
          onclick: () => {
            input.value = p.sql
            void execute()
          },
        },
        p.name,
      ),
    ),
  )
  const panel = createPanel('SQL on the local cache (DuckDB-WASM)', 'sql-panel')
  panel.body.append(presets, input, h('div', { class: 'inline' }, run, time), chart, result)

  async function execute(): Promise<void> {
    run.disabled = true
    replace(time, 'running…')
    const t0 = performance.now()
    try {
      const rows = await eddy.query(input.value)
      const took = performance.now() - t0
      replace(time, `${formatCount(rows.length)} row${rows.length === 1 ? '' : 's'} in ${formatMs(took)}`)
      time.dataset.ms = took.toFixed(1)
      renderRows(rows)
      const c = chartable(rows)
      replace(chart, c ? barChart(c.bars, c.unit) : null)
    } catch (e) {
      const d = errorDetail(e)
      replace(time, h('span', { class: 'error' }, `${d.code}: ${d.message}`))
      replace(result)
      replace(chart)
    } finally {
      run.disabled = false
    }
  }

  function renderRows(rows: readonly Record<string, unknown>[]): void {
    const cols = Object.keys(rows[0] ?? {})
    replace(
      result,
      h(
        'table',
        { class: 'rows' },
        h('thead', {}, h('tr', {}, ...cols.map((c) => h('th', {}, c)))),
        h(
          'tbody',
          {},
          ...rows
            .slice(0, MAX_ROWS_SHOWN)
            .map((r) => h('tr', {}, ...cols.map((c) => h('td', {}, formatCell(r[c]))))),
        ),
      ),
      rows.length > MAX_ROWS_SHOWN ? h('p', { class: 'empty' }, `first ${MAX_ROWS_SHOWN} rows shown`) : null,
    )
  }

  run.addEventListener('click', () => void execute())
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void execute()
  })
  input.value = PRESETS[0].sql
  void execute()
  // Run the query again once the first sync has filled the cache; after that, on demand.
  let synced = eddy.status().lastSyncAt !== null
  eddy.on('status', (s) => {
    if (!synced && s.lastSyncAt !== null) {
      synced = true
      void execute()
    }
  })
  return panel.el
}
