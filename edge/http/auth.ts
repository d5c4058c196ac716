import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose'
import { EddyError } from '../../shared/errors.ts'

/**
 * Bearer-token auth for the edge. Configure an HS256 shared secret, or a JWKS (a URL, or a key-set
 * function such as jose's `createLocalJWKSet`) for asymmetric keys. Tokens must be signed with an
 * allowed algorithm (never `none`), unexpired, and valid for `issuer`/`audience` when those are set.
 */
export interface AuthOptions {
  /** HS256 shared secret (e.g. `EDDY_JWT_SECRET`). */
  readonly secret?: string | undefined
  /** JWKS endpoint for RS256/ES256/EdDSA tokens. */
  readonly jwksUrl?: string | URL | undefined
  /** A key-set function instead of a URL (tests, or keys held locally). */
  readonly jwks?: JWTVerifyGetKey | undefined
  readonly issuer?: string | undefined
  readonly audience?: string | undefined
}

/** Who is calling, from a verified token. */
export interface Caller {
  /** The token's `sub`: owns every clientId it pushes. */
  readonly subject: string
  /** The token's `tenant` claim: scopes tables that declare a tenant column. */
  readonly tenant: string | undefined
  /** `role: "admin"` or `roles` containing `"admin"`: may read events and resolve conflicts. */
  readonly admin: boolean
}

export type Verifier = (authorization: string | undefined) => Promise<Caller>

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']

function unauthorized(message: string): EddyError {
  return new EddyError('unauthorized', message, { status: 401 })
}

function callerOf(payload: JWTPayload): Caller {
  if (typeof payload.sub !== 'string' || payload.sub === '') throw unauthorized('the token has no subject')
  const tenant = payload.tenant
  if (tenant !== undefined && typeof tenant !== 'string' && typeof tenant !== 'number')
    throw unauthorized('the tenant claim must be a string')
  const roles = Array.isArray(payload.roles) ? payload.roles : []
  return {
    subject: payload.sub,
    tenant: tenant === undefined ? undefined : String(tenant),
    admin: payload.role === 'admin' || roles.includes('admin'),
  }
}

/** The shortest HS256 secret accepted: a shorter one is guessable offline from any token. */
const MIN_SECRET_LENGTH = 16

/** Builds the verifier once; a bad configuration throws here, not per request. */
export function createVerifier(opts: AuthOptions): Verifier {
  const sources = [opts.secret, opts.jwksUrl, opts.jwks].filter((s) => s !== undefined).length
  if (sources !== 1)
    throw new EddyError('invalid_config', 'auth needs exactly one of secret, jwksUrl or jwks')
  if (opts.secret !== undefined && opts.secret.length < MIN_SECRET_LENGTH)
    throw new EddyError('invalid_config', `an HS256 secret must be at least ${MIN_SECRET_LENGTH} characters`)
  const verifyOpts = {
    ...(opts.issuer === undefined ? {} : { issuer: opts.issuer }),
    ...(opts.audience === undefined ? {} : { audience: opts.audience }),
  }
  const secret = opts.secret === undefined ? undefined : new TextEncoder().encode(opts.secret)
  const keys =
    opts.jwks ?? (opts.jwksUrl === undefined ? undefined : createRemoteJWKSet(new URL(String(opts.jwksUrl))))
  return async (authorization) => {
    const m = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)\s*$/i.exec(authorization ?? '')
    const token = m?.[1]
    if (token === undefined) throw unauthorized('a bearer token is required')
    try {
      const { payload } =
        secret !== undefined
          ? await jwtVerify(token, secret, { ...verifyOpts, algorithms: ['HS256'] })
          : await jwtVerify(token, keys ?? secretMissing(), { ...verifyOpts, algorithms: ASYMMETRIC })
      return callerOf(payload)
    } catch (e) {
      if (e instanceof EddyError) throw e
      throw unauthorized('the token is not valid')
    }
  }
}

function secretMissing(): never {
  throw new EddyError('invalid_config', 'no key source configured')
}
