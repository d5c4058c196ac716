import { createEddy } from '../client/index.ts'
import { must } from '../shared/errors.ts'
import { createAuditPanel } from './audit-panel.ts'
import { createConflictsPanel } from './conflicts-panel.ts'
import { createDivergencePanel } from './divergence-panel.ts'
import { h, replace } from './dom.ts'
import type { DemoEddy } from './eddy-client.ts'
import { errorDetail } from './error-detail.ts'
import { registerServiceWorker } from './register-sw.ts'
import { createRejectedPanel } from './rejected-panel.ts'
import { demoSchema } from './schema.ts'
import { createSqlPanel } from './sql-panel.ts'
import { createSyncApi } from './sync-api.ts'
import { createSyncBar } from './sync-bar.ts'
import { createTableView } from './table-view.ts'
import { TABLE_VIEWS } from './table-views.ts'
import './styles.css'

/** Same origin as the page: `npm start` serves the demo at `/` and the API at `/sync`. */
const SYNC_BASE = '/sync'

async function main(): Promise<void> {
  const root = must(document.getElementById('app'), '#app')
  const swState = must(document.getElementById('sw-state'), '#sw-state')
  registerServiceWorker((state) => {
    swState.textContent = `offline shell: ${state}`
    swState.dataset.state = state
  })
  const boot = h('p', { class: 'boot', testid: 'boot' }, 'Opening the local cache…')
  root.append(boot)

  const eddy: DemoEddy = await createEddy({ url: SYNC_BASE, schema: demoSchema })
  window.eddy = eddy
  const api = createSyncApi(SYNC_BASE)

  const views = new Map<string, HTMLElement>()
  const stage = h('div', { class: 'stage' })
  const tabs = h('nav', { class: 'tabs', role: 'tablist' })
  function show(table: string): void {
    const view = must(
      TABLE_VIEWS.find((v) => v.table === table),
      `view ${table}`,
    )
    let el = views.get(table)
    if (!el) {
      el = createTableView(eddy, demoSchema, view)
      views.set(table, el)
      stage.append(el)
    }
    for (const [name, v] of views) v.hidden = name !== table
    for (const b of tabs.querySelectorAll('button'))
      b.setAttribute('aria-selected', String(b.dataset.table === table))
  }
  for (const v of TABLE_VIEWS) {
    tabs.append(
      h(
        'button',
        {
          type: 'button',
          role: 'tab',
          'data-table': v.table,
          testid: `tab-${v.table}`,
          onclick: () => show(v.table),
        },
        v.title,
        h('small', {}, v.pattern.split(' · ')[0]),
      ),
    )
  }

  replace(
    root,
    createSyncBar(eddy),
    h(
      'main',
      { class: 'layout' },
      h('div', { class: 'primary' }, tabs, stage),
      h('aside', { class: 'side' }, createSqlPanel(eddy), createDivergencePanel(eddy, demoSchema)),
    ),
    h(
      'section',
      { class: 'panels' },
      createConflictsPanel(eddy, api, SYNC_BASE),
      createRejectedPanel(eddy),
      createAuditPanel(eddy, api),
    ),
  )
  show(must(TABLE_VIEWS[0], 'first view').table)
  document.body.dataset.ready = 'true'
}

main().catch((e: unknown) => {
  const d = errorDetail(e)
  const root = document.getElementById('app')
  root?.replaceChildren(
    h('p', { class: 'fatal', testid: 'fatal' }, `The demo could not start: ${d.code}: ${d.message}`),
  )
  document.body.dataset.ready = 'failed'
})
