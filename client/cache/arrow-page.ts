import {
  Bool,
  makeData,
  makeVector,
  Table,
  TimestampMillisecond,
  tableFromIPC,
  tableToIPC,
  Utf8,
  type Vector,
} from 'apache-arrow'

/**
 * An Arrow pull page (the table's columns, `_hlc`, `_deleted`) rewritten as rows of the cache's
 * physical table: every physical column, in the table's own order, so DuckDB-WASM can append the
 * stream to the table itself (`insertArrowFromIPCStream` with `create: false` inserts by position
 * and casts each column to the table's type). The pulled rows are synced: `_needs_sync` false,
 * `_synced_at` the given instant; a page without `_deleted` has no tombstones; a physical column
 * the page lacks is null. Staging the page as a table first and copying it with a cast per column
 * cost a second copy of every row and, on a fresh DuckDB-WASM instance, code paths that V8 has
 * not compiled yet.
 */
export interface PhysicalPage {
  /** The rewritten stream. */
  readonly ipc: Uint8Array
  /** Rows in the page, and how many of them are tombstones. */
  readonly rows: number
  readonly tombstones: number
}

const bitmap = (length: number): Uint8Array => new Uint8Array((length + 7) >> 3)

const allFalse = (length: number): Vector =>
  makeVector(makeData({ type: new Bool(), length, nullCount: 0, data: bitmap(length) }))

const allAt = (length: number, ms: number): Vector =>
  makeVector(
    makeData({
      type: new TimestampMillisecond(),
      length,
      nullCount: 0,
      data: new BigInt64Array(length).fill(BigInt(ms)),
    }),
  )

const allNull = (length: number): Vector =>
  makeVector(
    makeData({
      type: new Utf8(),
      length,
      nullCount: length,
      nullBitmap: bitmap(length),
      valueOffsets: new Int32Array(length + 1),
      data: new Uint8Array(0),
    }),
  )

/** Undefined when the page has no `_hlc` (the caller's general path refuses it with a message). */
export function physicalPage(
  ipc: Uint8Array,
  physicalColumns: readonly string[],
  syncedAtMs: number,
): PhysicalPage | undefined {
  const page = tableFromIPC(ipc)
  const hlc = page.getChild('_hlc')
  if (hlc === null) return undefined
  const rows = page.numRows
  const deleted = page.getChild('_deleted')
  let tombstones = 0
  if (deleted !== null) for (let i = 0; i < rows; i++) if (deleted.get(i) === true) tombstones += 1
  const vectors: Record<string, Vector> = {}
  for (const name of physicalColumns) {
    const column = page.getChild(name)
    if (column !== null) vectors[name] = column
    else if (name === '_needs_sync' || name === '_deleted') vectors[name] = allFalse(rows)
    else if (name === '_synced_at') vectors[name] = allAt(rows, syncedAtMs)
    else vectors[name] = allNull(rows)
  }
  return { ipc: tableToIPC(new Table(vectors), 'stream'), rows, tombstones }
}
