import { describeArrowPull } from './arrow-pull-contract.ts'
import { openDuckDbWarehouse } from './duckdb-warehouse.ts'

describeArrowPull('DuckDB', { open: (schema) => openDuckDbWarehouse({ schema }) })
