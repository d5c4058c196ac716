import { createEddy, type Eddy, type Persistence } from '../../../client/index.ts'
import { demoSchema } from '../../../demo/schema.ts'
import { defineSchema } from '../../../shared/schema.ts'

/**
 * The test page: the demo schema's client against `/sync` on the same origin, as `window.eddy`.
 * Query parameters: `persistence` (auto|opfs|idb|memory), `name` (IndexedDB/OPFS prefix),
 * `autoSync=0` (no background loop).
 */
/** What the page puts on `window` (the tests cast `window` to this). */
export interface TestPageWindow {
  eddy: Eddy
  /** For tests that open more instances in one page. */
  createEddy: typeof createEddy
  demoSchema: typeof demoSchema
  /** For tests that open a client with another schema. */
  defineSchema: typeof defineSchema
  eddyError?: { code?: string; message: string }
}
const w = window as unknown as TestPageWindow
w.createEddy = createEddy
w.demoSchema = demoSchema
w.defineSchema = defineSchema

const q = new URLSearchParams(location.search)
createEddy({
  url: '/sync',
  schema: demoSchema,
  persistence: (q.get('persistence') ?? 'auto') as Persistence,
  name: q.get('name') ?? 'eddy',
  autoSync: q.get('autoSync') !== '0',
}).then(
  (eddy) => {
    w.eddy = eddy
    document.title = 'eddy ready'
  },
  (e: unknown) => {
    const err = e as { code?: string; message?: string }
    w.eddyError = {
      ...(err.code === undefined ? {} : { code: err.code }),
      message: String(err.message ?? e),
    }
    document.title = `error: ${err.code ?? ''} ${String(err.message ?? e)}`
  },
)
