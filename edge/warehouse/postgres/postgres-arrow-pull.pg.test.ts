import postgres from 'postgres'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { must } from '../../../shared/errors.ts'
import { formatHlc } from '../../../shared/hlc.ts'
import { defineSchema } from '../../../shared/schema.ts'
import { scratchSchemas } from '../../../test/setup/scratch-schemas.ts'
import { columnsToArrow, pullColumnPage } from '../../pull/arrow-pull.ts'
import { describeArrowPull } from '../../testing/arrow-pull-contract.ts'
import type { Warehouse } from '../warehouse.ts'
import { openPostgresWarehouse } from './postgres-warehouse.ts'

const url = inject('pgUrl')
const scratch = scratchSchemas(url, 'a')
afterAll(() => scratch.dropAll())
const open = (
  schema: Parameters<typeof openPostgresWarehouse>[0]['schema'],
  searchPath = scratch.next(),
): Promise<Warehouse> => openPostgresWarehouse({ schema, url, searchPath })

describeArrowPull('PostgreSQL', { open })

describe('Arrow bulk pull from PostgreSQL, beyond the contract', () => {
  const schema = defineSchema({
    tables: {
      raw: {
        primaryKey: ['id'],
        columns: {
          id: { type: 'integer' },
          big: { type: 'bigint' },
          ratio: { type: 'double' },
          exact: { type: 'decimal(38,18)' },
          at: { type: 'timestamp' },
          day: { type: 'date' },
          doc: { type: 'json' },
          name: { type: 'text' },
        },
      },
    },
  })
  const table = schema.table('raw')

  // Another writer may store what Eddy's validators never produce: sub-millisecond and pre-1970
  // instants (floored to the millisecond), JSON in any spelling (read as Eddy would re-serialise
  // it; a JSON null is a null cell), doubles that JSON cannot carry, integer extremes.
  it('reads them exactly as the row path converts them, byte for byte', async () => {
    const searchPath = scratch.next()
    const w = await open(schema, searchPath)
    const sql = postgres(url, { onnotice: () => {}, connection: { search_path: searchPath } })
    try {
      await w.migrate()
      const hlc = formatHlc({ wall: Date.UTC(2026, 0, 1), counter: 0, node: 'other' })
      const rows: (string | null)[][] = [
        [
          '1',
          '-9223372036854775808',
          '-0',
          '-0.000000000000000001',
          '1969-12-31 23:59:59.9995+00',
          '0001-01-01',
          '{"b" : 1.50, "a":[1e2, "\\u00e9"], "b": 2}',
          'x',
        ],
        [
          '2',
          '9223372036854775807',
          'NaN',
          '99999999999999999999.999999999999999999',
          '2024-01-01 00:00:00.123999+00',
          '9999-12-31',
          'null',
          '',
        ],
        [
          '3',
          '9007199254740993',
          'Infinity',
          '0',
          '2024-06-30 23:59:59.999999+02',
          '1969-12-31',
          '  [ ]  ',
          'ü,n,1,',
        ],
        [
          '-2147483648',
          '-1',
          '-Infinity',
          '1.1',
          '0001-01-01 00:00:00+00',
          '1970-01-01',
          '"\\ud83d\\ude80"',
          '🚀',
        ],
        ['2147483647', null, '2.2250738585072014e-308', null, null, null, null, null],
        ...[
          '1969-12-31 23:59:59.000001+00',
          '9999-12-31 23:59:59.999999+00',
          '0001-01-01 00:00:00.0005+00',
          '0044-03-15 12:00:00.5+00 BC',
          '2024-10-27 02:30:00.250+01',
        ].map((at, i) => [String(10 + i), null, null, null, at, null, null, null]),
      ]
      // literals, not parameters: postgres.js would serialise a json parameter as JSON and a
      // timestamptz one through a JS Date (milliseconds), and these values must arrive as written
      const literal = (v: string | null): string => (v === null ? 'NULL' : `'${v.replaceAll("'", "''")}'`)
      for (const [i, v] of rows.entries()) {
        const [id, big, ratio, exact, at, day, doc, name] = v.map(literal)
        await sql.unsafe(
          `INSERT INTO raw (id, big, ratio, exact, at, day, doc, name, _hlc, _version)
           VALUES (${id}::int, ${big}::bigint, ${ratio}::float8, ${exact}::numeric, ${at}::timestamptz,
             ${day}::date, ${doc}::json, ${name}, ${literal(hlc)}, ${i + 1})`,
        )
      }
      // a tombstone written by hand keeps its stored values, which neither path sends
      await sql.unsafe(`UPDATE raw SET _deleted = true, _version = 100 WHERE id = 3`)
      const read = async (x: Warehouse): Promise<Uint8Array[]> => {
        const out: Uint8Array[] = []
        for (const limit of [2, 10]) {
          let after = 0n
          for (;;) {
            const page = await pullColumnPage(x, { table, afterVersion: after, limit })
            out.push(columnsToArrow(table, page.columns))
            if (!page.hasMore) break
            after = must(page.lastVersion, 'a page with more after it has a last version')
          }
        }
        return out
      }
      const { pullColumns: _, ...rowsOnly } = w
      const a = await read(w)
      const b = await read(rowsOnly)
      expect(a.length).toBe(6)
      expect(a.map((x) => Buffer.from(x).toString('hex'))).toEqual(
        b.map((x) => Buffer.from(x).toString('hex')),
      )
    } finally {
      await sql.end()
      await w.close()
    }
  })

  // PostgreSQL takes at most 100 arguments per function: a wide table's packed row is built in parts
  it('reads a table wider than a function call takes arguments', async () => {
    const columns: Record<string, { type: 'integer' | 'text' }> = { id: { type: 'integer' } }
    for (let i = 0; i < 110; i++) columns[`c${i}`] = { type: i % 3 === 0 ? 'integer' : 'text' }
    const wideSchema = defineSchema({ tables: { wide: { primaryKey: ['id'], columns } } })
    const wide = wideSchema.table('wide')
    const w = await open(wideSchema)
    try {
      await w.migrate()
      const hlc = formatHlc({ wall: Date.UTC(2026, 0, 1), counter: 0, node: 'wide' })
      await w.write((tx) =>
        tx.writeRows(
          wide,
          Array.from({ length: 5 }, (_, r) => {
            const values: Record<string, number | string | null> = { id: r }
            for (let i = 0; i < 110; i++)
              values[`c${i}`] = (i + r) % 7 === 0 ? null : i % 3 === 0 ? i * r : `r${r} c${i} ✓`
            return { key: { id: r }, row: { values, hlc, deleted: false }, clientId: 'wide' }
          }),
        ),
      )
      const req = { table: wide, afterVersion: 0n, limit: 10 }
      const a = await pullColumnPage(w, req)
      const { pullColumns: _, ...rowsOnly } = w
      const b = await pullColumnPage(rowsOnly, req)
      expect(a.columns.values.get('c109')?.length).toBe(5)
      expect(
        Buffer.from(columnsToArrow(wide, a.columns)).equals(Buffer.from(columnsToArrow(wide, b.columns))),
      ).toBe(true)
    } finally {
      await w.close()
    }
  })

  // A database in another encoding sends its text converted to UTF-8: the lengths the reader is
  // given must count the converted bytes.
  it('reads a LATIN1 database as its UTF-8 text', async () => {
    const admin = postgres(url, { onnotice: () => {} })
    const db = `eddy_${scratch.run}_latin1`
    const latin1 = new URL(url)
    latin1.pathname = `/${db}`
    try {
      await admin.unsafe(
        `CREATE DATABASE "${db}" ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`,
      )
      const w = await openPostgresWarehouse({ schema, url: latin1.toString() })
      try {
        await w.migrate()
        const hlc = formatHlc({ wall: Date.UTC(2026, 0, 1), counter: 0, node: 'latin1' })
        await w.write((tx) =>
          tx.writeRows(
            table,
            ['café', 'Müller £5 ×', '', null, 'ascii'].map((name, id) => ({
              key: { id },
              row: { values: { id, name, doc: name === null ? null : { name } }, hlc, deleted: false },
              clientId: 'latin1',
            })),
          ),
        )
        const req = { table, afterVersion: 0n, limit: 10 }
        const a = await pullColumnPage(w, req)
        const { pullColumns: _, ...rowsOnly } = w
        const b = await pullColumnPage(rowsOnly, req)
        expect(a.columns.values.get('name')?.length).toBe(5)
        expect(
          Buffer.from(columnsToArrow(table, a.columns)).equals(Buffer.from(columnsToArrow(table, b.columns))),
        ).toBe(true)
      } finally {
        await w.close()
      }
    } finally {
      await admin.unsafe(`DROP DATABASE IF EXISTS "${db}"`)
      await admin.end()
    }
  })
})
