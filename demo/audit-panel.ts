import type { SyncEvent } from '../shared/protocol.ts'
import { h, replace } from './dom.ts'
import type { DemoEddy, Status } from './eddy-client.ts'
import { errorDetail } from './error-detail.ts'
import { formatMs, formatSince } from './format.ts'
import { createPanel } from './panel.ts'
import type { SyncApi } from './sync-api.ts'

const POLL_MS = 5000
const COLUMNS = ['applied', 'stale', 'duplicate', 'conflict', 'rejected'] as const

/** The edge's audit trail (`GET /sync/events`): one line per push, newest first, from every client. */
export function createAuditPanel(eddy: DemoEddy, api: SyncApi): HTMLElement {
  const reload = h('button', { type: 'button', testid: 'reload-events' }, 'Reload')
  const panel = createPanel('Audit trail', 'audit-panel', reload)
  let seen = ''

  function render(events: readonly SyncEvent[]): void {
    if (events.length === 0) {
      replace(panel.body, h('p', { class: 'empty' }, 'No pushes yet.'))
      return
    }
    const now = Date.now()
    replace(
      panel.body,
      h(
        'div',
        { class: 'scroll short' },
        h(
          'table',
          { class: 'rows', testid: 'events' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, 'when'),
              h('th', {}, 'client'),
              h('th', {}, 'writes'),
              ...COLUMNS.map((c) => h('th', {}, c)),
              h('th', {}, 'took'),
            ),
          ),
          h(
            'tbody',
            {},
            ...events.map((e) =>
              h(
                'tr',
                {},
                h('td', { title: e.receivedAt }, formatSince(e.receivedAt, now)),
                h(
                  'td',
                  { class: 'mono', title: e.clientId },
                  e.clientId === eddy.clientId
                    ? h('strong', { testid: 'event-mine' }, 'this browser')
                    : e.clientId,
                ),
                h('td', {}, String(e.mutations)),
                ...COLUMNS.map((c) => h('td', { class: e[c] > 0 ? `n ${c}` : 'n' }, String(e[c]))),
                h('td', {}, formatMs(e.durationMs)),
              ),
            ),
          ),
        ),
      ),
    )
  }

  async function refresh(): Promise<void> {
    try {
      render(await api.events(25))
    } catch (e) {
      const d = errorDetail(e)
      replace(panel.body, h('p', { class: 'error' }, `${d.code}: ${d.message}`))
    }
  }

  reload.addEventListener('click', () => void refresh())
  // Pushes from this tab change the status (a sync, a pending count going down); pushes from other
  // clients show up on the next poll.
  const stamp = (s: Status): string => `${s.lastSyncAt}|${s.pending}|${s.conflicts}|${s.rejected}`
  eddy.on('status', (s) => {
    const next = stamp(s)
    if (next !== seen) {
      seen = next
      void refresh()
    }
  })
  setInterval(() => {
    if (eddy.status().online && !document.hidden) void refresh()
  }, POLL_MS)
  seen = stamp(eddy.status())
  void refresh()
  return panel.el
}
