import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { afterAll } from 'vitest'
import { describeWarehouse } from '../../testing/warehouse-contract.ts'
import type { Warehouse } from '../warehouse.ts'
import { openDuckDbWarehouse } from './duckdb-warehouse.ts'

const dir = mkdtempSync(join(tmpdir(), 'eddy-duckdb-contract-'))
const paths = new WeakMap<Warehouse, string>()
let n = 0

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describeWarehouse('duckdb', {
  async open(schema) {
    n += 1
    const path = join(dir, `w${n}.duckdb`)
    const w = await openDuckDbWarehouse({ schema, path })
    paths.set(w, path)
    return w
  },
  async reopen(previous, schema, sql = []) {
    const path = paths.get(previous)
    if (path === undefined) throw new Error('not opened by this target')
    await previous.close()
    if (sql.length > 0) {
      const instance = await DuckDBInstance.create(path)
      const conn = await instance.connect()
      for (const s of sql) await conn.run(s)
      conn.closeSync()
      instance.closeSync()
    }
    const w = await openDuckDbWarehouse({ schema, path })
    paths.set(w, path)
    return w
  },
})
