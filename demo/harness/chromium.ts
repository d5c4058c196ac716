import { type Browser, chromium, type Page } from 'playwright-core'
// `window.eddy`'s type, for the page functions below
import type {} from '../eddy-client.ts'

/** Flags that work for Debian's Chromium in this sandbox-less, offline environment (DESIGN.md). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const

/**
 * Launches headless Chromium (`/usr/bin/chromium`, or `CHROMIUM_PATH`) with a fresh profile:
 * playwright-core creates a temporary user-data-dir per launch and removes it on close.
 */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_ARGS],
  })
}

/** Waits until the element with `data-testid` shows exactly `text`. */
export async function waitForTestId(
  page: Page,
  testid: string,
  text: string,
  timeout = 60_000,
): Promise<void> {
  await page.waitForFunction(
    ([id, want]) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.trim() === want,
    [testid, text] as const,
    { timeout },
  )
}

/** Forwards the page's console errors and crashes to the test's output, for diagnosis. */
export function echoPageErrors(page: Page, prefix = 'page'): void {
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console.log(`[${prefix} ${m.type()}] ${m.text()}`)
  })
  page.on('pageerror', (e) => console.log(`[${prefix} error] ${e.message}`))
}

/** Waits until the demo has started (or failed to) and its client finished a first sync. */
export async function waitForFirstSync(page: Page, timeout = 120_000): Promise<void> {
  await page.waitForFunction(() => document.body.dataset.ready !== undefined, null, { timeout })
  const ready = await page.evaluate(() => document.body.dataset.ready)
  if (ready !== 'true') throw new Error(`the demo did not start: ${await page.textContent('#app')}`)
  await page.waitForFunction(() => window.eddy?.status().lastSyncAt !== null, null, { timeout })
}
