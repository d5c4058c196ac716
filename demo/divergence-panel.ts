import type { Schema } from '../shared/schema.ts'
import { h, replace } from './dom.ts'
import type { DemoEddy } from './eddy-client.ts'
import { errorDetail } from './error-detail.ts'
import { formatCount, formatMs } from './format.ts'
import { createPanel } from './panel.ts'

/**
 * Divergence per table: how many rows differ between the cache and the warehouse, counted by
 * comparing bucket digests (`eddy.divergence`) instead of downloading the table.
 */
export function createDivergencePanel(eddy: DemoEddy, schema: Schema): HTMLElement {
  const all = h('button', { type: 'button', testid: 'check-divergence' }, 'Check all')
  const panel = createPanel('Divergence', 'divergence-panel', all)
  const cells = new Map<string, HTMLElement>()
  const rows = [...schema.tables.keys()].map((name) => {
    const cell = h('td', { class: 'n', testid: `diverged-${name}` }, '–')
    cells.set(name, cell)
    const check = h('button', { type: 'button', class: 'small', onclick: () => void run(name) }, 'Check')
    return h('tr', {}, h('th', {}, name), cell, h('td', {}, check))
  })
  panel.body.append(
    h(
      'table',
      { class: 'rows' },
      h('thead', {}, h('tr', {}, h('th', {}, 'table'), h('th', {}, 'diverged rows'), h('th', {}, ''))),
      h('tbody', {}, ...rows),
    ),
  )

  async function run(name: string): Promise<void> {
    const cell = cells.get(name)
    if (!cell) return
    replace(cell, '…')
    const t0 = performance.now()
    try {
      const { diverged } = await eddy.divergence(name)
      replace(cell, formatCount(diverged), h('small', {}, ` in ${formatMs(performance.now() - t0)}`))
      cell.className = diverged === 0 ? 'n ok' : 'n warn'
    } catch (e) {
      const d = errorDetail(e)
      replace(cell, h('span', { class: 'error' }, `${d.code}: ${d.message}`))
    }
  }

  all.addEventListener('click', () => {
    void (async () => {
      for (const name of cells.keys()) await run(name)
    })()
  })
  return panel.el
}
