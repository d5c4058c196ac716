import type { Row, Schema } from '../shared/schema.ts'
import { h, replace } from './dom.ts'
import type { DemoEddy } from './eddy-client.ts'
import { errorDetail } from './error-detail.ts'
import { formatCell, formatCount } from './format.ts'
import { createRowForm } from './row-form.ts'
import type { TableView } from './table-views.ts'

const PAGE_SIZE = 20

/**
 * One table's view: a page of rows read from the local cache with a live query (it re-runs on every
 * local or pulled change of the table), and the edit form. Rows whose write has not reached the
 * warehouse yet carry a "pending" mark (`_needs_sync`).
 */
export function createTableView(eddy: DemoEddy, schema: Schema, view: TableView): HTMLElement {
  const table = schema.table(view.table)
  const id = (what: string): string => `${what}-${table.name}`
  let page = 0
  let total = 0
  let shown = 0
  let unsubscribe: (() => void) | undefined

  const form = createRowForm(eddy, table, view)
  const body = h('tbody', { testid: id('rows') })
  const info = h('span', { class: 'page-info', testid: id('page-info') }, 'Loading…')
  const listError = h('p', { class: 'error', role: 'alert' })
  const prev = h('button', { type: 'button', onclick: () => go(page - 1), testid: id('prev') }, '‹ Prev')
  const next = h('button', { type: 'button', onclick: () => go(page + 1), testid: id('next') }, 'Next ›')
  const add = h('button', { type: 'button', onclick: () => void createNew(), testid: id('new') }, '+ New')

  const head = h('tr', {}, h('th', { class: 'mark' }, ''), ...view.listColumns.map((c) => h('th', {}, c)))
  const el = h(
    'section',
    { class: 'table-view', testid: id('view') },
    h(
      'header',
      { class: 'view-head' },
      h('h2', {}, view.title),
      h('span', { class: 'badge' }, view.pattern),
      h('p', { class: 'blurb' }, view.blurb),
    ),
    h(
      'div',
      { class: 'view-body' },
      h(
        'div',
        { class: 'list' },
        h('div', { class: 'pager' }, prev, info, next, add),
        h('div', { class: 'scroll' }, h('table', { class: 'rows' }, h('thead', {}, head), body)),
        listError,
      ),
      form.el,
    ),
  )

  function keyText(row: Row): string {
    return table.primaryKey.map((k) => formatCell(row[k])).join(',')
  }

  function render(rows: Row[]): void {
    replace(listError)
    if (rows.length === 0 && page === 0) {
      const first = eddy.status().lastSyncAt === null
      replace(
        body,
        h(
          'tr',
          {},
          h(
            'td',
            { colspan: view.listColumns.length + 1, class: 'empty' },
            first
              ? 'Filling the local cache from the warehouse (first visit only)…'
              : 'No rows yet: "+ New" adds one.',
          ),
        ),
      )
      shown = 0
      renderInfo()
      return
    }
    replace(
      body,
      ...rows.map((row) => {
        const tr = h(
          'tr',
          { tabindex: 0, 'data-key': keyText(row), onclick: () => form.edit(row) },
          h(
            'td',
            { class: 'mark' },
            row._needs_sync === true ? h('span', { class: 'pill pending' }, 'pending') : null,
          ),
          ...view.listColumns.map((c) => h('td', { title: formatCell(row[c]) }, formatCell(row[c]))),
        )
        tr.addEventListener('keydown', (e) => {
          if (e.key === 'Enter') form.edit(row)
        })
        return tr
      }),
    )
    shown = rows.length
    renderInfo()
  }

  function renderInfo(): void {
    const from = shown === 0 ? 0 : page * PAGE_SIZE + 1
    replace(info, `${formatCount(from)}–${formatCount(page * PAGE_SIZE + shown)} of ${formatCount(total)}`)
    prev.disabled = page === 0
    next.disabled = (page + 1) * PAGE_SIZE >= total
  }

  function go(p: number): void {
    page = Math.max(0, p)
    unsubscribe?.()
    const sql =
      `SELECT ${table.columns.map((c) => c.name).join(', ')}, _needs_sync ` +
      `FROM ${table.name} ORDER BY ${view.orderBy} LIMIT ${PAGE_SIZE} OFFSET ${page * PAGE_SIZE}`
    try {
      unsubscribe = eddy.subscribe(sql, [], render)
    } catch (e) {
      showError(e)
    }
  }

  function showError(e: unknown): void {
    const d = errorDetail(e)
    replace(listError, `${d.code}: ${d.message}`)
  }

  async function createNew(): Promise<void> {
    try {
      if (view.newKey === 'uuid') {
        form.create({ [table.primaryKey[0] ?? '']: crypto.randomUUID() })
      } else if (view.newKey === 'next-int') {
        const k = table.primaryKey[0] ?? ''
        const rows = await eddy.query(`SELECT coalesce(max(${k}), 0) + 1 AS next FROM ${table.name}`)
        form.create({ [k]: Number(rows[0]?.next ?? 1) })
      } else {
        form.create({})
      }
    } catch (e) {
      showError(e)
    }
  }

  // The total re-counts on every change of the table; the page query is live on its own.
  const countSql = `SELECT count(*) AS n FROM ${table.name}`
  eddy.subscribe(countSql, [], (rows) => {
    total = Number(rows[0]?.n ?? 0)
    renderInfo()
  })
  go(0)
  return el
}
