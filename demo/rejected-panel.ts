import { h, replace } from './dom.ts'
import type { DemoEddy, RejectedWrite } from './eddy-client.ts'
import { errorDetail } from './error-detail.ts'
import { formatCell } from './format.ts'
import { createPanel } from './panel.ts'

/**
 * Writes the edge refused (`rejected` push results). They are never resent; the list stays until
 * the visitor clears it. Refreshes whenever the status's rejected count changes.
 */
export function createRejectedPanel(eddy: DemoEddy): HTMLElement {
  const clear = h('button', { type: 'button', testid: 'clear-rejected' }, 'Clear')
  const panel = createPanel('Rejected writes', 'rejected-panel', clear)
  let seen = -1

  function render(list: readonly RejectedWrite[]): void {
    clear.disabled = list.length === 0
    if (list.length === 0) {
      replace(panel.body, h('p', { class: 'empty' }, 'None. A write the edge refuses shows up here.'))
      return
    }
    replace(
      panel.body,
      h(
        'ul',
        { class: 'items', testid: 'rejected-list' },
        ...list.map((r) =>
          h(
            'li',
            {},
            h('strong', {}, `${r.op} ${r.table} ${formatCell(r.key)}`),
            h('span', { class: 'error' }, ` ${r.error.code}${r.error.field ? ` (${r.error.field})` : ''}: `),
            r.error.message,
            r.values ? h('code', { class: 'values' }, formatCell(r.values)) : null,
          ),
        ),
      ),
    )
  }

  async function refresh(): Promise<void> {
    try {
      render(await eddy.rejected())
    } catch (e) {
      const d = errorDetail(e)
      replace(panel.body, h('p', { class: 'error' }, `${d.code}: ${d.message}`))
    }
  }

  clear.addEventListener('click', () => {
    eddy.clearRejected().then(refresh, (e: unknown) => {
      const d = errorDetail(e)
      replace(panel.body, h('p', { class: 'error' }, `${d.code}: ${d.message}`))
    })
  })
  eddy.on('status', (s) => {
    if (s.rejected !== seen) {
      seen = s.rejected
      void refresh()
    }
  })
  seen = eddy.status().rejected
  void refresh()
  return panel.el
}
