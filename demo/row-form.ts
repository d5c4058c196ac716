import type { Column, Row, Table } from '../shared/schema.ts'
import { h, replace } from './dom.ts'
import type { DemoEddy } from './eddy-client.ts'
import { errorDetail } from './error-detail.ts'
import { autoStamp, enumValues, inputText, parseInput } from './form-values.ts'
import type { TableView } from './table-views.ts'

/**
 * The edit form of one table: one field per column, each with its validation message beside it.
 * A save sends the key plus the fields the visitor changed (a partial upsert, so merge columns the
 * visitor did not touch are not re-sent), through `eddy.put`, and shows what the write mode
 * promises once it resolves: durable locally (write-back, hybrid) or stored in the warehouse
 * (write-through).
 */
export interface RowForm {
  readonly el: HTMLElement
  edit(row: Row): void
  create(key: Row): void
}

interface Field {
  col: Column
  input: HTMLInputElement | HTMLSelectElement
  error: HTMLElement
  current: HTMLElement
}

export function createRowForm(eddy: DemoEddy, table: Table, view: TableView): RowForm {
  const id = (what: string, col?: string): string => `${what}-${table.name}${col ? `-${col}` : ''}`
  const title = h('h3', {}, 'Select a row to edit')
  const status = h('p', { class: 'form-status', testid: id('form-status'), role: 'status' })
  const save = h('button', { type: 'submit', class: 'primary', testid: id('save') }, 'Save')
  const fields = new Map<string, Field>()
  let original: Row | null = null
  let creating = false

  const form = h('form', { class: 'row-form', testid: id('form'), novalidate: true }, title)
  for (const col of table.columns) {
    const choices = enumValues(col)
    const input = choices
      ? h('select', { name: col.name, testid: id('field', col.name) }, h('option', { value: '' }, '—'))
      : h('input', { name: col.name, testid: id('field', col.name), autocomplete: 'off' })
    if (choices) for (const c of choices) input.append(h('option', { value: c }, c))
    const error = h('span', { class: 'field-error', testid: id('error', col.name), 'aria-live': 'polite' })
    const current = h('span', { class: 'field-current' })
    fields.set(col.name, { col, input, error, current })
    form.append(
      h(
        'label',
        { class: 'field' },
        h('span', { class: 'field-name' }, col.name, h('small', { class: 'field-hint' }, hint(table, col))),
        input,
        current,
        error,
      ),
    )
  }
  form.append(h('div', { class: 'form-actions' }, save, status))
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    void submit()
  })
  disable(true)

  function setTitle(row: Row): void {
    replace(title, `Edit ${table.name} ${table.primaryKey.map((k) => inputText(row[k])).join(', ')}`)
  }

  function disable(off: boolean): void {
    save.disabled = off
    for (const f of fields.values()) f.input.disabled = off
  }

  function fill(row: Row | null): void {
    replace(status)
    for (const f of fields.values()) {
      const value = row?.[f.col.name]
      replace(f.error)
      replace(f.current)
      f.input.classList.remove('invalid')
      const concat = table.conflict === 'merge' && f.col.merge === 'concat'
      if (concat) {
        f.input.value = ''
        f.input.setAttribute('placeholder', 'appended to the stored text')
        if (value !== null && value !== undefined) replace(f.current, `now: ${inputText(value)}`)
      } else {
        f.input.value = inputText(value)
      }
      const isKey = f.col.primaryKey
      const readOnly = (isKey && !(creating && view.newKey === 'typed')) || f.col.type === 'timestamp'
      if (f.input instanceof HTMLInputElement) f.input.readOnly = readOnly
      f.input.toggleAttribute('aria-readonly', readOnly)
    }
  }

  function collect(): Row {
    const row: Row = {}
    const now = new Date().toISOString()
    for (const f of fields.values()) {
      const { col } = f
      const text = f.input.value
      if (col.primaryKey) {
        row[col.name] = creating ? parseInput(col, text) : original?.[col.name]
        continue
      }
      if (autoStamp(col, creating)) {
        row[col.name] = now
        continue
      }
      if (col.type === 'timestamp') continue
      if (table.conflict === 'merge' && col.merge === 'concat') {
        if (text.trim() !== '') row[col.name] = text
        continue
      }
      const value = parseInput(col, text)
      if (creating ? value !== null : text !== inputText(original?.[col.name])) row[col.name] = value
    }
    return row
  }

  async function submit(): Promise<void> {
    for (const f of fields.values()) {
      replace(f.error)
      f.input.classList.remove('invalid')
    }
    replace(status, 'Saving…')
    status.className = 'form-status'
    disable(true)
    let invalid: Field | undefined
    try {
      const row = collect()
      const stored = await eddy.put(table.name, row)
      const where =
        table.sync === 'write-through'
          ? 'Stored in the warehouse.'
          : table.sync === 'hybrid'
            ? 'Saved locally; goes out with the next scheduled sync.'
            : 'Saved locally; pending sync.'
      original = stored && typeof stored === 'object' ? { ...(stored as Row) } : { ...original, ...row }
      creating = false
      setTitle(original)
      fill(original)
      replace(status, where)
      status.className = 'form-status ok'
    } catch (e) {
      const d = errorDetail(e)
      const field = d.field === undefined ? undefined : fields.get(d.field)
      if (field) {
        replace(field.error, d.message)
        field.input.classList.add('invalid')
        invalid = field
        replace(status)
      } else {
        replace(status, `${d.code}: ${d.message}`)
        status.className = 'form-status error'
      }
    } finally {
      disable(false)
    }
    invalid?.input.focus()
  }

  return {
    el: form,
    edit(row) {
      original = { ...row }
      creating = false
      setTitle(row)
      fill(original)
      disable(false)
    },
    create(key) {
      original = null
      creating = true
      replace(title, `New ${table.name.replace(/s$/, '')}`)
      fill(key)
      disable(false)
    },
  }
}

/** What the label says besides the column name: its type and, for merge tables, the merge rule. */
function hint(table: Table, col: Column): string {
  const type = col.type === 'decimal' ? `decimal(${col.precision},${col.scale})` : col.type
  const parts = [type]
  if (col.primaryKey) parts.push('key')
  if (col.required) parts.push('required')
  if (table.conflict === 'merge' && !col.primaryKey) parts.push(`merge: ${col.merge}`)
  return ` ${parts.join(' · ')}`
}
