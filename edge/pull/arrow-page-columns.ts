import {
  Bool,
  DateDay,
  Float64,
  Int32,
  Int64,
  makeData,
  makeVector,
  TimestampMillisecond,
  Utf8,
  type Vector,
} from 'apache-arrow'
import type { Column } from '../../shared/schema.ts'

/**
 * The column buffers a warehouse's Arrow page reader (`pullColumns`) fills row by row, sized for
 * the page's limit and handed to the Arrow pull as vectors without a copy. The types are those of
 * `arrow-pull.ts`: text, uuid, json and decimal travel as Utf8, the rest fixed-width.
 */

/** Columns the Arrow pull sends as Utf8. */
export function isArrowText(c: Column): boolean {
  return c.type === 'decimal' || c.type === 'text' || c.type === 'uuid' || c.type === 'json'
}

/** Bytes of a validity or boolean bitmap of `n` rows. */
const bitmapBytes = (n: number): number => (n + 7) >> 3

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** One fixed-width column of a page (every type `isArrowText` leaves out): its values and validity. */
export function fixedColumn(c: Column, capacity: number) {
  const valid = new Uint8Array(bitmapBytes(capacity))
  let nullCount = 0
  const bits = new Uint8Array(c.type === 'boolean' ? bitmapBytes(capacity) : 0)
  const wide = new BigInt64Array(c.type === 'bigint' || c.type === 'timestamp' ? capacity : 0)
  const float = new Float64Array(c.type === 'double' ? capacity : 0)
  const int = new Int32Array(c.type === 'integer' || c.type === 'date' ? capacity : 0)
  return {
    /**
     * Row `i` holds `v`: a boolean for boolean columns; days for dates and epoch milliseconds for
     * timestamps; an exact bigint where the number would not be.
     */
    set(i: number, v: number | bigint | boolean): void {
      valid[i >> 3] = (valid[i >> 3] ?? 0) | (1 << (i & 7))
      switch (c.type) {
        case 'boolean':
          if (v === true) bits[i >> 3] = (bits[i >> 3] ?? 0) | (1 << (i & 7))
          break
        case 'bigint':
        case 'timestamp':
          wide[i] = typeof v === 'bigint' ? v : BigInt(v)
          break
        case 'double':
          float[i] = Number(v)
          break
        default:
          int[i] = Number(v)
      }
    },
    setNull(_i: number): void {
      nullCount += 1
    },
    vector(length: number): Vector {
      const base = { length, nullCount, nullBitmap: valid.subarray(0, bitmapBytes(length)) }
      switch (c.type) {
        case 'boolean':
          return makeVector(
            makeData({ ...base, type: new Bool(), data: bits.subarray(0, bitmapBytes(length)) }),
          )
        case 'bigint':
          return makeVector(makeData({ ...base, type: new Int64(), data: wide.subarray(0, length) }))
        case 'timestamp':
          return makeVector(
            makeData({ ...base, type: new TimestampMillisecond(), data: wide.subarray(0, length) }),
          )
        case 'double':
          return makeVector(makeData({ ...base, type: new Float64(), data: float.subarray(0, length) }))
        case 'date':
          return makeVector(makeData({ ...base, type: new DateDay(), data: int.subarray(0, length) }))
        default:
          return makeVector(makeData({ ...base, type: new Int32(), data: int.subarray(0, length) }))
      }
    },
  }
}

/** A text column's first byte buffer; it doubles as it fills. */
const TEXT_BYTES_START = 64 * 1024

/** Cells shorter than this are copied byte by byte rather than through a subarray view. */
const SHORT_CELL_BYTES = 64

/** One Utf8 column of a page: UTF-8 bytes appended as read (never decoded), offsets and validity. */
export function textColumn(capacity: number) {
  const offsets = new Int32Array(capacity + 1)
  const valid = new Uint8Array(bitmapBytes(capacity))
  let nullCount = 0
  let bytes = new Uint8Array(TEXT_BYTES_START)
  let size = 0
  const room = (n: number): void => {
    if (size + n <= bytes.length) return
    const grown = new Uint8Array(Math.max(bytes.length * 2, size + n))
    grown.set(bytes.subarray(0, size))
    bytes = grown
  }
  return {
    /** Row `i` is `len` bytes of `from` at `at`. */
    set(i: number, from: Uint8Array, at: number, len: number): void {
      valid[i >> 3] = (valid[i >> 3] ?? 0) | (1 << (i & 7))
      room(len)
      // a loop for the usual short cell: a view per cell costs more than copying a few dozen bytes
      if (len < SHORT_CELL_BYTES) for (let k = 0; k < len; k++) bytes[size + k] = from[at + k] ?? 0
      else bytes.set(from.subarray(at, at + len), size)
      size += len
      offsets[i + 1] = size
    },
    /** Row `i` is this string. */
    setString(i: number, s: string): void {
      valid[i >> 3] = (valid[i >> 3] ?? 0) | (1 << (i & 7))
      // at most 3 bytes per UTF-16 unit
      room(s.length * 3)
      size += encoder.encodeInto(s, bytes.subarray(size)).written
      offsets[i + 1] = size
    },
    setNull(i: number): void {
      nullCount += 1
      offsets[i + 1] = size
    },
    /** Whether row `a`'s text sorts after row `b`'s, comparing bytes (the order of ASCII text). */
    after(a: number, b: number): boolean {
      const a0 = offsets[a] ?? 0
      const a1 = offsets[a + 1] ?? 0
      const b0 = offsets[b] ?? 0
      const b1 = offsets[b + 1] ?? 0
      for (let k = 0; a0 + k < a1 && b0 + k < b1; k++) {
        const x = bytes[a0 + k] ?? 0
        const y = bytes[b0 + k] ?? 0
        if (x !== y) return x > y
      }
      return a1 - a0 > b1 - b0
    },
    text(i: number): string {
      return decoder.decode(bytes.subarray(offsets[i] ?? 0, offsets[i + 1] ?? 0))
    },
    vector(length: number): Vector {
      return makeVector(
        makeData({
          type: new Utf8(),
          length,
          nullCount,
          nullBitmap: valid.subarray(0, bitmapBytes(length)),
          valueOffsets: offsets.subarray(0, length + 1),
          data: bytes.subarray(0, size),
        }),
      )
    },
  }
}

/** A Bool column of a page without nulls (the `_deleted` flags): rows are false until set. */
export function flagColumn(capacity: number) {
  const bits = new Uint8Array(bitmapBytes(capacity))
  return {
    set(i: number): void {
      bits[i >> 3] = (bits[i >> 3] ?? 0) | (1 << (i & 7))
    },
    vector(length: number): Vector {
      return makeVector(
        makeData({ type: new Bool(), length, nullCount: 0, data: bits.subarray(0, bitmapBytes(length)) }),
      )
    },
  }
}
