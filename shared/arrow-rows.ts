import { Table, Type, tableToIPC, Utf8, type Vector, vectorFromArray } from 'apache-arrow'
import type { Row } from './schema.ts'

/**
 * Arrow <-> plain rows for the DuckDB-WASM cache.
 *
 * Reading: DuckDB-WASM answers queries as Arrow tables (its own bundled apache-arrow, so this file
 * only relies on the structural surface and the stable Arrow type ids). Values come out in the
 * wire's JSON form (PROTOCOL.md): integers as numbers (BigInt only past 2^53), decimals as strings
 * (`"12.50"`), dates as `YYYY-MM-DD`, timestamps as ISO 8601 UTC strings, booleans as booleans.
 * A scale-0 decimal of precision 38 is how DuckDB exports HUGEINT (e.g. `SUM` of integers): it is
 * read as an integer.
 *
 * Writing: rows are encoded as all-text Arrow columns (the cache casts each column to its SQL type
 * in one set-based statement), so one encoder serves every column type.
 */
interface ArrowTypeLike {
  readonly typeId: number
  readonly bitWidth?: number
  readonly scale?: number
  readonly precision?: number
}
interface ArrowVectorLike {
  get(index: number): unknown
  readonly type: ArrowTypeLike
}
export interface ArrowTableLike {
  readonly numRows: number
  readonly schema: { readonly fields: ReadonlyArray<{ readonly name: string; readonly type: ArrowTypeLike }> }
  getChildAt(index: number): ArrowVectorLike | null
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/** A bigint as a number when it is exact, else the bigint itself. */
export function plainInteger(v: bigint): number | bigint {
  return v <= MAX_SAFE && v >= -MAX_SAFE ? Number(v) : v
}

function wordsToBigInt(words: ArrayLike<number>): bigint {
  let v = 0n
  for (let i = words.length - 1; i >= 0; i--) v = (v << 32n) | BigInt((words[i] ?? 0) >>> 0)
  const bits = BigInt(words.length * 32)
  return v >= 1n << (bits - 1n) ? v - (1n << bits) : v
}

/** A scaled integer as decimal text: (1250n, 2) -> "12.50". */
export function decimalText(unscaled: bigint, scale: number): string {
  const neg = unscaled < 0n
  let s = (neg ? -unscaled : unscaled).toString()
  if (scale > 0) {
    s = s.padStart(scale + 1, '0')
    s = `${s.slice(0, -scale)}.${s.slice(-scale)}`
  }
  return neg ? `-${s}` : s
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

type Reader = (v: unknown) => unknown

function readerFor(type: ArrowTypeLike): Reader {
  switch (type.typeId) {
    case Type.Int:
      return (v) => (typeof v === 'bigint' ? plainInteger(v) : v)
    case Type.Decimal: {
      const scale = type.scale ?? 0
      const asInteger = scale === 0 && type.precision === 38
      return (v) => {
        const n = typeof v === 'bigint' ? v : wordsToBigInt(v as ArrayLike<number>)
        return asInteger ? plainInteger(n) : decimalText(n, scale)
      }
    }
    case Type.Date:
      return (v) => (typeof v === 'number' ? isoDate(v) : v instanceof Date ? isoDate(v.getTime()) : v)
    case Type.Timestamp:
      return (v) =>
        typeof v === 'number'
          ? new Date(Math.floor(v)).toISOString()
          : typeof v === 'bigint'
            ? new Date(Number(v)).toISOString()
            : v
    case Type.Float:
    case Type.Bool:
    case Type.Utf8:
    case Type.LargeUtf8:
      return (v) => v
    default:
      // lists, structs, maps: their JSON form
      return (v) => {
        const j = v as { toJSON?: () => unknown }
        return typeof j.toJSON === 'function' ? j.toJSON() : v
      }
  }
}

/** Every row of an Arrow result as a plain object. */
export function arrowToRows(table: ArrowTableLike): Row[] {
  const fields = table.schema.fields
  const cols = fields.map((f, i) => ({
    name: f.name,
    vec: table.getChildAt(i),
    read: readerFor(f.type),
  }))
  const out: Row[] = new Array(table.numRows)
  for (let r = 0; r < table.numRows; r++) {
    const row: Row = {}
    for (const c of cols) {
      const v = c.vec?.get(r)
      row[c.name] = v === null || v === undefined ? null : c.read(v)
    }
    out[r] = row
  }
  return out
}

const WITH_OFFSET = /T.*[+-]\d{2}:?\d{2}$/

/**
 * A JS value as the text the cache casts to the column's SQL type; null stays null. A timestamp
 * with a UTC offset is converted to UTC first (DuckDB's cast to TIMESTAMP would drop the offset).
 */
export function valueText(v: unknown, json: boolean, timestamp = false): string | null {
  if (v === null || v === undefined) return null
  if (json) return JSON.stringify(v)
  if (timestamp && typeof v === 'string' && WITH_OFFSET.test(v)) {
    const d = new Date(v)
    return Number.isNaN(d.getTime()) ? v : d.toISOString()
  }
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v)
  if (v instanceof Date) return v.toISOString()
  return JSON.stringify(v)
}

/** Columns of text (null allowed) as one Arrow IPC stream. */
export function textColumnsToIpc(
  columns: ReadonlyArray<{ name: string; values: Array<string | null> }>,
): Uint8Array {
  const vectors: Record<string, Vector<Utf8>> = {}
  for (const c of columns) vectors[c.name] = vectorFromArray(c.values, new Utf8())
  return tableToIPC(new Table(vectors), 'stream')
}
