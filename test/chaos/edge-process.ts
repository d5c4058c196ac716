import { type ChildProcess, spawn } from 'node:child_process'
import { resolve } from 'node:path'

/**
 * The real Node entry (`demo/server.ts`, what `npm start` runs) as a child process on a DuckDB file,
 * on a free loopback port. `kill()` is SIGKILL: no shutdown hook runs, whatever push is in flight
 * dies with the process, and the next start recovers the file from DuckDB's WAL.
 */
export interface EdgeProcess {
  /** `http://127.0.0.1:PORT` of the running process. */
  readonly url: string
  readonly pid: number
  /** Settles when the process exits, for whatever reason, with its stderr tail. */
  readonly exited: Promise<string>
  kill(): Promise<void>
  /** SIGTERM: the entry closes the server, then the warehouse. */
  stop(): Promise<void>
}

const ROOT = resolve(import.meta.dirname, '../..')

/** On a DuckDB file (`{ duckdb: path }`) or a PostgreSQL database (`{ postgres: url }`). */
export function spawnEdge(store: { duckdb: string } | { postgres: string }): Promise<EdgeProcess> {
  // `node --import tsx` rather than the tsx CLI: one process, so a signal reaches the edge itself.
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'demo/server.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      EDDY_DUCKDB_PATH: 'duckdb' in store ? store.duckdb : '',
      EDDY_PG_URL: 'postgres' in store ? store.postgres : '',
      EDDY_SEED: 'off',
      EDDY_JWT_SECRET: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let log = ''
  const exited = new Promise<string>((r) => child.once('exit', () => r(log.slice(-2000))))
  return new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`edge did not start within 60 s:\n${log}`))
    }, 60_000)
    const onData = (chunk: Buffer): void => {
      log += chunk.toString()
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log)
      if (m?.[1] === undefined) return
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.stdout?.resume()
      const url = m[1]
      resolveStart({
        url,
        pid: child.pid ?? -1,
        exited,
        async kill() {
          child.kill('SIGKILL')
          await exited
        },
        async stop() {
          child.kill('SIGTERM')
          await exited
        },
      })
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (c: Buffer) => {
      log = (log + c.toString()).slice(-20_000)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`edge exited (${code}) before listening:\n${log}`))
    })
  })
}
