import { type Child, h } from './dom.ts'

/** A titled card: the frame every side panel of the demo uses. */
export interface Panel {
  readonly el: HTMLElement
  readonly body: HTMLElement
}

export function createPanel(title: string, testid: string, ...actions: Child[]): Panel {
  const body = h('div', { class: 'panel-body' })
  const el = h(
    'section',
    { class: 'panel', testid },
    h(
      'header',
      { class: 'panel-head' },
      h('h2', {}, title),
      h('div', { class: 'panel-actions' }, ...actions),
    ),
    body,
  )
  return { el, body }
}
