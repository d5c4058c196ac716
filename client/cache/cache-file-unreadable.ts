/**
 * Whether an error from opening the OPFS cache file says the FILE is unreadable (its bytes, not the
 * browser or DuckDB around it): then the file may be set aside and a fresh one opened
 * (`persistence.ts`), since nothing in it is lost for good (pending writes are in the outbox,
 * everything else is pulled again). Anything else (another context holding the access handle, a
 * quota error, DuckDB failing to start, an unknown message) answers false: when in doubt, keep it.
 *
 * DuckDB-WASM reports a failed open as `Opening the database failed with error: {"exception_type":
 * "IO","exception_message":"…"}`; older builds give the bare `IO Error: …` text. The markers are
 * DuckDB's own wording for a file it cannot load, as compiled into the DuckDB-WASM build Eddy ships
 * (1.32: read from the strings of `duckdb-eh.wasm`), matched on the exception's message.
 */
export function isUnreadableCacheFile(error: unknown): boolean {
  const text = errorText(error)
  if (text === undefined) return false
  if (NOT_THE_FILE.some((m) => m.test(text))) return false
  const { type, message } = duckDbException(text)
  if (UNREADABLE.some((m) => m.test(message))) return true
  // A catalog or deserialization error while DuckDB loads the file (no SQL of Eddy's runs during
  // the open) is the file's content disagreeing with itself.
  return type === 'Catalog' || type === 'Serialization'
}

/** Errors about the environment, never the file's content, even if a marker below also matches. */
const NOT_THE_FILE: readonly RegExp[] = [
  // OPFS: another context (tab, worker) holds the file's sync access handle or a writable stream
  /Access Handles? cannot be created/i,
  /NoModificationAllowedError/,
  /createSyncAccessHandle/,
  /\block(ed)?\b/i,
  /quota/i,
  /out of memory|memory limit|Out of Memory Error/i,
]

/** DuckDB's messages for a database or WAL file it cannot read. */
const UNREADABLE: readonly RegExp[] = [
  // a WAL that does not replay over its database (seen: `Table with name … already exists!`)
  /Failure while replaying WAL file/,
  /WAL does not match database file/,
  /This WAL was created for this database file, but the WAL checkpoint iteration does not match/,
  /Corrupt (Encrypted )?WAL( file)?:/,
  // not a DuckDB file at all (a garbage or zeroed header)
  /is not a valid DuckDB database file/,
  // a storage format this DuckDB cannot read (an upgrade or a downgrade)
  /Trying to read a database file with version number/,
  /file was written with a storage version greater than the latest version supported/,
  /Cannot read database file: DuckDB's compiled vector size/,
  // damaged or truncated content
  /Corrupt database file/i,
  /Corrupted database - /,
  /Could not read enough bytes from file/,
  /Corrupt(ed)? file\?/,
]

function errorText(error: unknown): string | undefined {
  if (typeof error === 'string') return error
  if (error instanceof Error) return error.message
  if (typeof error === 'object' && error !== null && 'message' in error) {
    const m = (error as { message: unknown }).message
    if (typeof m === 'string') return m
  }
  return undefined
}

/** The exception DuckDB-WASM wraps as JSON in its open error, or the bare text with its `X Error:` type. */
function duckDbException(text: string): { type: string | undefined; message: string } {
  const start = text.indexOf('{"exception_type"')
  if (start >= 0) {
    try {
      const parsed = JSON.parse(text.slice(start)) as {
        exception_type?: unknown
        exception_message?: unknown
      }
      if (typeof parsed.exception_message === 'string')
        return {
          type: typeof parsed.exception_type === 'string' ? parsed.exception_type : undefined,
          message: parsed.exception_message,
        }
    } catch {
      // not the JSON form after all: classify the whole text
    }
  }
  const bare = /^(\w+) Error: /.exec(text)
  return { type: bare?.[1], message: text }
}
