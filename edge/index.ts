/** `eddy/edge`: the sync service and its warehouse adapters. */

export { createSyncApp, type SyncAppOptions } from './app.ts'
export { applyBatch, type PushContext } from './apply-batch.ts'
export { type AuthOptions, type Caller, createVerifier, type Verifier } from './auth.ts'
export { type DuckDbWarehouseOptions, openDuckDbWarehouse } from './duckdb-warehouse.ts'
export type * from './warehouse.ts'
