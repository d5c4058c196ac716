/** Reading a request's JSON body: its media type, its size limit, UTF-8, JSON, then a wire schema. */
import type { Context } from 'hono'
import * as v from 'valibot'
import { fail } from './errors.ts'

/** Reads a JSON body: 415 unless JSON, 413 past `maxBytes` (counted before parsing), 400 if malformed. */
export async function readJson(c: Context, maxBytes: number): Promise<unknown> {
  const type = c.req.header('content-type') ?? ''
  if (!/^application\/json\s*(;|$)/i.test(type))
    throw fail('unsupported_media_type', 'the body must be application/json')
  const declared = Number(c.req.header('content-length') ?? Number.NaN)
  if (Number.isFinite(declared) && declared > maxBytes)
    throw fail('too_large', `the body is larger than ${maxBytes} bytes`)
  if (Number.isFinite(declared)) {
    // A declared length within the limit bounds what the server reads, so the body is taken whole:
    // on Node, `@hono/node-server` then reads the socket directly, far cheaper than a Web stream.
    const whole = new Uint8Array(await c.req.raw.arrayBuffer())
    if (whole.byteLength > maxBytes) throw fail('too_large', `the body is larger than ${maxBytes} bytes`)
    return parseJsonBytes(whole)
  }
  const body = c.req.raw.body
  if (body === null) throw fail('bad_request', 'the body is empty')
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel()
      throw fail('too_large', `the body is larger than ${maxBytes} bytes`)
    }
    chunks.push(value)
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    bytes.set(chunk, at)
    at += chunk.byteLength
  }
  return parseJsonBytes(bytes)
}

/** UTF-8 JSON: 400 `bad_request` for bytes that are not UTF-8 or text that is not JSON. */
function parseJsonBytes(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    throw fail('bad_request', 'the body is not valid JSON')
  }
}

export function parse<T extends v.GenericSchema>(schema: T, input: unknown): v.InferOutput<T> {
  const r = v.safeParse(schema, input)
  if (r.success) return r.output
  const issue = r.issues[0]
  const path = issue.path?.map((p) => String(p.key)).join('.') ?? ''
  throw fail('bad_request', path === '' ? issue.message : `${path}: ${issue.message}`)
}
