import postgres from 'postgres'

/**
 * Fresh PostgreSQL schemas for the stores of one test file, each store its own schema, so a run
 * against a server given by EDDY_PG_URL never touches other data; `dropAll` leaves it as found.
 */
export function scratchSchemas(url: string, tag: string) {
  const run = `${tag}${Date.now().toString(36)}`
  const made: string[] = []
  return {
    /** What names this run's other scratch objects (a database, say). */
    run,
    /** A new schema name (numbered, or with the given suffix), dropped by `dropAll`. */
    next(suffix?: string): string {
      const name = `eddy_${run}_${suffix ?? made.length + 1}`
      made.push(name)
      return name
    },
    async dropAll(): Promise<void> {
      const sql = postgres(url, { onnotice: () => {} })
      try {
        for (const name of made) await sql.unsafe(`DROP SCHEMA IF EXISTS "${name}" CASCADE`)
      } finally {
        await sql.end()
      }
    },
  }
}
