import { createStore, get, set, type UseStore, update } from 'idb-keyval'
import type { Table } from '../../shared/schema.ts'
import { shapeOf } from '../cache/idb-snapshot.ts'

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
  /**
   * The cache's tables and columns (`shapeOf`) when the cursor was last known to cover them: a
   * schema that grew since then has rows at or below the cursor the cache never pulled.
   */
  shape(): Promise<string | undefined>
  setShape(shape: string): Promise<void>
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
    shape: () => get<string>('shape', store),
    async setShape(shape) {
      await set('shape', shape, store)
    },
    lastHlc: () => get<string>('hlc', store),
    async saveHlc(hlc) {
      await update<string>('hlc', (old) => (old !== undefined && old > hlc ? old : hlc), store)
    },
  }
}

/**
 * Forgets the profile's pull cursor when the cache's tables or columns differ from those it was
 * saved under, then records the new shape (in that order: a crash in between costs a spare full
 * pull, never a cursor past rows the cache lacks). A table or column added to the app's schema has
 * rows at or below the cursor that were never pulled into this cache; with no cursor the next sync
 * loads every table afresh (pending local writes still win over pulled rows). A profile saved by a
 * version of Eddy that kept no shape is pulled afresh once. Resolves whether the cursor was forgotten.
 */
export async function forgetCursorIfSchemaChanged(name: string, tables: readonly Table[]): Promise<boolean> {
  const meta = openClientMeta(name)
  const shape = shapeOf(tables)
  const saved = await meta.shape()
  if (saved === shape) return false
  const forget = saved !== undefined || (await meta.cursor()) !== undefined
  if (forget) await meta.setCursor(undefined)
  await meta.setShape(shape)
  return forget
}
