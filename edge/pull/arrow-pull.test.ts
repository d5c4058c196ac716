import { describeArrowPull } from '../testing/arrow-pull-contract.ts'
import { openDuckDbWarehouse } from '../warehouse/duckdb/duckdb-warehouse.ts'

describeArrowPull('DuckDB', { open: (schema) => openDuckDbWarehouse({ schema }) })
