import { formatCount } from './format.ts'

const SVG = 'http://www.w3.org/2000/svg'

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  if (text !== undefined) el.textContent = text
  return el
}

export interface Bar {
  label: string
  value: number
}

/** A horizontal bar chart, hand-drawn in SVG: one bar per label, scaled to the largest value. */
export function barChart(bars: readonly Bar[], unit: string): SVGSVGElement {
  const rowH = 26
  const labelW = 120
  const width = 520
  const valueW = 110
  const barMax = width - labelW - valueW
  const max = Math.max(1, ...bars.map((b) => Math.abs(b.value)))
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${bars.length * rowH + 8}`,
    class: 'chart',
    role: 'img',
    'aria-label': `${unit} by ${bars.map((b) => b.label).join(', ')}`,
  })
  bars.forEach((b, i) => {
    const y = 4 + i * rowH
    const w = Math.max(1, (Math.abs(b.value) / max) * barMax)
    root.append(
      svg(
        'text',
        { x: labelW - 8, y: y + rowH / 2 + 4, 'text-anchor': 'end', class: 'chart-label' },
        b.label,
      ),
      svg('rect', { x: labelW, y: y + 3, width: w, height: rowH - 8, rx: 3, class: 'chart-bar' }),
      svg(
        'text',
        { x: labelW + w + 6, y: y + rowH / 2 + 4, class: 'chart-value' },
        formatCount(Math.round(b.value)),
      ),
    )
  })
  return root
}

/**
 * The bars a result set reads best as: the first text column as labels and the last numeric
 * column as values, when the result is small enough to draw. Undefined when it is not chartable.
 */
export function chartable(
  rows: readonly Record<string, unknown>[],
): { bars: Bar[]; unit: string } | undefined {
  const first = rows[0]
  if (!first || rows.length > 40) return undefined
  const cols = Object.keys(first)
  const numeric = (v: unknown): boolean =>
    typeof v === 'number' || typeof v === 'bigint' || (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v))
  const label = cols.find((c) =>
    rows.every((r) => r[c] === null || (typeof r[c] === 'string' && !numeric(r[c]))),
  )
  const value = [...cols].reverse().find((c) => c !== label && rows.every((r) => numeric(r[c])))
  if (label === undefined || value === undefined) return undefined
  return {
    bars: rows.map((r) => ({ label: String(r[label] ?? '(null)'), value: Number(r[value]) })),
    unit: value,
  }
}
