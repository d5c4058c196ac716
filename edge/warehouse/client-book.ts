import { clientFromRow } from './bookkeeping-rows.ts'

/** A client's bookkeeping: the highest seq processed (0 when unknown) and its owner, if recorded. */
export interface ClientState {
  lastSeq: number
  owner: string | undefined
}

/** A lastSeq recorded in a transaction and not yet written. */
export interface PendingSeq {
  readonly seq: number
  readonly owner: string | undefined
}

/**
 * The clients' bookkeeping inside one write transaction, for every store. `setLastSeq` is kept in
 * memory and written once, by the adapter, before COMMIT (`take`), so a group commit of many pushes
 * pays one statement for all of them; `client` overlays what is kept on what is stored. What is
 * stored does not change while the transaction runs, so a preloaded answer stays true.
 */
export class ClientBook {
  private readonly pending = new Map<string, PendingSeq>()
  private readonly preloaded = new Map<string, ClientState>()

  /** Records the stored state of these clients, read in one statement (`rows` of `_eddy_clients`). */
  preload(clientIds: readonly string[], rows: ReadonlyArray<Record<string, unknown>>): void {
    for (const id of clientIds) this.preloaded.set(id, clientFromRow(undefined))
    for (const r of rows) this.preloaded.set(String(r.client_id), clientFromRow(r))
  }

  /** The client's state; `read` fetches its `_eddy_clients` row when it was not preloaded. */
  async client(
    clientId: string,
    read: () => Promise<Record<string, unknown> | null | undefined>,
  ): Promise<ClientState> {
    const stored = this.preloaded.get(clientId) ?? clientFromRow(await read())
    const pending = this.pending.get(clientId)
    return pending === undefined ? stored : { lastSeq: pending.seq, owner: stored.owner ?? pending.owner }
  }

  /** Keeps a lastSeq. The stored owner, if any, wins over this one (the adapter's write keeps it); so does an earlier call's. */
  setLastSeq(clientId: string, seq: number, owner: string | undefined): void {
    const pending = this.pending.get(clientId)
    this.pending.set(clientId, { seq, owner: pending?.owner ?? owner })
  }

  /** The lastSeqs kept since the last call, to write now. */
  take(): Array<[string, PendingSeq]> {
    const out = [...this.pending]
    this.pending.clear()
    return out
  }
}
