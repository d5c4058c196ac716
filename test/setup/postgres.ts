import { execFile } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface RunningPostgres {
  /** `postgres://…` of a fresh, empty database. */
  readonly url: string
  /** Stops the server and removes its folder (a no-op for a server given by `EDDY_PG_URL`). */
  stop(): Promise<void>
  /** Stops the server but keeps its data, to simulate an outage (own servers only). */
  halt(): Promise<void>
  /** Starts a halted server again on the same port. */
  resume(): Promise<void>
}

/** A free loopback port: the kernel picks one, and we release it for the server to take. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

/** Whether Debian's PostgreSQL server is installed here (so a test may start its own). */
export function hasLocalPostgres(): boolean {
  try {
    binDir()
    return true
  } catch {
    return false
  }
}

/** The newest installed Debian PostgreSQL's bin folder. */
function binDir(): string {
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : []
  const v = versions[0]
  if (v === undefined)
    throw new Error('PostgreSQL is not installed (apt-get install postgresql), and EDDY_PG_URL is not set')
  return join(root, v, 'bin')
}

/**
 * A throwaway PostgreSQL server for tests: Debian's `initdb` + `pg_ctl` in a fresh temp folder, on a
 * free loopback port, as the `postgres` user when we are root (the server refuses to run as root).
 * With `EDDY_PG_URL` set, that server is used instead and nothing is started.
 */
export async function startPostgres(opts: { ownServer?: boolean } = {}): Promise<RunningPostgres> {
  const given = process.env.EDDY_PG_URL
  if (given !== undefined && given !== '' && opts.ownServer !== true) {
    const cannot = async (): Promise<void> => {
      throw new Error('a server given by EDDY_PG_URL cannot be halted')
    }
    return { url: given, stop: async () => {}, halt: cannot, resume: cannot }
  }
  const bin = binDir()
  const asRoot = process.getuid?.() === 0
  const dir = mkdtempSync(join(tmpdir(), 'eddy-pg-'))
  const data = join(dir, 'data')
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres'])
    const { stdout: gid } = await run('id', ['-g', 'postgres'])
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()))
  }
  chmodSync(dir, 0o700)
  const pg = (tool: string, args: string[]): Promise<{ stdout: string; stderr: string }> =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args], { cwd: dir })
      : run(join(bin, tool), args, { cwd: dir })
  await pg('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'])
  const port = await freePort()
  // fsync=off: fast, and still safe when only the server process dies (the outage test kills it)
  const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off`
  const start = async (): Promise<void> => {
    await pg('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start'])
  }
  await start()
  const stop = async (): Promise<void> => {
    try {
      await pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  try {
    await pg('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'eddy'])
  } catch (e) {
    await stop()
    throw e
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/eddy`,
    stop,
    halt: async () => {
      await pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
    },
    resume: start,
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string
  }
}

/** vitest globalSetup for the integration project: one server for the run, its URL as `inject('pgUrl')`. */
export default async function setup(project: {
  provide: (key: 'pgUrl', value: string) => void
}): Promise<() => Promise<void>> {
  const pg = await startPostgres()
  project.provide('pgUrl', pg.url)
  return () => pg.stop()
}
