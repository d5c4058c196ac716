/**
 * `eddy/edge`: the sync service (`createSyncApp`, runs on Node and in workerd), the push algorithm,
 * auth, and the Node-side warehouse adapters. The Workers entry imports `./app.ts` directly, so a
 * Workers bundle never pulls in the native DuckDB binding.
 */

export { createSyncApp, type SyncAppOptions } from './app.ts'
export { applyBatch, type PushContext } from './apply-batch.ts'
export { type AuthOptions, type Caller, createVerifier, type Verifier } from './auth.ts'
export { decodeCursor, encodeCursor } from './cursor.ts'
export { type DuckDbWarehouseOptions, openDuckDbWarehouse } from './duckdb-warehouse.ts'
export { type NodeServer, type NodeServerOptions, startNodeServer } from './node.ts'
export { openPostgresWarehouse, type PostgresWarehouseOptions } from './postgres-warehouse.ts'
export { demoSeedRows, SEED_HLC, SEED_SIZES, seedDemo } from './seed.ts'
export { conflictInTenant, rowTenant } from './tenant.ts'
export type * from './warehouse.ts'
