import { createWorker } from '../edge/runtime/worker.ts'
import { demoSchema } from './schema.ts'

/** The demo's Cloudflare Worker (wrangler.toml's `main`): the sync API for the demo's tables. */
export default createWorker({ schema: demoSchema })
