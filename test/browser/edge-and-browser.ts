import type { Browser } from 'playwright-core'
import { afterAll, beforeAll } from 'vitest'
import { must } from '../../shared/errors.ts'
import { launchBrowser, startEdge, startServer, type TestEdge, type TestServer } from './harness.ts'

/** What `withEdgeAndBrowser` starts for a test file, readable once the file's `beforeAll` has run. */
export interface EdgeAndBrowser {
  readonly server: TestServer
  readonly browser: Browser
  readonly edge: TestEdge
}

/**
 * Registers a test file's `beforeAll`/`afterAll` for the common setup: the test pages' server with a
 * real edge (the demo schema on an in-memory DuckDB warehouse) behind its `/sync`, and one Chromium.
 * After the file: the server's interceptor removed, then the browser, the edge and the server closed.
 */
export function withEdgeAndBrowser(): EdgeAndBrowser {
  let server: TestServer | undefined
  let browser: Browser | undefined
  let edge: TestEdge | undefined
  beforeAll(async () => {
    server = await startServer()
    browser = await launchBrowser()
    edge = await startEdge()
    server.setEdge(edge.fetch)
  })
  afterAll(async () => {
    server?.setInterceptor(null)
    await browser?.close()
    await edge?.close()
    await server?.close()
  })
  return {
    get server() {
      return must(server, 'the test server (started in beforeAll)')
    },
    get browser() {
      return must(browser, 'the browser (started in beforeAll)')
    },
    get edge() {
      return must(edge, 'the edge (started in beforeAll)')
    },
  }
}
