import { createStore, get, set, type UseStore, update } from 'idb-keyval'

/**
 * Small per-profile facts kept in IndexedDB (idb-keyval): the clientId, the pull cursor and the
 * highest HLC stamp this profile has persisted. Every tab of one profile shares them.
 */
export interface ClientMeta {
  /** The profile's clientId: created once, the same for every tab and every reload; `created` when this call made it. */
  clientId(): Promise<{ id: string; created: boolean }>
  setClientId(id: string): Promise<void>
  cursor(): Promise<string | undefined>
  setCursor(cursor: string | undefined): Promise<void>
  lastHlc(): Promise<string | undefined>
  /** Keeps the greater of the stored stamp and `hlc` (stamps sort as strings). */
  saveHlc(hlc: string): Promise<void>
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'

export function freshClientId(): string {
  const bytes = new Uint8Array(16)
  crypto.getRandomValues(bytes)
  let id = 'c'
  for (const b of bytes) id += ALPHABET[b % ALPHABET.length]
  return id
}

export function openClientMeta(dbName: string): ClientMeta {
  const store: UseStore = createStore(`${dbName}-meta`, 'meta')
  return {
    async clientId() {
      // `update` reads and writes in one IndexedDB transaction: two tabs starting together agree.
      const candidate = freshClientId()
      await update<string>('clientId', (old) => old ?? candidate, store)
      const id = await get<string>('clientId', store)
      if (typeof id !== 'string') throw new Error('clientId was not stored')
      return { id, created: id === candidate }
    },
    async setClientId(id) {
      await set('clientId', id, store)
    },
    cursor: () => get<string>('cursor', store),
    async setCursor(cursor) {
      await set('cursor', cursor, store)
    },
    lastHlc: () => get<string>('hlc', store),
    async saveHlc(hlc) {
      await update<string>('hlc', (old) => (old !== undefined && old > hlc ? old : hlc), store)
    },
  }
}
