import { h, replace } from './dom.ts'
import type { DemoEddy, Status } from './eddy-client.ts'
import { errorDetail } from './error-detail.ts'
import { formatCount, formatSince } from './format.ts'

/**
 * The always-visible sync bar: online/offline, pending writes, sync progress, last sync, which
 * tab syncs, last error, and the two buttons a visitor needs ("Sync now", and the simulated
 * "Go offline" switch). Each value sits in its own element with a stable `data-testid` for tests.
 */
export function createSyncBar(eddy: DemoEddy): HTMLElement {
  const online = h('span', { class: 'dot', testid: 'online' })
  const pending = h('strong', { testid: 'pending' }, '0')
  const syncing = h('span', { class: 'syncing', testid: 'syncing' })
  const lastSync = h('span', { testid: 'last-sync' }, 'never')
  const leader = h('span', { class: 'stat', testid: 'leader' })
  const lastError = h('span', { class: 'last-error', testid: 'last-error' })
  const actionError = h('span', { class: 'last-error', testid: 'action-error' })
  const syncNow = h('button', { type: 'button', class: 'primary', testid: 'sync-now' }, 'Sync now')
  const toggle = h('button', { type: 'button', testid: 'toggle-online' }, 'Go offline')
  const bar = h(
    'div',
    { class: 'sync-bar', testid: 'sync-bar', role: 'status' },
    online,
    h('span', { class: 'stat' }, 'pending ', pending),
    syncing,
    h('span', { class: 'stat' }, 'last sync ', lastSync),
    leader,
    lastError,
    actionError,
    h('span', { class: 'spacer' }),
    syncNow,
    toggle,
  )

  let current: Status = eddy.status()

  function render(s: Status): void {
    current = s
    bar.dataset.online = String(s.online)
    replace(online, s.online ? 'online' : 'offline')
    online.className = `dot ${s.online ? 'on' : 'off'}`
    replace(pending, String(s.pending))
    bar.dataset.pending = String(s.pending)
    if (s.syncing) {
      const p = s.progress
      replace(syncing, p ? `syncing ${formatCount(p.done)}/${formatCount(p.total)}` : 'syncing…')
      if (p && p.total > 0) syncing.append(h('progress', { max: p.total, value: p.done, testid: 'progress' }))
    } else {
      replace(syncing)
    }
    replace(lastSync, s.lastSyncAt === null ? 'never' : formatSince(s.lastSyncAt, Date.now()))
    if (s.lastSyncAt !== null) lastSync.setAttribute('title', s.lastSyncAt)
    // one tab of the profile pushes and pulls; the others follow its changes
    replace(leader, s.leader ? 'this tab syncs' : 'another tab syncs')
    replace(lastError, s.lastError ? `${s.lastError.code}: ${s.lastError.message}` : '')
    replace(toggle, s.online ? 'Go offline' : 'Go online')
    syncNow.disabled = !s.online
  }

  syncNow.addEventListener('click', () => {
    replace(actionError)
    syncNow.disabled = true
    eddy.sync().then(
      () => render(eddy.status()),
      (e: unknown) => {
        const d = errorDetail(e)
        replace(actionError, `sync failed: ${d.code}: ${d.message}`)
        render(eddy.status())
      },
    )
  })
  toggle.addEventListener('click', () => {
    replace(actionError)
    eddy.setOnline(!current.online)
    render(eddy.status())
  })

  eddy.on('status', render)
  // "12s ago" ages even when nothing else changes.
  setInterval(() => render(eddy.status()), 1000)
  render(current)
  return bar
}
