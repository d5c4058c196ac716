import { execFile } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from '../setup/postgres.ts'

const run = promisify(execFile)

/**
 * A PostgreSQL server of the chaos suite's own (the integration suite's shared server must not be
 * restarted under other tests): Debian's binaries in a temp folder on a free loopback port, as the
 * `postgres` user when we are root. `crash()` is `pg_ctl stop -m immediate` (no checkpoint, like a
 * power cut: recovery replays the WAL on start), `start()` brings it back on the same port.
 */
export interface ChaosPostgres {
  readonly url: string
  crash(): Promise<void>
  start(): Promise<void>
  /** Stops the server for good and removes its folder. */
  destroy(): Promise<void>
}

function binDir(): string {
  const root = '/usr/lib/postgresql'
  const v = existsSync(root)
    ? readdirSync(root)
        .filter((x) => existsSync(join(root, x, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))[0]
    : undefined
  if (v === undefined) throw new Error('PostgreSQL is not installed (apt-get install postgresql)')
  return join(root, v, 'bin')
}

export async function startChaosPostgres(): Promise<ChaosPostgres> {
  const bin = binDir()
  const asRoot = process.getuid?.() === 0
  const dir = mkdtempSync(join(tmpdir(), 'eddy-chaos-pg-'))
  const data = join(dir, 'data')
  if (asRoot) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim())
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim())
    chownSync(dir, uid, gid)
  }
  chmodSync(dir, 0o700)
  const pg = (tool: string, args: string[]) =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args], { cwd: dir })
      : run(join(bin, tool), args, { cwd: dir })
  await pg('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'])
  const port = await freePort()
  // fsync stays on: a crash must not lose what PostgreSQL acknowledged as committed.
  const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir}`
  const start = async (): Promise<void> => {
    await pg('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start'])
  }
  const crash = async (): Promise<void> => {
    await pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])
  }
  await start()
  await pg('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'eddy'])
  return {
    url: `postgres://postgres@127.0.0.1:${port}/eddy`,
    crash,
    start,
    async destroy() {
      try {
        await crash()
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
