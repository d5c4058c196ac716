import { describe, expect, it } from 'vitest'
import { isUnreadableCacheFile } from './cache-file-unreadable.ts'

/**
 * The classifier over real message texts: DuckDB-WASM 1.32's open error in Chromium (its JSON form),
 * native DuckDB's bare form for the same conditions, the messages compiled into `duckdb-eh.wasm`
 * with their placeholders filled, and Chromium's own OPFS and quota errors.
 */
const wasm = (type: string, message: string): Error =>
  new Error(
    `Opening the database failed with error: ${JSON.stringify({ exception_type: type, exception_message: message })}`,
  )

describe('isUnreadableCacheFile', () => {
  it.each([
    // Chromium, a cache file overwritten with 64 KB of 0x5a (test/browser/cache-reset.test.ts)
    [
      'garbage, as DuckDB-WASM reports it',
      new Error(
        'Opening the database failed with error: {"exception_type":"IO","exception_message":"The file \\"opfs://resetmwxzmqw3.duckdb\\" exists, but it is not a valid DuckDB database file!"}',
      ),
    ],
    // this machine's bench (docs/benchmarks.md, Findings); native DuckDB gives the same words
    [
      'a WAL that does not replay',
      wasm(
        'Catalog',
        'Failure while replaying WAL file "opfs://eddy-bench.duckdb.wal": Table with name "_eddy_customers" already exists!',
      ),
    ],
    [
      'the bare form of a WAL replay failure',
      'Catalog Error: Failure while replaying WAL file "/tmp/w.duckdb.wal": Table with name "t" already exists!',
    ],
    [
      'a damaged header',
      'IO Error: Corrupt database file: computed checksum 6232515787358809492 does not match stored checksum 1121236334087318932 in block at location 0',
    ],
    [
      'an older or newer storage version',
      wasm(
        'IO',
        'Trying to read a database file with version number 39, but we can only read versions between 64 and 67.\nThe database file was created with DuckDB version v0.9.2.',
      ),
    ],
    [
      'a file from a newer DuckDB',
      wasm(
        'IO',
        'Error opening "opfs://eddy.duckdb": file was written with a storage version greater than the latest version supported by this DuckDB instance. Try opening the file with a newer version of DuckDB.',
      ),
    ],
    [
      'a truncated file',
      wasm(
        'IO',
        'Could not read enough bytes from file "opfs://eddy.duckdb": attempted to read 262144 bytes from location 8654848',
      ),
    ],
    ['a WAL of another file', wasm('IO', 'WAL does not match database file.')],
    [
      'a corrupt WAL entry',
      wasm(
        'IO',
        'Corrupt WAL file: entry at byte position 4096 computed checksum 1 does not match stored checksum 2',
      ),
    ],
    [
      'any catalog error while loading the file',
      wasm('Catalog', 'Table with name "_eddy_orders" already exists!'),
    ],
  ])('deletes for %s', (_, error) => {
    expect(isUnreadableCacheFile(error)).toBe(true)
  })

  it.each([
    // another tab's worker holds the file (Chromium's message, wrapped by DuckDB-WASM's prepareFileHandles)
    [
      'an access-handle conflict',
      new Error(
        "Failed to execute 'createSyncAccessHandle' on 'FileSystemFileHandle': Access Handles cannot be created if there is another open Access Handle or Writable stream associated with the same file.:eddy",
      ),
    ],
    [
      'the same conflict inside an open error',
      wasm(
        'IO',
        'Could not open file "opfs://eddy.duckdb.wal": NoModificationAllowedError: Access Handles cannot be created if there is another open Access Handle or Writable stream associated with the same file.',
      ),
    ],
    ['a file lock', wasm('IO', 'Could not set lock on file "opfs://eddy.duckdb": Conflicting lock is held')],
    [
      'a quota error',
      wasm(
        'IO',
        'Could not write file "opfs://eddy.duckdb.wal": QuotaExceededError: The operation failed because it would cause the application to exceed its storage quota.',
      ),
    ],
    // the environment's error wins over a marker: a replay that failed for want of space
    [
      'a quota error while the WAL replays',
      wasm(
        'IO',
        'Failure while replaying WAL file "opfs://eddy.duckdb.wal": Could not write file "opfs://eddy.duckdb": QuotaExceededError: The operation failed because it would cause the application to exceed its storage quota.',
      ),
    ],
    [
      'DuckDB failing to start',
      new Error('WebAssembly.instantiate(): Out of memory: Cannot allocate Wasm memory'),
    ],
    ['a failed fetch of the wasm', new TypeError('Failed to fetch')],
    ['an unknown IO error', wasm('IO', 'Could not read from file "opfs://eddy.duckdb": Input/output error')],
    ['an internal error', wasm('INTERNAL', 'Attempted to access index 3 within vector of size 3')],
    ['no message at all', undefined],
  ])('keeps the file for %s', (_, error) => {
    expect(isUnreadableCacheFile(error)).toBe(false)
  })
})
