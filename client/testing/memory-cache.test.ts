import { describe, it } from 'vitest'
import { CACHE_CONTRACT } from './cache-contract.ts'
import { MemoryCache } from './memory-cache.ts'

describe('MemoryCache keeps the LocalCache contract', () => {
  for (const c of CACHE_CONTRACT) it(c.name, () => c.run(async () => new MemoryCache()))
})
