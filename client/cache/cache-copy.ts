import type { Table } from '../../shared/schema.ts'
import type { DuckDbCache } from './duckdb-cache.ts'
import { shapeOf } from './idb-snapshot.ts'

/**
 * A copy of the cache file's rows for a tab that cannot open the file.
 *
 * OPFS allows one open handle per file, so a second tab of the profile starts with an in-memory
 * cache. Online it fills it by pulling; offline (or until its first pull answers) it would show only
 * the outbox's pending writes. So the worker that owns the file answers requests on the
 * BroadcastChannel `<name>:cache-copy` with every stored row of every table (`exportTable`: values,
 * stamps, `_needs_sync`, tombstones), and the new tab imports them before its worker replays the
 * outbox over them. Tables are exported one after another, not in one snapshot: a write landing in
 * between is in the outbox (replayed) or is a pulled row (pulled again).
 */
type CopyMessage =
  | { type: 'request'; id: string; shape: string }
  | { type: 'copy'; id: string; tables: Record<string, Uint8Array> }

const channelName = (name: string): string => `${name}:cache-copy`
/** How long a tab waits for the owner's copy before it starts from an empty cache. */
const COPY_WAIT_MS = 5000
/** How often the request repeats while the owner may still be starting. */
const REQUEST_EVERY_MS = 250

/** The owner's side: answers copy requests until the returned function is called. */
export function serveCacheCopies(name: string, cache: DuckDbCache, tables: readonly Table[]): () => void {
  if (typeof BroadcastChannel !== 'function') return () => {}
  const channel = new BroadcastChannel(channelName(name))
  const shape = shapeOf(tables)
  const answered = new Set<string>()
  channel.onmessage = (ev: MessageEvent<CopyMessage>) => {
    const msg = ev.data
    // requests are repeated until answered: one copy per request id is enough
    if (msg.type !== 'request' || msg.shape !== shape || answered.has(msg.id)) return
    answered.add(msg.id)
    void (async () => {
      const out: Record<string, Uint8Array> = {}
      for (const t of tables) out[t.name] = await cache.exportTable(t)
      channel.postMessage({ type: 'copy', id: msg.id, tables: out } satisfies CopyMessage)
    })().catch(() => answered.delete(msg.id)) // a closed cache answers nothing; the requester gives up
  }
  return () => channel.close()
}

/**
 * The other tab's side: asks the owner for a copy (repeating the request while the owner may still
 * be starting) and imports it. False when no copy came within `timeoutMs`.
 */
export async function copyFromOwner(
  name: string,
  cache: DuckDbCache,
  tables: readonly Table[],
  timeoutMs = COPY_WAIT_MS,
): Promise<boolean> {
  if (typeof BroadcastChannel !== 'function') return false
  const channel = new BroadcastChannel(channelName(name))
  const id = crypto.randomUUID()
  const request: CopyMessage = { type: 'request', id, shape: shapeOf(tables) }
  let timer: ReturnType<typeof setInterval> | undefined
  let deadline: ReturnType<typeof setTimeout> | undefined
  try {
    const copy = await new Promise<Record<string, Uint8Array> | undefined>((resolve) => {
      channel.onmessage = (ev: MessageEvent<CopyMessage>) => {
        if (ev.data.type === 'copy' && ev.data.id === id) resolve(ev.data.tables)
      }
      channel.postMessage(request)
      timer = setInterval(() => channel.postMessage(request), REQUEST_EVERY_MS)
      deadline = setTimeout(() => resolve(undefined), timeoutMs)
    })
    if (copy === undefined) return false
    for (const t of tables) {
      const ipc = copy[t.name]
      if (ipc !== undefined) await cache.importTable(t, ipc)
    }
    return true
  } finally {
    clearInterval(timer)
    clearTimeout(deadline)
    channel.close()
  }
}
