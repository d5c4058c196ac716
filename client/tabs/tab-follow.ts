import type { Schema } from '../../shared/schema.ts'
import type { LocalCache } from '../cache/cache.ts'
import type { Channel, ChannelMessage, Leadership } from './leader.ts'

export interface TabFollowDeps {
  schema: Schema
  cache: Pick<LocalCache, 'markSynced' | 'applyRemote'>
  channel: Channel
  leadership: Leadership
  now: () => number
  /** This engine's local writes under way (their cache writes not yet queued). */
  inFlightWrites(): Array<Promise<unknown>>
  /** This engine may pull in the background now (auto sync on, online, open). */
  mayPull(): boolean
  pull(): Promise<unknown>
  /** Asks this engine's background loop for a pass soon. */
  kick(): void
  /** Leadership changed. */
  onLeader(leader: boolean): void
  refreshCounts(): Promise<void>
  emitChange(tables: Iterable<string>, source: 'local' | 'remote'): void
  noteError(e: unknown): void
}

/**
 * How one engine follows the others of its profile: the leader pushes soon after any tab wrote;
 * a tab that does not lead pulls after the leader synced, and marks synced (and restores) what the
 * leader settled, so its own cache agrees. Every tab refreshes its counts on every message.
 * Returns the function that stops following.
 */
export function followTabs(d: TabFollowDeps): () => void {
  const { schema, cache, leadership } = d
  const offLeader = leadership.onChange((leader) => {
    d.onLeader(leader)
    if (leader) d.kick()
  })

  /** Another tab's leader settled a batch: this tab's cache follows. */
  async function followSettled(msg: Extract<ChannelMessage, { type: 'settled' }>): Promise<void> {
    // This tab's own writes in the batch may still be reaching its cache.
    await Promise.allSettled(d.inFlightWrites())
    const at = new Date(d.now()).toISOString()
    for (const s of msg.synced) {
      const t = schema.tables.get(s.table)
      if (t !== undefined) await cache.markSynced(t, s.rows, at)
    }
    if (msg.restored.length > 0) d.emitChange(await cache.applyRemote(msg.restored, schema.tables), 'remote')
  }

  const offChannel = d.channel.on((msg) => {
    if (msg.type === 'settled') {
      followSettled(msg).catch(d.noteError)
      return
    }
    d.refreshCounts().catch(d.noteError)
    if (msg.type === 'write' && leadership.isLeader()) d.kick()
    if (msg.type === 'synced' && !leadership.isLeader() && d.mayPull()) {
      d.pull().catch(d.noteError)
    }
  })
  return () => {
    offLeader()
    offChannel()
  }
}
