import { createStore, del, get, set, type UseStore } from 'idb-keyval'

/**
 * Keeps the profile's persisted pull cursor honest about which cache it describes.
 *
 * The engine persists its cursor while it leads. The leader is usually the tab that owns the cache
 * file (OPFS or snapshot), but when that tab closes another tab takes the lead with an in-memory
 * cache, and the cursor it persists runs ahead of the file. So a tab that leads with a memory
 * cache marks the cursor as not the file's, and the next tab that opens the file from that state
 * drops the cursor and pulls afresh over the file (pulls carry deletes as tombstones, so the file
 * converges). A spare full pull is the only cost of a false alarm.
 */
export interface CursorOwner {
  /** A memory-cache tab leads: the persisted cursor no longer describes the cache file. */
  markForeign(): Promise<void>
  /** At open, for a tab that owns the file: true when the cursor must be dropped (and clears the mark). */
  takeForeign(): Promise<boolean>
}

export function openCursorOwner(name: string): CursorOwner {
  const store: UseStore = createStore(`${name}-cursor-owner`, 'flags')
  let marked = false
  return {
    async markForeign() {
      if (marked) return
      await set('foreign', true, store)
      marked = true
    },
    async takeForeign() {
      const foreign = (await get<boolean>('foreign', store)) === true
      if (foreign) await del('foreign', store)
      return foreign
    },
  }
}
