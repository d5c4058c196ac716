import { expect } from 'vitest'
import { demoSchema } from '../../demo/schema.ts'
import { isErrorCode } from '../../shared/errors.ts'
import { formatHlc } from '../../shared/hlc.ts'
import { defineSchema } from '../../shared/schema.ts'

/** The server clock every hostile suite runs at, so drift checks are exact. */
export const NOW = Date.UTC(2026, 5, 1)
export const now = (): number => NOW

/** A stamp `offset` ms after a minute before NOW (well inside the allowed drift). */
export const stamp = (offset: number, node: string, counter = 0): string =>
  formatHlc({ wall: NOW - 60_000 + offset, counter, node })

/** The demo tables plus one with every awkward column type (json, integer, double, free text). */
export const hostileSchema = defineSchema({
  tables: {
    ...demoSchema.spec.tables,
    docs: {
      primaryKey: ['doc_id'],
      columns: {
        doc_id: { type: 'text' },
        title: { type: 'text' },
        body: { type: 'json' },
        n: { type: 'integer' },
        d: { type: 'double' },
      },
      sync: 'write-back',
      conflict: 'lww',
    },
  },
})

/** Strings that would do damage if any of them reached SQL as text rather than as a bound value. */
export const INJECTIONS = [
  'orders; DROP TABLE orders; --',
  'orders"; DROP TABLE orders; --',
  "' OR '1'='1",
  "'); DELETE FROM _eddy_clients; --",
  '1; UPDATE _eddy_meta SET value = 0',
  '_eddy_clients',
  '_eddy_meta',
  '_eddy_sync_events',
  'information_schema.tables',
  'main.orders',
  'public.orders',
  'ORDERS',
  'orders ',
  'orders\u0000',
  '"orders"',
  '`orders`',
  'orders/*x*/',
  '$1',
  '?',
  'pg_sleep(10)',
  "x' || (SELECT value FROM _eddy_meta) || '",
  '\\x00',
  '%',
  '_',
] as const

/** Property names with meaning to JavaScript objects. */
export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf']

export const jsonInit = (body: string, type = 'application/json'): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': type },
  body,
})

export interface Answer {
  readonly status: number
  readonly type: string
  readonly body: unknown
}

type Fetcher = { request(path: string, init?: RequestInit): Response | Promise<Response> }

/** Sends one request in-process; a request that does not answer within 20 s fails the test as a hang. */
export async function send(app: Fetcher, path: string, init?: RequestInit): Promise<Answer> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang: ${init?.method ?? 'GET'} ${path}`)), 20_000)
  })
  try {
    const res = await Promise.race([app.request(path, init), hang])
    const text = await Promise.race([res.text(), hang])
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      body = text
    }
    return { status: res.status, type: res.headers.get('content-type') ?? '', body }
  } finally {
    clearTimeout(timer)
  }
}

/** A whole-request refusal: a 4xx with exactly `{"error": {"code", "message"}}` and a known code. */
export function expectTyped4xx(a: Answer, status?: number, code?: string): void {
  expect(a.status, JSON.stringify(a.body)).toBeGreaterThanOrEqual(400)
  expect(a.status, JSON.stringify(a.body)).toBeLessThan(500)
  if (status !== undefined) expect(a.status, JSON.stringify(a.body)).toBe(status)
  expect(a.type).toMatch(/^application\/json/)
  const body = a.body as { error?: { code?: unknown; message?: unknown } }
  expect(Object.keys(body)).toEqual(['error'])
  expect(isErrorCode(body.error?.code), String(body.error?.code)).toBe(true)
  expect(typeof body.error?.message).toBe('string')
  if (code !== undefined) expect(body.error?.code).toBe(code)
}

/** A 200 push answer in which no mutation took effect (each rejected with a code, or a duplicate). */
export function expectNothingApplied(a: Answer, codes?: readonly string[]): void {
  expect(a.status, JSON.stringify(a.body)).toBe(200)
  const body = a.body as { results: Array<{ status: string; error?: { code: string } }> }
  for (const r of body.results) {
    expect(['rejected', 'duplicate'], JSON.stringify(r)).toContain(r.status)
    if (r.status === 'rejected') {
      expect(isErrorCode(r.error?.code)).toBe(true)
      if (codes !== undefined) expect(codes, JSON.stringify(r)).toContain(r.error?.code)
    }
  }
}
