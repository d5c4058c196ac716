import { fnv1a } from '../../shared/digest.ts'
import { EddyError } from '../../shared/errors.ts'

/**
 * Pull cursors are opaque to clients: base64url of `{"v": "<last version>", "t": "<tables hash>"}`.
 * The tables hash ties a cursor to the set of tables it was issued for, so reusing it with other
 * tables (which would skip their earlier changes) answers `bad_cursor` instead.
 */
function tablesHash(tables: readonly string[]): string {
  return fnv1a([...tables].sort().join(',')).toString(36)
}

function toBase64Url(text: string): string {
  return btoa(text).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

function fromBase64Url(text: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error('not base64url')
  return atob(text.replaceAll('-', '+').replaceAll('_', '/'))
}

export function encodeCursor(version: bigint, tables: readonly string[]): string {
  return toBase64Url(JSON.stringify({ v: version.toString(), t: tablesHash(tables) }))
}

/** The version a cursor stands for; `bad_cursor` when unreadable or issued for other tables. */
export function decodeCursor(cursor: string, tables: readonly string[]): bigint {
  let parsed: unknown
  try {
    parsed = JSON.parse(fromBase64Url(cursor))
  } catch {
    throw new EddyError('bad_cursor', 'the cursor is not one this server issued', { status: 400 })
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    !('v' in parsed) ||
    !('t' in parsed) ||
    typeof parsed.v !== 'string' ||
    !/^\d{1,19}$/.test(parsed.v)
  ) {
    throw new EddyError('bad_cursor', 'the cursor is not one this server issued', { status: 400 })
  }
  if (parsed.t !== tablesHash(tables))
    throw new EddyError('bad_cursor', 'the cursor was issued for other tables', { status: 400 })
  return BigInt(parsed.v)
}
