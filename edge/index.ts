/**
 * `eddy/edge`: the sync service (`createSyncApp`, runs on Node and in workerd), the push algorithm,
 * auth, and the Node-side warehouse adapters. The Workers runtime is its own entry,
 * `eddy/edge/worker` (`./runtime/worker.ts`, `createWorker`), so a Workers bundle never pulls in the
 * native DuckDB binding.
 */

export { conflictInTenant, rowTenant } from './conflicts/tenant.ts'
export { createSyncApp, type SyncAppOptions } from './http/app.ts'
export { type AuthOptions, type Caller, createVerifier, type Verifier } from './http/auth.ts'
export { decodeCursor, encodeCursor } from './pull/cursor.ts'
export { applyBatch } from './push/apply-batch.ts'
export type { PushContext, PushTuning } from './push/check-push.ts'
export { type NodeServer, type NodeServerOptions, startNodeServer } from './runtime/node.ts'
export { type DuckDbWarehouseOptions, openDuckDbWarehouse } from './warehouse/duckdb/duckdb-warehouse.ts'
export {
  openPostgresWarehouse,
  type PostgresWarehouseOptions,
} from './warehouse/postgres/postgres-warehouse.ts'
export type * from './warehouse/warehouse.ts'
