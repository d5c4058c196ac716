import type { ConflictRecord } from '../shared/protocol.ts'
import { h, replace } from './dom.ts'
import type { DemoEddy } from './eddy-client.ts'
import { errorDetail } from './error-detail.ts'
import { formatCell, formatSince } from './format.ts'
import { createPanel } from './panel.ts'
import { simulateStaleEdit } from './stale-edit.ts'
import type { SyncApi } from './sync-api.ts'

/**
 * The manual-conflict queue (`GET /sync/conflicts`): the stored row and the incoming write side by
 * side, differing cells marked, and the two resolutions. A resolution is a new write at the edge,
 * so the panel syncs afterwards to pull it into the cache.
 */
export function createConflictsPanel(eddy: DemoEddy, api: SyncApi, base: string): HTMLElement {
  const reload = h('button', { type: 'button', testid: 'reload-conflicts' }, 'Reload')
  const customer = h('input', { type: 'number', min: 1, value: 1, class: 'narrow', testid: 'stale-edit-id' })
  const simulate = h('button', { type: 'button', testid: 'simulate-conflict' }, 'Simulate a stale edit')
  const note = h('p', { class: 'form-status', testid: 'conflict-note' })
  const list = h('div', { testid: 'conflicts' })
  const panel = createPanel('Conflicts (customers: manual)', 'conflicts-panel', reload)
  panel.body.append(
    h('div', { class: 'inline' }, h('label', {}, 'customer ', customer), simulate),
    note,
    list,
  )
  let seen = -1

  function side(c: ConflictRecord): HTMLElement {
    const stored = c.stored ?? {}
    const incoming = c.incoming ?? {}
    const cols = [...new Set([...Object.keys(stored), ...Object.keys(incoming)])].filter(
      (k) => !k.startsWith('_'),
    )
    return h(
      'table',
      { class: 'rows side-by-side' },
      h('thead', {}, h('tr', {}, h('th', {}, 'column'), h('th', {}, 'warehouse'), h('th', {}, 'incoming'))),
      h(
        'tbody',
        {},
        ...cols.map((k) => {
          const a = c.stored === null ? '(deleted)' : formatCell(stored[k])
          const b = c.incoming === null ? '(delete)' : k in incoming ? formatCell(incoming[k]) : '(unchanged)'
          const differs = k in incoming && a !== b
          return h('tr', { class: differs ? 'differs' : '' }, h('th', {}, k), h('td', {}, a), h('td', {}, b))
        }),
      ),
    )
  }

  function render(conflicts: readonly ConflictRecord[]): void {
    if (conflicts.length === 0) {
      replace(list, h('p', { class: 'empty' }, 'No open conflicts.'))
      return
    }
    const now = Date.now()
    replace(
      list,
      ...conflicts.map((c) => {
        const id = String(c.id)
        const resolve = (keep: 'warehouse' | 'incoming'): void => void settle(c, keep)
        return h(
          'article',
          { class: 'conflict', testid: `conflict-${id}` },
          h(
            'p',
            {},
            h('strong', {}, `${c.table} ${formatCell(c.key)}`),
            ` · ${formatSince(c.detectedAt, now)}`,
          ),
          side(c),
          h(
            'div',
            { class: 'inline' },
            h(
              'button',
              { type: 'button', onclick: () => resolve('warehouse'), testid: `keep-warehouse-${id}` },
              'Keep warehouse',
            ),
            h(
              'button',
              { type: 'button', onclick: () => resolve('incoming'), testid: `keep-incoming-${id}` },
              'Take incoming',
            ),
          ),
        )
      }),
    )
  }

  async function refresh(): Promise<void> {
    try {
      render(await api.conflicts())
    } catch (e) {
      const d = errorDetail(e)
      replace(list, h('p', { class: 'error' }, `${d.code}: ${d.message}`))
    }
  }

  async function settle(c: ConflictRecord, keep: 'warehouse' | 'incoming'): Promise<void> {
    try {
      await api.resolve(c.id, { keep })
      replace(note, `Resolved: kept the ${keep} values.`)
      await refresh()
      if (eddy.status().online) await eddy.sync()
    } catch (e) {
      const d = errorDetail(e)
      replace(note, `${d.code}: ${d.message}`)
    }
  }

  simulate.addEventListener('click', () => {
    replace(note, 'Saving here, then pushing an older edit from another device…')
    simulateStaleEdit(eddy, base, Number(customer.value)).then(
      (status) => {
        replace(note, `The other device's write came back "${status}".`)
        return refresh()
      },
      (e: unknown) => {
        const d = errorDetail(e)
        replace(note, `${d.code}: ${d.message}`)
      },
    )
  })
  reload.addEventListener('click', () => void refresh())
  eddy.on('status', (s) => {
    if (s.conflicts !== seen) {
      seen = s.conflicts
      void refresh()
    }
  })
  seen = eddy.status().conflicts
  void refresh()
  return panel.el
}
