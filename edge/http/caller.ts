/** The verified caller of a request, as the routes see it: its tenant scope and its admin role. */
import type { Context } from 'hono'
import type { Caller } from './auth.ts'
import { fail } from './errors.ts'

/** The app's Hono environment: the caller the auth middleware verified (undefined without auth). */
export type AppEnv = { Variables: { caller: Caller | undefined } }

/** What a route answers a request with. */
export type Route = (c: Context<AppEnv>) => Promise<Response>

/**
 * The caller's tenant scope: undefined means unscoped (no auth, or an admin without a tenant
 * claim); null means a caller without a tenant, who may not touch tenant-scoped tables at all.
 */
export function scopeOf(c: Context<AppEnv>): string | null | undefined {
  const caller = c.get('caller')
  if (caller === undefined) return undefined
  return caller.tenant ?? (caller.admin ? undefined : null)
}

/** A scope as a tenant to filter by: undefined unless it names one. */
export function tenantOnly(scope: string | null | undefined): string | undefined {
  return typeof scope === 'string' ? scope : undefined
}

/** 403 unless the caller is an admin; with auth off (`authOn` false) every caller is. */
export function requireAdmin(c: Context<AppEnv>, authOn: boolean): void {
  const caller = c.get('caller')
  if (authOn && caller?.admin !== true) throw fail('forbidden', 'this route needs the admin role')
}
