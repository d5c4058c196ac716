import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { echoPageErrors, launchChromium, waitForFirstSync, waitForTestId } from '../demo/harness/chromium.ts'
import { buildDemo, serveDemo } from '../demo/harness/serve-demo.ts'

/**
 * `npm run screenshot`: the README's picture of the demo, taken from the real page. Builds the demo,
 * serves it with the real edge over a fresh seeded warehouse (in a temporary folder, so `./data` is
 * untouched), opens it in headless Chromium, waits for the first sync and the SQL chart, checks
 * divergence, makes one offline edit so the sync bar shows a pending write, and writes `docs/demo.png`.
 */
const OUT = resolve(import.meta.dirname, '../docs/demo.png')

async function main(): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'eddy-screenshot-'))
  const dist = join(tmp, 'dist')
  await buildDemo(dist)
  const server = await serveDemo(dist)
  const browser = await launchChromium()
  try {
    const page = await browser.newPage({ viewport: { width: 1440, height: 960 }, deviceScaleFactor: 1 })
    echoPageErrors(page)
    await page.goto(server.url)
    await waitForFirstSync(page)
    await page.waitForSelector('[data-testid="rows-orders"] tr[data-key]')
    await page.waitForSelector('[data-testid="sql-chart"] svg')
    await page.click('[data-testid="check-divergence"]')
    await page.waitForFunction(() =>
      /\d/.test(document.querySelector('[data-testid="diverged-metrics"]')?.textContent ?? ''),
    )
    await page.click('[data-testid="toggle-online"]')
    await waitForTestId(page, 'online', 'offline')
    await page.click('[data-testid="rows-orders"] tr[data-key]')
    await page.selectOption('[data-testid="field-orders-status"]', 'shipped')
    await page.click('[data-testid="save-orders"]')
    await waitForTestId(page, 'pending', '1')
    await page.waitForSelector('[data-testid="rows-orders"] .pill.pending')
    await mkdir(dirname(OUT), { recursive: true })
    await page.screenshot({ path: OUT })
    console.log(`wrote ${OUT}`)
  } finally {
    await browser.close()
    await server.close()
    await rm(tmp, { recursive: true, force: true })
  }
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
