import * as v from 'valibot'
import { EddyError, isErrorCode } from '../../shared/errors.ts'
import {
  type DigestBody,
  digestResponse,
  errorBody,
  type PullResponse,
  type PushBody,
  type PushResponse,
  pullResponse,
  pushResponse,
} from '../../shared/protocol.ts'

/**
 * HTTP to the edge (PROTOCOL.md). Every failure is an `EddyError`:
 * - `offline`: the request never got an answer (network down, DNS, connection refused, aborted);
 * - the envelope's own code (`bad_request`, `unauthorized`, `too_large`, ...) with `status` for 4xx/5xx;
 * - `protocol`: a 2xx answer that does not match the wire schema.
 * `retryable(e)` tells the sync loop which of them a later attempt may fix.
 */
export interface Transport {
  push(body: PushBody): Promise<PushResponse>
  pull(q: { tables: readonly string[]; cursor: string | undefined; limit?: number }): Promise<PullResponse>
  digest(body: DigestBody): Promise<v.InferOutput<typeof digestResponse>>
  /**
   * The Arrow bulk form of pull (docs/protocol.md, notes): one table's changes as Arrow IPC, for
   * first loads. With `resume`, the answer carries a JSON-pull cursor for those tables (when the
   * edge's warehouse reports a high-water mark).
   */
  pullArrow(q: {
    table: string
    cursor: string | undefined
    limit?: number
    resume?: readonly string[]
  }): Promise<ArrowPage>
}

/** One page of an Arrow bulk pull. */
export interface ArrowPage {
  readonly ipc: Uint8Array
  readonly cursor: string
  readonly hasMore: boolean
  readonly resumeCursor: string | undefined
  /** Rows in the page, and the greatest stamp among them (absent when empty). */
  readonly rows: number
  readonly maxHlc: string | undefined
}

export const ARROW_STREAM = 'application/vnd.apache.arrow.stream'

export interface TransportOptions {
  url: string
  fetch: typeof fetch
  token?: (() => Promise<string | undefined>) | undefined
  /** Aborts every request in flight and every later one (the engine closes). */
  signal?: AbortSignal | undefined
}

/** Network failures and server-side (5xx) errors are worth retrying; 4xx are not, until something changes. */
export function retryable(e: unknown): boolean {
  if (!(e instanceof EddyError)) return false
  if (e.code === 'offline' || e.code === 'timeout') return true
  return e.status !== undefined && e.status >= 500
}

export function createTransport({ url, fetch: doFetch, token, signal }: TransportOptions): Transport {
  const base = url.replace(/\/+$/, '')

  async function send(path: string, init: RequestInit, accept: string): Promise<Response> {
    const headers = new Headers(init.headers)
    headers.set('accept', accept)
    const bearer = token === undefined ? undefined : await token()
    if (bearer !== undefined) headers.set('authorization', `Bearer ${bearer}`)
    try {
      return await doFetch(`${base}${path}`, {
        ...init,
        headers,
        ...(signal === undefined ? {} : { signal }),
      })
    } catch (cause) {
      if (signal?.aborted === true) throw new EddyError('closed', 'the engine was closed', { cause })
      throw new EddyError('offline', `cannot reach ${base}: ${String(cause)}`, { cause })
    }
  }

  /** The error an unsuccessful answer stands for (its envelope's code when it has one). */
  function failure(res: Response, json: unknown): EddyError {
    const env = v.safeParse(errorBody, json)
    const code = env.success && isErrorCode(env.output.error.code) ? env.output.error.code : undefined
    const message = env.success ? env.output.error.message : `HTTP ${res.status}`
    return new EddyError(code ?? (res.status >= 500 ? 'warehouse_unavailable' : 'bad_request'), message, {
      status: res.status,
      ...(env.success && env.output.error.field !== undefined ? { field: env.output.error.field } : {}),
    })
  }

  async function call<S extends v.GenericSchema>(
    schema: S,
    path: string,
    init: RequestInit,
  ): Promise<v.InferOutput<S>> {
    const res = await send(path, init, 'application/json')
    let json: unknown
    try {
      json = await res.json()
    } catch (cause) {
      if (res.ok)
        throw new EddyError('protocol', `${path}: answer is not JSON`, { cause, status: res.status })
      json = undefined
    }
    if (!res.ok) throw failure(res, json)
    const parsed = v.safeParse(schema, json)
    if (!parsed.success) {
      throw new EddyError('protocol', `${path}: unexpected answer: ${v.summarize(parsed.issues)}`, {
        status: res.status,
      })
    }
    return parsed.output
  }

  const post = (body: unknown): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify(body),
  })

  return {
    push: (body) => call(pushResponse, '/push', post(body)),
    pull({ tables, cursor, limit }) {
      const q = new URLSearchParams({ tables: tables.join(',') })
      if (cursor !== undefined) q.set('cursor', cursor)
      if (limit !== undefined) q.set('limit', String(limit))
      return call(pullResponse, `/pull?${q}`, { method: 'GET' })
    },
    digest: (body) => call(digestResponse, '/digest', post(body)),
    async pullArrow({ table, cursor, limit, resume }) {
      const q = new URLSearchParams({ tables: table })
      if (cursor !== undefined) q.set('cursor', cursor)
      if (limit !== undefined) q.set('limit', String(limit))
      if (resume !== undefined) q.set('resume', resume.join(','))
      const path = `/pull?${q}`
      const res = await send(path, { method: 'GET' }, ARROW_STREAM)
      if (!res.ok) throw failure(res, await res.json().catch(() => undefined))
      const type = res.headers.get('content-type') ?? ''
      const next = res.headers.get('eddy-cursor')
      const more = res.headers.get('eddy-has-more')
      if (
        !type.toLowerCase().startsWith(ARROW_STREAM) ||
        next === null ||
        (more !== 'true' && more !== 'false')
      )
        throw new EddyError('protocol', `${path}: not an Arrow pull answer`, { status: res.status })
      let ipc: Uint8Array
      try {
        ipc = new Uint8Array(await res.arrayBuffer())
      } catch (cause) {
        if (signal?.aborted === true) throw new EddyError('closed', 'the engine was closed', { cause })
        throw new EddyError('offline', `${path}: the answer was cut short`, { cause })
      }
      return {
        ipc,
        cursor: next,
        hasMore: more === 'true',
        resumeCursor: res.headers.get('eddy-resume-cursor') ?? undefined,
        rows: Number(res.headers.get('eddy-rows') ?? 0),
        maxHlc: res.headers.get('eddy-max-hlc') ?? undefined,
      }
    },
  }
}
